//! The LSTM language model: its forward pass and every parameter's gradient against an
//! f64 LSTM written here from the equations (gradients by central finite differences of
//! it), and the truncated-BPTT stream: each lane continues where it stopped, the state
//! carries over and is reset when the lanes start over.

use lamina_tensor::Tensor;
use lamina_train::lineage::lstm::{Lstm, LstmConfig, LstmState, StreamBatches};
use lamina_train::{fit, AdamWConfig, Budget, Clock, CosineSchedule, FitConfig, Learner, Progress};

const CFG: LstmConfig = LstmConfig { vocab: 7, embd: 5, hidden: 6 };
const IDS: [[i32; 5]; 2] = [[0, 3, 6, 2, 2], [5, 1, 4, 0, 6]];
const TARGETS: [[i32; 5]; 2] = [[3, 6, 2, 2, 1], [1, 4, 0, 6, -1]]; // -1: not scored

/// Every parameter, flat, in `Lstm::parameters` order, with the offset of each.
struct Params {
    values: Vec<f64>,
    offsets: Vec<(String, usize)>,
}

impl Params {
    fn of(model: &Lstm) -> Params {
        let (mut values, mut offsets) = (Vec::new(), Vec::new());
        for (name, t) in model.parameters() {
            offsets.push((name, values.len()));
            values.extend(t.to_vec::<f32>().unwrap().iter().map(|&x| x as f64));
        }
        Params { values, offsets }
    }

    fn at(&self, name: &str) -> usize {
        self.offsets.iter().find(|(n, _)| n == name).unwrap().1
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The LSTM in f64, straight from the equations in `lstm.rs` (gates i, f, o, g): mean
/// cross-entropy over scored targets, from states h0, c0 (B, H), and the logits.
fn reference(p: &Params, h0: &[f64], c0: &[f64]) -> (f64, Vec<f64>) {
    let LstmConfig { vocab: v, embd: e, hidden: hd } = CFG;
    let (emb, w_ih, b_ih, w_hh) = (p.at("emb.weight"), p.at("w_ih.weight"), p.at("w_ih.bias"), p.at("w_hh.weight"));
    let (w_out, b_out) = (p.at("head.weight"), p.at("head.bias"));
    let w = &p.values;
    let (mut nll, mut scored, mut all_logits) = (0.0, 0, Vec::new());
    for (b, (ids, targets)) in IDS.iter().zip(&TARGETS).enumerate() {
        let mut h = h0[b * hd..(b + 1) * hd].to_vec();
        let mut c = c0[b * hd..(b + 1) * hd].to_vec();
        for (&id, &target) in ids.iter().zip(targets) {
            let x = &w[emb + id as usize * e..emb + (id as usize + 1) * e];
            let gate = |j: usize| {
                let from_x: f64 = (0..e).map(|k| w[w_ih + j * e + k] * x[k]).sum();
                let from_h: f64 = (0..hd).map(|k| w[w_hh + j * hd + k] * h[k]).sum();
                w[b_ih + j] + from_x + from_h
            };
            let g: Vec<f64> = (0..4 * hd).map(gate).collect();
            for k in 0..hd {
                let (i, f, o, gg) = (sigmoid(g[k]), sigmoid(g[hd + k]), sigmoid(g[2 * hd + k]), g[3 * hd + k].tanh());
                c[k] = f * c[k] + i * gg;
                h[k] = o * c[k].tanh();
            }
            let logits: Vec<f64> =
                (0..v).map(|j| w[b_out + j] + (0..hd).map(|k| w[w_out + j * hd + k] * h[k]).sum::<f64>()).collect();
            if target >= 0 {
                let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
                nll += lse - logits[target as usize];
                scored += 1;
            }
            all_logits.extend(logits);
        }
    }
    (nll / scored as f64, all_logits)
}

fn state(seed: u64) -> (Vec<f64>, Vec<f64>) {
    let n = 2 * CFG.hidden;
    let v = |s: u64| Tensor::randn(&[n], 0.0, 0.5, s, lamina_tensor::DType::F32).unwrap().to_vec::<f32>().unwrap();
    let f = |x: Vec<f32>| x.into_iter().map(|x| x as f64).collect();
    (f(v(seed)), f(v(seed + 1)))
}

fn tensor(rows: &[[i32; 5]; 2]) -> Tensor {
    Tensor::from_vec(rows.iter().flatten().copied().collect::<Vec<_>>(), &[2, 5]).unwrap()
}

#[test]
fn forward_and_gradients_match_an_f64_lstm() {
    let model = Lstm::new(CFG, 11).unwrap();
    let (h0, c0) = state(5);
    let to_t = |x: &[f64]| Tensor::from_vec(x.iter().map(|&v| v as f32).collect::<Vec<_>>(), &[2, CFG.hidden]).unwrap();
    let st = LstmState { h: to_t(&h0), c: to_t(&c0) };
    let (logits, _) = model.forward(&tensor(&IDS), &st).unwrap();
    let (loss, _) = model.loss(&tensor(&IDS), &tensor(&TARGETS), &st).unwrap();
    loss.backward().unwrap();

    let p = Params::of(&model);
    let (want_loss, want_logits) = reference(&p, &h0, &c0);
    let got_logits = logits.to_vec::<f32>().unwrap();
    for (g, w) in got_logits.iter().zip(&want_logits) {
        assert!((*g as f64 - w).abs() < 1e-5, "logit {g} vs {w}");
    }
    assert!((loss.to_scalar_f32().unwrap() as f64 - want_loss).abs() < 1e-5);

    // Central differences of the f64 loss, every entry of every parameter.
    let eps = 1e-6;
    let mut worst = 0.0f64;
    for (name, t) in model.parameters() {
        let grad = t.grad().unwrap_or_else(|| panic!("{name}: no gradient")).to_vec::<f32>().unwrap();
        let at = p.at(&name);
        for (j, &g) in grad.iter().enumerate() {
            let mut q = Params { values: p.values.clone(), offsets: p.offsets.clone() };
            q.values[at + j] += eps;
            let up = reference(&q, &h0, &c0).0;
            q.values[at + j] -= 2.0 * eps;
            let down = reference(&q, &h0, &c0).0;
            let fd = (up - down) / (2.0 * eps);
            let err = (g as f64 - fd).abs();
            worst = worst.max(err);
            assert!(err <= 2e-5 + 1e-3 * fd.abs(), "{name}[{j}]: autograd {g}, finite difference {fd}");
        }
    }
    eprintln!("largest gradient difference {worst:.1e}");
}

#[test]
fn lanes_continue_and_restart_together() {
    // 2 lanes over 0..22: segments of 11, windows of 4 -> positions 0, 4 (then 8 + 4 + 1 > 11: restart).
    let tokens: Vec<u32> = (0..22).collect();
    let mut s = StreamBatches::new(&tokens, 2, 4).unwrap();
    let rows = |t: &Tensor| t.to_vec::<i32>().unwrap();
    let (x, y, fresh) = s.next_batch().unwrap();
    assert!(fresh);
    assert_eq!(rows(&x), [0, 1, 2, 3, 11, 12, 13, 14]);
    assert_eq!(rows(&y), [1, 2, 3, 4, 12, 13, 14, 15]);
    let (x, _, fresh) = s.next_batch().unwrap();
    assert!(!fresh);
    assert_eq!(rows(&x), [4, 5, 6, 7, 15, 16, 17, 18]);
    let (x, _, fresh) = s.next_batch().unwrap();
    assert!(fresh, "the lanes start over");
    assert_eq!(rows(&x)[..4], [0, 1, 2, 3]);
    assert!(StreamBatches::new(&tokens, 5, 4).is_err(), "segments of 4 cannot hold a window of 4 + 1");
}

/// The state carried from one window into the next gives the same logits as one pass over
/// both windows (truncation stops gradients, not values).
#[test]
fn carried_state_continues_the_sequence() {
    let model = Lstm::new(CFG, 3).unwrap();
    let ids = Tensor::from_vec(vec![1i32, 2, 3, 4, 5, 6], &[1, 6]).unwrap();
    let zero = model.zero_state(1).unwrap();
    let (whole, _) = model.forward(&ids, &zero).unwrap();
    let (first, st) = model.forward(&ids.narrow(1, 0, 4).unwrap(), &zero).unwrap();
    let (second, _) = model.forward(&ids.narrow(1, 4, 2).unwrap(), &st.detach()).unwrap();
    let mut split = first.to_vec::<f32>().unwrap();
    split.extend(second.to_vec::<f32>().unwrap());
    for (a, b) in whole.to_vec::<f32>().unwrap().iter().zip(&split) {
        assert!((a - b).abs() < 1e-6);
    }
}

/// A few steps of the real loop learn: the loss on a repeating text falls.
#[test]
fn training_lowers_the_loss() {
    let tokens: Vec<u32> = (0..400).map(|i| [0, 1, 2, 3, 4, 5, 6, 2, 4][i % 9]).collect();
    let mut learner = lamina_train::lineage::lstm::LstmLearner::new(
        Lstm::new(CFG, 1).unwrap(),
        StreamBatches::new(&tokens, 4, 8).unwrap(),
    );
    assert_eq!(learner.tokens_per_step(), 32);
    let cfg = FitConfig {
        budget: Budget::Steps(100),
        schedule: CosineSchedule { max_lr: 3e-2, min_lr: 3e-3, warmup: 5, total: 100 },
        adamw: AdamWConfig::default(),
        grad_clip: Some(1.0),
        clock: Clock::Wall,
        progress: Progress::Quiet,
    };
    let report = fit(&mut learner, &cfg).unwrap();
    let (first, last) = (report.losses[0], report.losses[99]);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}
