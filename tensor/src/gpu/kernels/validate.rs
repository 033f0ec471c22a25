//! Every shader variant the pipeline cache can generate is parsed, specialised (override
//! constants applied) and validated by naga, then translated to SPIR-V, MSL and HLSL as the
//! Vulkan, Metal and DX12 backends would: shader mistakes fail here, without a GPU. Each
//! module is validated with only the capabilities its variants' device features grant, so
//! a fallback variant that slipped in a subgroup or f16 operation fails here too.

use super::all_variants;
use crate::gpu::contract::capabilities;
use naga::valid::{ValidationFlags, Validator};
use std::collections::HashMap;

#[test]
fn every_shader_variant_validates() {
    let variants = all_variants();
    assert!(!variants.is_empty());
    let mut modules = HashMap::new();
    for v in &variants {
        let (module, info) = modules.entry((v.shader.name, v.row_reduce, v.features)).or_insert_with(|| {
            let src = v.shader.compose(v.row_reduce);
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{}.wgsl: {}", v.shader.name, e.emit_to_string(&src)));
            let info = Validator::new(ValidationFlags::all(), capabilities(v.features))
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}.wgsl: {}", v.shader.name, e.emit_to_string(&src)));
            (module, info)
        });
        assert!(
            module.entry_points.iter().any(|e| e.name == v.entry),
            "{}: no entry point `{}` in {}.wgsl",
            v.key,
            v.entry,
            v.shader.name
        );
        let mut constants = naga::back::PipelineConstants::default();
        for (name, value) in &v.constants {
            assert!(
                module.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(*name)),
                "{}: {}.wgsl declares no override `{name}`",
                v.key,
                v.shader.name
            );
            constants.insert(name.to_string(), *value);
        }
        let stage = Some((naga::ShaderStage::Compute, v.entry));
        let (m, i) = naga::back::pipeline_constants::process_overrides(module, info, stage, &constants)
            .unwrap_or_else(|e| panic!("{}: applying overrides: {e}", v.key));
        let pipeline = naga::back::spv::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: v.entry.to_string(),
        };
        naga::back::spv::write_vec(&m, &i, &naga::back::spv::Options::default(), Some(&pipeline))
            .unwrap_or_else(|e| panic!("{}: SPIR-V: {e}", v.key));
        // Metal and DX12 get the same module through naga's MSL and HLSL writers (the text
        // is not compiled here: that needs Apple's and Microsoft's compilers).
        let entry = Some((naga::ShaderStage::Compute, v.entry.to_string()));
        let msl = naga::back::msl::Options { lang_version: (2, 4), ..Default::default() };
        let msl_pipeline = naga::back::msl::PipelineOptions { entry_point: entry.clone(), ..Default::default() };
        naga::back::msl::write_string(&m, &i, &msl, &msl_pipeline).unwrap_or_else(|e| panic!("{}: MSL: {e}", v.key));
        // Shader model 6.2: wave operations (6.0) and native 16-bit types (6.2).
        let hlsl =
            naga::back::hlsl::Options { shader_model: naga::back::hlsl::ShaderModel::V6_2, ..Default::default() };
        let hlsl_pipeline = naga::back::hlsl::PipelineOptions { entry_point: entry };
        let mut text = String::new();
        naga::back::hlsl::Writer::new(&mut text, &hlsl, &hlsl_pipeline)
            .write(&m, &i, None)
            .unwrap_or_else(|e| panic!("{}: HLSL: {e}", v.key));
    }
    eprintln!("validated {} shader variants in {} modules", variants.len(), modules.len());
}

/// Every uniform a shader declares has a Rust twin of the same size with each WGSL member
/// at the same byte offset (`kernels::uniform_layouts`), so a field added, moved or
/// retyped on one side only fails here instead of feeding a kernel shifted parameters.
#[test]
fn uniform_structs_match_their_rust_twins() {
    let layouts = super::uniform_layouts();
    let mut checked = 0;
    let mut seen = std::collections::HashSet::new();
    for v in all_variants() {
        if !seen.insert((v.shader.name, v.row_reduce)) {
            continue;
        }
        let src = v.shader.compose(v.row_reduce);
        let module = naga::front::wgsl::parse_str(&src).expect("parsed by every_shader_variant_validates");
        for (_, global) in module.global_variables.iter() {
            if global.space != naga::AddressSpace::Uniform {
                continue;
            }
            let ty = &module.types[global.ty];
            let name = ty.name.clone().unwrap_or_default();
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                panic!("{}.wgsl: uniform `{name}` is not a struct", v.shader.name);
            };
            let rust = layouts.iter().find(|l| l.wgsl == name).unwrap_or_else(|| {
                panic!("{}.wgsl: uniform struct `{name}` is missing from uniform_layouts()", v.shader.name)
            });
            assert_eq!(*span as usize, rust.size, "{}.wgsl: size of `{name}` (WGSL vs Rust)", v.shader.name);
            // Padding (`_pad`, `_p0`...) is left out on both sides; the sizes cover it.
            let wgsl: Vec<(String, usize)> = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .filter(|(n, _)| !n.starts_with('_'))
                .collect();
            let rust_fields: Vec<(String, usize)> = rust.fields.iter().map(|&(f, o)| (f.to_string(), o)).collect();
            assert_eq!(
                wgsl, rust_fields,
                "{}.wgsl: members of `{name}` (WGSL vs Rust): (name, byte offset)",
                v.shader.name
            );
            checked += 1;
        }
    }
    assert!(checked >= layouts.len(), "checked {checked} uniforms, {} Rust layouts", layouts.len());
    eprintln!("checked {checked} uniform declarations against {} Rust structs", layouts.len());
}
