//! The contract pages in `docs/kernels/` against the engine's kernels, and the checks a
//! user kernel goes through. No GPU needed.

use super::*;
use crate::gpu::kernels::matmul::{MatmulKey, SHADER};
use crate::gpu::{KernelKey, UserKernel};

const MATMUL_DOC: &str = include_str!("../../../docs/kernels/matmul.md");

/// The rows of the Markdown table under the heading that starts with `heading`, as cells
/// with backticks removed (the header and separator rows skipped).
fn table(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc.find(&format!("## {heading}")).unwrap_or_else(|| panic!("no section `## {heading}`"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().replace('`', "")).collect())
        .collect()
}

#[test]
fn matmul_page_matches_the_engine_kernel() {
    let contract = Family::Matmul.contract();
    let bindings: Vec<(u32, String, String)> =
        contract.bindings.iter().map(|b| (b.binding, b.kind.wgsl().to_string(), b.name.clone())).collect();
    let doc: Vec<(u32, String, String)> = table(MATMUL_DOC, "Bindings")
        .into_iter()
        .map(|r| (r[0].parse().expect("binding number"), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(doc, bindings, "docs/kernels/matmul.md `## Bindings` vs shaders/matmul.wgsl");

    let heading = format!("Uniform `{}` ({} bytes)", contract.uniform.name, contract.uniform.size);
    assert!(MATMUL_DOC.contains(&format!("## {heading}")), "the page names the uniform and its size: `## {heading}`");
    let members: Vec<(u32, String, String)> =
        contract.uniform.members.iter().map(|m| (m.offset, m.name.clone(), m.ty.clone())).collect();
    let doc: Vec<(u32, String, String)> = table(MATMUL_DOC, "Uniform")
        .into_iter()
        .map(|r| (r[0].parse().expect("byte offset"), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(doc, members, "docs/kernels/matmul.md uniform table vs shaders/matmul.wgsl's MatmulParams");

    // The overrides: the host's dtype names are the ones the engine's key sets, and the
    // tile names are overrides the engine's kernel declares.
    let doc: Vec<String> = table(MATMUL_DOC, "Override constants").into_iter().map(|r| r[0].clone()).collect();
    let family: Vec<&str> =
        Family::Matmul.dtype_overrides().iter().chain(Family::Matmul.tile_overrides()).copied().collect();
    assert_eq!(doc, family, "docs/kernels/matmul.md override table vs Family::Matmul");
    let key = MatmulKey::all()[0];
    let set: Vec<&str> = key.constants().into_iter().map(|(n, _)| n).collect();
    for name in Family::Matmul.dtype_overrides() {
        assert!(set.contains(name), "the engine's matmul key sets no `{name}`");
    }
    for name in Family::Matmul.tile_overrides() {
        assert!(contract.overrides.iter().any(|o| o == name), "shaders/matmul.wgsl declares no `{name}`");
    }
}

/// The engine's own matmul file, loaded as a user's kernel, passes every check and gets
/// the engine's tile: the contract is one the engine's kernel meets.
#[test]
fn the_engine_kernel_meets_its_own_contract() {
    let caps = naga::valid::Capabilities::empty();
    for entry in ["matmul", "matmul_vec4"] {
        let k = UserKernel::load(Family::Matmul, "matmul.wgsl", SHADER.source, Some(entry), &[], caps).unwrap();
        assert_eq!(k.tile(), (64, 64), "{entry}: BM = WG_Y * TM with the defaults");
        assert!(k.supports(crate::DType::BF16));
    }
    let o = [("WG_X".to_string(), 8.0), ("WG_Y".to_string(), 4.0)];
    let k = UserKernel::load(Family::Matmul, "matmul.wgsl", SHADER.source, Some("matmul"), &o, caps).unwrap();
    assert_eq!(k.tile(), (16, 32), "overrides reach the tile: (BM, BN) = (4 WG_Y, 4 WG_X)");
    let e = UserKernel::load(Family::Matmul, "matmul.wgsl", SHADER.source, None, &[], caps).unwrap_err().to_string();
    assert!(e.contains("--entry") && e.contains("matmul_vec4"), "{e}");
}

/// The naive f32 example kernel, to break in the tests below.
const NAIVE: &str = include_str!("../../../examples/kernels/naive.wgsl");

fn load(src: &str, overrides: &[(&str, f64)]) -> Result<UserKernel, String> {
    let o: Vec<(String, f64)> = overrides.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    UserKernel::load(Family::Matmul, "naive.wgsl", src, None, &o, naga::valid::Capabilities::empty())
        .map_err(|e| e.to_string())
}

#[test]
fn a_naive_f32_kernel_loads() {
    let k = load(NAIVE, &[]).unwrap();
    assert_eq!((k.tile(), k.entry()), ((8, 8), "main"));
    assert!(k.supports(crate::DType::F32) && !k.supports(crate::DType::F16));
    assert_eq!(load(NAIVE, &[("BM", 16.0)]).unwrap().tile(), (16, 8));
}

#[test]
fn contract_mismatches_are_clear_errors() {
    let end = "    b_bs: vec4<u32>,\n}";
    assert!(NAIVE.contains(end), "naive.wgsl's uniform ends as this test expects");
    let cases: [(&str, String, &[&str]); 10] = [
        ("WGSL syntax", NAIVE.replace("acc += a", "acc += a +"), &["does not validate", "naive.wgsl:"]),
        (
            "output read-only (naga refuses the store)",
            NAIVE.replace("var<storage, read_write> c", "var<storage, read> c"),
            &["does not validate", "naive.wgsl:", "not permitted"],
        ),
        (
            "input writable",
            NAIVE.replace("var<storage, read> a", "var<storage, read_write> a"),
            &["binding 1 (`a`) is var<storage, read_write>, the contract says var<storage, read>"],
        ),
        ("a binding unused", NAIVE.replace("* b[b_at + i * p.b_rs + col * p.b_cs]", ""), &["binding 2", "not used"]),
        (
            "an extra binding",
            NAIVE.replace("var acc = 0.0;", "var acc = x[0];")
                + "@group(0) @binding(4) var<storage, read> x: array<f32>;",
            &["binding 4", "not in the contract"],
        ),
        (
            "uniform member swapped",
            NAIVE.replace("a_rs: u32, a_cs: u32", "a_cs: u32, a_rs: u32"),
            &["byte 20", "`a_rs: u32`"],
        ),
        ("uniform member retyped", NAIVE.replace(end, "    b_bs: vec2<u32>,\n}"), &["byte 80", "vec2<u32>"]),
        ("uniform too long", NAIVE.replace(end, "    b_bs: vec4<u32>,\n    x: vec4<u32>,\n}"), &["112 bytes", "96"]),
        (
            "no grid override",
            NAIVE.replace("override BN: u32 = 8u;", "const COLS = 8u;").replace("(BN, BM, 1)", "(COLS, BM, 1)"),
            &["`override BN: u32`", "grid"],
        ),
        (
            "half the dtype overrides",
            NAIVE.replace("override BM", "override DT_A: u32 = 0u;\noverride BM"),
            &["DT_A", "OUT_DT"],
        ),
    ];
    for (what, src, needles) in cases {
        let e = load(&src, &[]).err().unwrap_or_else(|| panic!("{what}: loaded"));
        for n in needles {
            assert!(e.contains(n), "{what}: `{n}` not in:\n{e}");
        }
    }
    let e = load(NAIVE, &[("TM", 2.0)]).unwrap_err();
    assert!(e.contains("no override `TM`"), "{e}");
    let e = load(NAIVE, &[("BM", 0.0)]).unwrap_err();
    assert!(e.contains("at least 1"), "{e}");
}
