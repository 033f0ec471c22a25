//! Knowledge distillation (`lamina_train::distill`), one test binary: the loss against a
//! hand-worked example, the full KL, finite differences of an f64 reference and the GPU
//! (`loss.rs`); the teacher cache (`cache.rs`); distillation through the fine-tuning loop
//! on tiny LLaMAs, with exact resume (`run.rs`).

mod cache;
mod loss;
mod run;
