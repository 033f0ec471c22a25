//! train-demo's neural lineage against PyTorch: the LSTM (torch.nn.LSTM), the masked-LM
//! encoder and the GPT (both written from torch.nn.functional) on tiny random weights:
//! logits, loss and the gradient of every parameter (tests/fixtures/lineage/torch.json,
//! made in float64 by scripts/reference/lineage_reference.py), on the CPU and on the GPU
//! (skipped without an adapter unless LAMINA_REQUIRE_GPU=1): both backends agree with
//! PyTorch, so with each other.

use lamina_model::{Gpt, GptConfig};
use lamina_tensor::{Device, Tensor};
use lamina_train::lineage::encoder::MaskedLm;
use lamina_train::lineage::lstm::{Lstm, LstmConfig, LstmState};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Case {
    config: HashMap<String, usize>,
    ids: Vec<i32>,
    targets: Vec<i32>,
    shape: [usize; 2],
    #[serde(default)]
    h0: Vec<f32>,
    #[serde(default)]
    c0: Vec<f32>,
    params: HashMap<String, Vec<f32>>,
    loss: f64,
    logits: Vec<f64>,
    grads: HashMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
struct Fixture {
    lstm: Case,
    encoder: Case,
    gpt: Case,
}

/// The CPU, and the GPU the tests run on when there is one.
fn devices() -> Vec<Device> {
    std::iter::once(Device::Cpu).chain(lamina_tensor::gpu::test_ordinal().map(Device::Gpu)).collect()
}

fn fixture() -> Fixture {
    let path = lamina_testkit::repo_root().join("tests/fixtures/lineage/torch.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl Case {
    fn ids(&self) -> Tensor {
        Tensor::from_vec(self.ids.clone(), &self.shape).unwrap()
    }

    fn targets(&self) -> Tensor {
        Tensor::from_vec(self.targets.clone(), &self.shape).unwrap()
    }

    /// Every parameter of the model gets the fixture's values (and the fixture has no others).
    fn load(&self, params: &[(String, Tensor)]) {
        assert_eq!(params.len(), self.params.len(), "parameter count");
        for (name, t) in params {
            let values = self.params.get(name).unwrap_or_else(|| panic!("{name} not in the fixture"));
            t.assign(&Tensor::from_vec(values.clone(), t.shape()).unwrap()).unwrap();
        }
    }

    /// Load `params`, take the logits and the loss `run` gives, run backward: logits, loss
    /// and every gradient within `tol` (absolute, plus the same relative).
    fn check(&self, what: &str, params: &[(String, Tensor)], tol: f64, run: impl FnOnce() -> (Tensor, Tensor)) {
        self.load(params);
        let (logits, loss) = run();
        loss.backward().unwrap();
        let close = |got: f64, want: f64| (got - want).abs() <= tol * (1.0 + want.abs());
        let got = logits.to_device(Device::Cpu).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(got.len(), self.logits.len(), "{what}: logits");
        for (i, (g, w)) in got.iter().zip(&self.logits).enumerate() {
            assert!(close(*g as f64, *w), "{what}: logit {i}: lamina {g}, torch {w}");
        }
        let l = loss.to_scalar_f32().unwrap() as f64;
        assert!(close(l, self.loss), "{what}: loss: lamina {l}, torch {}", self.loss);
        let mut worst = 0.0f64;
        for (name, t) in params {
            let want = &self.grads[name];
            let grad = t.grad().unwrap_or_else(|| panic!("{what}: {name} has no gradient"));
            let got = grad.to_device(Device::Cpu).unwrap().to_vec::<f32>().unwrap();
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                worst = worst.max((*g as f64 - w).abs());
                assert!(close(*g as f64, *w), "{what}: {name}[{i}]: lamina {g}, torch {w}");
            }
        }
        eprintln!("{what}: loss {l:.6} (torch {:.6}), largest gradient difference {worst:.1e}", self.loss);
    }
}

#[test]
fn lstm_matches_torch_nn_lstm() {
    let case = fixture().lstm;
    let cfg = LstmConfig { vocab: case.config["vocab"], embd: case.config["embd"], hidden: case.config["hidden"] };
    for device in devices() {
        let mut model = Lstm::new(cfg, 0).unwrap();
        model.to_device(device).unwrap();
        let state =
            |v: &[f32]| Tensor::from_vec(v.to_vec(), &[case.shape[0], cfg.hidden]).unwrap().to_device(device).unwrap();
        let st = LstmState { h: state(&case.h0), c: state(&case.c0) };
        case.check(&format!("lstm on {device}"), &model.parameters(), 1e-5, || {
            let (logits, _) = model.forward(&case.ids(), &st).unwrap();
            (logits, model.loss(&case.ids(), &case.targets(), &st).unwrap().0)
        });
    }
}

fn gpt_config(case: &Case) -> GptConfig {
    let c = &case.config;
    GptConfig {
        vocab: c["vocab"],
        ctx: c["ctx"],
        n_layer: c["n_layer"],
        n_head: c["n_head"],
        n_embd: c["n_embd"],
        dropout: 0.0,
    }
}

#[test]
fn encoder_matches_torch() {
    let case = fixture().encoder;
    for device in devices() {
        let mut model = MaskedLm::new(gpt_config(&case), 0).unwrap();
        assert!(case.ids.contains(&(model.mask_id() as i32)), "the fixture masks some positions");
        model.to_device(device).unwrap();
        case.check(&format!("encoder on {device}"), &model.parameters(), 1e-5, || {
            (model.forward(&case.ids()).unwrap(), model.loss(&case.ids(), &case.targets()).unwrap())
        });
    }
}

#[test]
fn gpt_matches_torch() {
    let case = fixture().gpt;
    for device in devices() {
        let mut model = Gpt::new(gpt_config(&case), 0).unwrap();
        model.to_device(device).unwrap();
        case.check(&format!("gpt on {device}"), &model.parameters(), 1e-5, || {
            (model.forward(&case.ids()).unwrap(), model.loss(&case.ids(), &case.targets()).unwrap())
        });
    }
}
