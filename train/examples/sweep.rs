// scratch: hyperparameter sweep (temporary)
use lamina_model::GptConfig;
use lamina_train::{data::SHIPPED_CORPUS, train_char_gpt, Progress, TrainConfig};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let f = |i: usize| a[i].parse::<f32>().unwrap();
    let cfg = TrainConfig {
        model: GptConfig { vocab: 0, ctx: f(1) as usize, n_layer: f(2) as usize, n_head: 4, n_embd: f(3) as usize, dropout: 0.0 },
        batch: f(4) as usize,
        steps: f(5) as usize,
        max_lr: f(6),
        min_lr: f(6) / 10.0,
        warmup: 20,
        eval_batches: 8,
        seed: 7,
        progress: Progress::Quiet,
        ..TrainConfig::default()
    };
    let r = train_char_gpt(SHIPPED_CORPUS, &cfg).unwrap();
    let k = r.losses.len() / 10;
    let pts: Vec<String> = (0..10).map(|i| format!("{:.2}", r.losses[i * k..(i + 1) * k].iter().sum::<f32>() / k as f32)).collect();
    println!("{:?} time {:.1}s fwd {:.1} bwd {:.1} opt {:.1} tok/s {:.0} train {:.3} val {:.3} H {:.3} curve {}", &a[1..], r.train_time.as_secs_f64(), r.phases.forward.as_secs_f64(), r.phases.backward.as_secs_f64(), r.phases.optimizer.as_secs_f64(), r.tokens_per_sec, r.train_loss, r.val_loss, r.unigram_entropy, pts.join(" "));
}
