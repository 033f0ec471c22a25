//! Every `lamina quantize` target's tensor types against llama.cpp's own choices
//! (`tests/fixtures/kquant/mix_types.json`, from `scripts/reference/mix_types_reference.py`):
//! SmolLM2 (rows of 576: the fallbacks, and a tied embedding that q4_0 makes Q8_0), an
//! 8-layer model with 256-wide rows and an untied head (the mixes proper), and an 80-layer
//! grouped-query model (llama.cpp's 70B rule).

use lamina_model::quantize::{plan, ModelShape, Target, TARGETS};
use serde_json::Value;

#[test]
fn every_tensor_gets_llama_cpps_type() {
    let path = lamina_testkit::fixture("kquant/mix_types.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = json["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 3);
    for (case, c) in cases {
        let tensors: Vec<(String, Vec<u64>)> = c["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t[0].as_str().unwrap().to_string(),
                    t[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect(),
                )
            })
            .collect();
        let named: Vec<(&str, &[u64])> = tensors.iter().map(|(n, ne)| (n.as_str(), ne.as_slice())).collect();
        let n = |k: &str| c[k].as_u64().unwrap() as usize;
        let shape = ModelShape {
            arch: c["arch"].as_str().unwrap().to_string(),
            n_layer: n("n_layer"),
            n_head: n("n_head"),
            n_head_kv: n("n_head_kv"),
        };
        let targets = c["types"].as_object().unwrap();
        let mut names: Vec<&str> = targets.keys().map(String::as_str).collect();
        let mut all: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        all.sort_unstable();
        assert_eq!(names, all, "{case}: the fixture covers every target");
        for (target, want) in targets {
            let got = plan(&Target::parse(target).unwrap(), &named, &shape);
            let diffs: Vec<String> = want
                .as_array()
                .unwrap()
                .iter()
                .zip(&got)
                .zip(&named)
                .filter(|((w, g), _)| w.as_str() != Some(g.name()))
                .map(|((w, g), (name, _))| format!("{name}: {g} vs llama.cpp {w}"))
                .collect();
            assert!(diffs.is_empty(), "{case} {target}: {} tensors differ:\n{}", diffs.len(), diffs.join("\n"));
        }
    }
}
