//! The binding contract of an op family: what a researcher's WGSL kernel must declare to
//! run in place of the engine's (`lamina kernel check`, `gpu::user_kernel`).
//!
//! The contract is read by naga from the engine's own kernel for the family (for matmul:
//! `shaders/matmul.wgsl`, entry `matmul`): its group-0 bindings, the layout of its
//! parameter uniform, and the override constants the host sets. So it is whatever the
//! engine's kernel does; `docs/kernels/matmul.md` describes it, and a test holds the page
//! to this module (`contract_tests.rs`).
//!
//! A user's file is compiled as the file itself, then the generated codes (`DT_F32`...)
//! and `shaders/common.wgsl` (the element codecs), so it may call `bits_to_f32` and
//! friends; the file comes first so that naga's line numbers are the file's own.

use naga::valid::{Capabilities, GlobalUse, ModuleInfo, ValidationFlags, Validator};
use naga::{AddressSpace, Module, ShaderStage, StorageAccess, TypeInner};
use std::collections::HashMap;

/// How a binding is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// `var<uniform>`: the parameter struct.
    Uniform,
    /// `var<storage, read>`: an input buffer of 32-bit words.
    StorageRead,
    /// `var<storage, read_write>`: the output buffer.
    StorageReadWrite,
}

impl BindingKind {
    pub fn wgsl(self) -> &'static str {
        match self {
            BindingKind::Uniform => "var<uniform>",
            BindingKind::StorageRead => "var<storage, read>",
            BindingKind::StorageReadWrite => "var<storage, read_write>",
        }
    }
}

/// One `@group(0) @binding(n)` an entry point uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub binding: u32,
    pub kind: BindingKind,
    /// The variable's name in the module it was read from.
    pub name: String,
}

/// One member of the parameter struct (padding members, named `_...`, are left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Byte offset in the struct.
    pub offset: u32,
    /// WGSL type: `u32`, `vec4<u32>`...
    pub ty: String,
}

/// The parameter uniform's struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniformLayout {
    pub name: String,
    pub size: u32,
    pub members: Vec<Member>,
}

/// An entry point's interface: what a kernel of the family must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub entry: String,
    /// By binding number.
    pub bindings: Vec<Binding>,
    pub uniform: UniformLayout,
    /// Every `override` the module declares, by name.
    pub overrides: Vec<String>,
}

/// An op family a user kernel can replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Matmul,
}

impl Family {
    /// The names `--op` accepts.
    pub const ALL: [Family; 1] = [Family::Matmul];

    pub fn name(self) -> &'static str {
        match self {
            Family::Matmul => "matmul",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The override constants the host sets on a user kernel to choose the dtypes (the
    /// engine's own kernel's names): declare all of them to accept f16/bf16 operands, or
    /// none for an f32-only kernel.
    pub fn dtype_overrides(self) -> &'static [&'static str] {
        match self {
            Family::Matmul => &["DT_A", "DT_B", "OUT_DT"],
        }
    }

    /// The override constants the host reads for the dispatch grid (rows and columns of
    /// the output per workgroup): `(ceil(N / BN), ceil(M / BM), batch)`.
    pub fn tile_overrides(self) -> &'static [&'static str] {
        match self {
            Family::Matmul => &["BM", "BN"],
        }
    }

    /// The engine's kernel the contract is read from: its composed source and entry point.
    fn engine_kernel(self) -> (String, &'static str) {
        match self {
            Family::Matmul => (super::kernels::matmul::SHADER.compose(None), "matmul"),
        }
    }

    /// The contract, read from the engine's own kernel.
    pub fn contract(self) -> Interface {
        let (source, entry) = self.engine_kernel();
        let (module, info) =
            parse(&source, "engine kernel", Capabilities::empty()).expect("the engine's kernel parses");
        interface(&module, &info, entry).expect("the engine's kernel has an interface")
    }
}

/// The capabilities a device with `features` grants shaders (as wgpu maps them).
pub fn capabilities(features: wgpu::Features) -> Capabilities {
    let mut c = Capabilities::empty();
    if features.contains(wgpu::Features::SHADER_F16) {
        c |= Capabilities::SHADER_FLOAT16;
    }
    if features.contains(wgpu::Features::SUBGROUP) {
        c |= Capabilities::SUBGROUP;
    }
    c
}

/// A user's file with the engine's prelude appended (see the module comment).
pub fn compose_user(source: &str) -> String {
    let codes = super::codes::wgsl();
    let common = super::pipeline::COMMON;
    let mut out = String::with_capacity(source.len() + codes.len() + common.len() + 128);
    out.push_str(source);
    out.push_str("\n// ---- the engine's prelude: generated codes, then shaders/common.wgsl ----\n");
    out.push_str(codes);
    out.push_str(common);
    out
}

/// Parse and validate WGSL; errors are naga's, with `path` and line numbers.
pub fn parse(source: &str, path: &str, caps: Capabilities) -> Result<(Module, ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string_with_path(source, path))?;
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(source, path))?;
    Ok((module, info))
}

/// The interface of compute entry point `entry`: the group-0 bindings it uses, its
/// uniform's layout, the module's overrides. An error says what is missing or misdeclared.
pub fn interface(module: &Module, info: &ModuleInfo, entry: &str) -> Result<Interface, String> {
    let index = module.entry_points.iter().position(|e| e.name == entry).ok_or_else(|| {
        let names: Vec<&str> = module.entry_points.iter().map(|e| e.name.as_str()).collect();
        format!("no entry point `{entry}` (the file has {names:?})")
    })?;
    if module.entry_points[index].stage != ShaderStage::Compute {
        return Err(format!("entry point `{entry}` is not a @compute function"));
    }
    let used = info.get_entry_point(index);
    let mut bindings = Vec::new();
    let mut uniform = None;
    for (handle, var) in module.global_variables.iter() {
        if used[handle] == GlobalUse::empty() {
            continue;
        }
        let Some(rb) = &var.binding else { continue };
        let name = var.name.clone().unwrap_or_default();
        if rb.group != 0 {
            return Err(format!("`{name}` is in @group({}); kernels bind everything in @group(0)", rb.group));
        }
        let kind = match var.space {
            AddressSpace::Uniform => BindingKind::Uniform,
            AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => BindingKind::StorageReadWrite,
            AddressSpace::Storage { .. } => BindingKind::StorageRead,
            other => return Err(format!("`{name}` (binding {}) is in address space {other:?}", rb.binding)),
        };
        if kind == BindingKind::Uniform {
            uniform = Some(uniform_layout(module, var.ty, &name)?);
        } else if !is_word_array(module, var.ty) {
            return Err(format!(
                "`{name}` (binding {}) must be an array of 32-bit words (u32, f32 or vectors of them)",
                rb.binding
            ));
        }
        // Two variables may share a binding (`a` and `a4` in matmul.wgsl) if one entry
        // point uses only one of them.
        if let Some(b) = bindings.iter().find(|b: &&Binding| b.binding == rb.binding) {
            return Err(format!("`{name}` and `{}` both use binding {} in `{entry}`", b.name, rb.binding));
        }
        bindings.push(Binding { binding: rb.binding, kind, name });
    }
    bindings.sort_by_key(|b| b.binding);
    let uniform = uniform.ok_or_else(|| format!("`{entry}` uses no var<uniform> (the parameters, binding 0)"))?;
    let overrides = module.overrides.iter().filter_map(|(_, o)| o.name.clone()).collect();
    Ok(Interface { entry: entry.to_string(), bindings, uniform, overrides })
}

fn uniform_layout(module: &Module, ty: naga::Handle<naga::Type>, var: &str) -> Result<UniformLayout, String> {
    let t = &module.types[ty];
    let TypeInner::Struct { members, span } = &t.inner else {
        return Err(format!("the uniform `{var}` must be a struct"));
    };
    let members = members
        .iter()
        .map(|m| Member { name: m.name.clone().unwrap_or_default(), offset: m.offset, ty: type_name(module, m.ty) })
        .filter(|m| !m.name.starts_with('_'))
        .collect();
    Ok(UniformLayout { name: t.name.clone().unwrap_or_default(), size: *span, members })
}

/// `u32`, `vec4<u32>`, `array<f32, 4>`... (enough to compare two declarations).
fn type_name(module: &Module, ty: naga::Handle<naga::Type>) -> String {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => "u32".to_string(),
        (naga::ScalarKind::Sint, 4) => "i32".to_string(),
        (naga::ScalarKind::Float, 4) => "f32".to_string(),
        (naga::ScalarKind::Float, 2) => "f16".to_string(),
        (k, w) => format!("{k:?}{}", 8 * w),
    };
    match &module.types[ty].inner {
        TypeInner::Scalar(s) => scalar(*s),
        TypeInner::Vector { size, scalar: s } => format!("vec{}<{}>", *size as u8, scalar(*s)),
        TypeInner::Array { base, size: naga::ArraySize::Constant(n), .. } => {
            format!("array<{}, {n}>", type_name(module, *base))
        }
        other => format!("{other:?}"),
    }
}

fn is_word_array(module: &Module, ty: naga::Handle<naga::Type>) -> bool {
    let TypeInner::Array { base, .. } = &module.types[ty].inner else { return false };
    let word = |s: &naga::Scalar| s.width == 4 && s.kind != naga::ScalarKind::Bool;
    match &module.types[*base].inner {
        TypeInner::Scalar(s) | TypeInner::Vector { scalar: s, .. } => word(s),
        _ => false,
    }
}

/// Every way `user` differs from `contract` (empty: it matches). Uniform member names
/// and types must match too: a kernel that reads `a_rs` where the host wrote `a_cs` is
/// wrong in a way no shape test may catch.
pub fn mismatches(contract: &Interface, user: &Interface) -> Vec<String> {
    let mut out = Vec::new();
    for want in &contract.bindings {
        match user.bindings.iter().find(|b| b.binding == want.binding) {
            None => out.push(format!(
                "binding {} (`{}`, {}) is not used by `{}`",
                want.binding,
                want.name,
                want.kind.wgsl(),
                user.entry
            )),
            Some(b) if b.kind != want.kind => out.push(format!(
                "binding {} (`{}`) is {}, the contract says {} (`{}`)",
                b.binding,
                b.name,
                b.kind.wgsl(),
                want.kind.wgsl(),
                want.name
            )),
            Some(_) => {}
        }
    }
    for b in &user.bindings {
        if !contract.bindings.iter().any(|w| w.binding == b.binding) {
            let n = contract.bindings.len();
            out.push(format!("binding {} (`{}`) is not in the contract (bindings 0..{n})", b.binding, b.name));
        }
    }
    let (want, got) = (&contract.uniform, &user.uniform);
    if got.size != want.size {
        out.push(format!(
            "the uniform struct `{}` is {} bytes, the contract's `{}` is {}",
            got.name, got.size, want.name, want.size
        ));
    }
    let by_offset: HashMap<u32, &Member> = got.members.iter().map(|m| (m.offset, m)).collect();
    for m in &want.members {
        match by_offset.get(&m.offset) {
            Some(g) if g.name == m.name && g.ty == m.ty => {}
            Some(g) => out.push(format!(
                "uniform member at byte {}: `{}: {}`, the contract has `{}: {}`",
                m.offset, g.name, g.ty, m.name, m.ty
            )),
            None => out.push(format!("uniform member `{}: {}` (byte {}) is missing", m.name, m.ty, m.offset)),
        }
    }
    out
}

/// Which of `names` the module declares as overrides: all (true), none (false), or an
/// error naming those missing.
pub fn declares_all_or_none(user: &Interface, names: &[&str]) -> Result<bool, String> {
    let has: Vec<&str> = names.iter().copied().filter(|n| user.overrides.iter().any(|o| o == n)).collect();
    match has.len() {
        0 => Ok(false),
        n if n == names.len() => Ok(true),
        _ => {
            let missing: Vec<&str> = names.iter().copied().filter(|n| !has.contains(n)).collect();
            Err(format!(
                "declares the overrides {has:?} but not {missing:?}: declare all of {names:?} or none (f32 only)"
            ))
        }
    }
}

/// The values of `names` (u32 overrides or constants) once `constants` are applied:
/// evaluated by naga through a probe entry point that reads them, so an override
/// defined from others (`BM = WG_Y * TM`) gets its value too.
pub fn evaluate_u32(source: &str, names: &[&str], constants: &[(String, f64)]) -> Result<Vec<u32>, String> {
    let reads: String = names.iter().map(|n| format!("_ = {n}; ")).collect();
    let probe = format!("{source}\n@compute @workgroup_size(1) fn lamina_probe() {{ {reads}}}\n");
    let (module, info) = parse(&probe, "probe", Capabilities::all())?;
    let pc: naga::back::PipelineConstants = constants.iter().cloned().collect();
    let (m, _) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((ShaderStage::Compute, "lamina_probe")),
        &pc,
    )
    .map_err(|e| format!("applying the override values: {e}"))?;
    names
        .iter()
        .map(|name| {
            let c = m.constants.iter().find(|(_, c)| c.name.as_deref() == Some(*name));
            let value = c.and_then(|(_, c)| match m.global_expressions[c.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) => Some(v),
                naga::Expression::Literal(naga::Literal::I32(v)) => u32::try_from(v).ok(),
                naga::Expression::Literal(naga::Literal::AbstractInt(v)) => u32::try_from(v).ok(),
                _ => None,
            });
            value.ok_or_else(|| format!("`{name}` must be a u32 override (or const) with a value"))
        })
        .collect()
}

#[cfg(test)]
#[path = "contract_tests.rs"]
mod tests;
