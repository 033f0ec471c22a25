//! A researcher's WGSL kernel in place of the engine's, for one op family (`lamina kernel
//! check`, `kernel bench`). Loading checks the file against the family's binding contract
//! (`contract.rs`) with naga, before anything runs; `GpuDevice::set_matmul_kernel` then
//! routes every matmul on that device through it (the host code, the parameter uniform
//! and the output dtype rule stay the engine's: `kernels/matmul.rs`).

use super::contract::{self, Family};
use super::device::GpuDevice;
use super::pipeline::Pipeline;
use crate::error::{invalid, Result};
use crate::DType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A user's kernel, checked against its family's contract.
pub struct UserKernel {
    family: Family,
    /// The file's name, for messages and timing labels.
    path: String,
    /// The file with the engine's prelude appended (`contract::compose_user`).
    source: String,
    entry: String,
    /// Values for the kernel's own overrides (tile sizes...), as given by the user.
    overrides: Vec<(String, f64)>,
    /// Declares the dtype overrides, so it accepts f16/bf16 operands (else f32 only).
    halves: bool,
    /// (BM, BN): output rows and columns per workgroup, with `overrides` applied.
    tile: (u32, u32),
    pipelines: Mutex<HashMap<(DType, DType), Arc<Pipeline>>>,
}

impl std::fmt::Debug for UserKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserKernel({}::{})", self.path, self.entry)
    }
}

fn err(path: &str, msg: impl std::fmt::Display) -> crate::Error {
    invalid("kernel", format!("{path}: {msg}"))
}

impl UserKernel {
    /// Parse and validate `text` (the contents of `path`) with naga under `caps`, find its
    /// entry point (`entry`, or its only @compute function), and check its bindings, uniform
    /// and overrides against `family`'s contract. `overrides` set the kernel's own override
    /// constants; the dtype ones are the host's. Needs no device.
    pub fn load(
        family: Family,
        path: &str,
        text: &str,
        entry: Option<&str>,
        overrides: &[(String, f64)],
        caps: naga::valid::Capabilities,
    ) -> Result<UserKernel> {
        let source = contract::compose_user(text);
        let (module, info) = contract::parse(&source, path, caps).map_err(|e| {
            let lines = text.lines().count();
            err(path, format!("WGSL does not validate (lines past {lines} are the engine's prelude):\n{e}"))
        })?;
        let entry = match entry {
            Some(e) => e.to_string(),
            None => only_compute_entry(&module).map_err(|e| err(path, e))?,
        };
        let user = contract::interface(&module, &info, &entry).map_err(|e| err(path, e))?;
        let want = family.contract();
        let bad = contract::mismatches(&want, &user);
        if !bad.is_empty() {
            let doc = format!("docs/kernels/{}.md", family.name());
            return Err(err(
                path,
                format!("does not match the {} binding contract ({doc}):\n  {}", family.name(), bad.join("\n  ")),
            ));
        }
        let halves = contract::declares_all_or_none(&user, family.dtype_overrides()).map_err(|e| err(path, e))?;
        for (name, _) in overrides {
            if family.dtype_overrides().contains(&name.as_str()) {
                return Err(err(path, format!("override `{name}` is set by the host (it picks the dtypes)")));
            }
            if !user.overrides.contains(name) {
                return Err(err(path, format!("no override `{name}` (the file declares {:?})", user.overrides)));
            }
        }
        let tile_names = family.tile_overrides();
        for name in tile_names {
            if !user.overrides.iter().any(|o| o == name)
                && !module.constants.iter().any(|(_, c)| c.name.as_deref() == Some(*name))
            {
                let doc = format!("docs/kernels/{}.md", family.name());
                return Err(err(
                    path,
                    format!("declares no `override {name}: u32` (the dispatch grid needs {tile_names:?}: {doc})"),
                ));
            }
        }
        let tile = contract::evaluate_u32(&source, tile_names, overrides).map_err(|e| err(path, e))?;
        if tile.contains(&0) {
            return Err(err(path, format!("{tile_names:?} evaluate to {tile:?}; each must be at least 1")));
        }
        Ok(UserKernel {
            family,
            path: path.to_string(),
            source,
            entry,
            overrides: overrides.to_vec(),
            halves,
            tile: (tile[0], tile[1]),
            pipelines: Mutex::default(),
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// (BM, BN): the output tile of one workgroup, which sets the dispatch grid.
    pub fn tile(&self) -> (u32, u32) {
        self.tile
    }

    /// Whether the kernel accepts operands of `dtype` (f32 always; f16/bf16 when it
    /// declares the dtype overrides).
    pub fn supports(&self, dtype: DType) -> bool {
        dtype == DType::F32 || (self.halves && dtype.is_float())
    }

    /// The label timing and errors name it by.
    pub fn label(&self) -> String {
        format!("user:{}::{}", self.path, self.entry)
    }

    /// The compiled pipeline for (operand dtype, stored dtype) on `dev`.
    pub(crate) fn pipeline(&self, dev: &GpuDevice, dtype: DType, out: DType) -> Result<Arc<Pipeline>> {
        if !self.supports(dtype) {
            let names = self.family.dtype_overrides();
            return Err(err(
                &self.path,
                format!("is f32-only (it declares none of {names:?}); this {} is {dtype}", self.family.name()),
            ));
        }
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&(dtype, out)) {
            return Ok(p.clone());
        }
        let mut constants: Vec<(&str, f64)> = self.overrides.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        if self.halves {
            let [a, b, o] = self.family.dtype_overrides() else { unreachable!("matmul has three dtype overrides") };
            let code = super::pipeline::dtype_code;
            constants.extend([(*a, code(dtype)), (*b, code(dtype)), (*o, code(out))]);
        }
        let label = format!("{} {dtype}->{out}", self.label());
        let p = Arc::new(dev.compile_source(&label, &self.source, &self.entry, &constants)?);
        cache.insert((dtype, out), p.clone());
        Ok(p)
    }
}

/// The name of the module's only @compute entry point, or an error listing them.
fn only_compute_entry(module: &naga::Module) -> std::result::Result<String, String> {
    let names: Vec<&str> =
        module.entry_points.iter().filter(|e| e.stage == naga::ShaderStage::Compute).map(|e| e.name.as_str()).collect();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err("no @compute entry point".to_string()),
        many => Err(format!("several @compute entry points {many:?}: choose one with --entry")),
    }
}
