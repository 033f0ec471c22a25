//! The SFT batcher as the loop's batch source: its position goes into checkpoints as
//! JSON, and restoring rebuilds it at that position (refused for other data or settings).

use super::{BatchSource, TrainBatch};
use crate::sft::{BatchPosition, Batcher, BatcherConfig, Encoded};
use serde_json::Value;

pub struct SftBatches {
    batcher: Batcher,
    config: BatcherConfig,
}

impl SftBatches {
    pub fn new(examples: Vec<Encoded>, config: BatcherConfig) -> Result<SftBatches, crate::sft::SftError> {
        Ok(SftBatches { batcher: Batcher::new(examples, config)?, config })
    }

    /// The training examples, in the order they were given.
    pub fn examples(&self) -> &[Encoded] {
        self.batcher.examples()
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.batcher.batches_per_epoch()
    }
}

impl BatchSource for SftBatches {
    fn next_batch(&mut self) -> TrainBatch {
        let b = self.batcher.next_batch();
        TrainBatch { batch: b.batch, seq: b.seq, tokens: b.tokens, labels: b.labels }
    }

    fn position(&self) -> Value {
        serde_json::to_value(self.batcher.position()).unwrap_or(Value::Null)
    }

    fn restore(&mut self, position: &Value) -> Result<(), String> {
        let pos: BatchPosition = serde_json::from_value(position.clone())
            .map_err(|e| format!("bad data position in the checkpoint: {e}"))?;
        let examples = self.batcher.examples().to_vec();
        self.batcher = Batcher::resume(examples, self.config, pos).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn epoch(&self) -> f64 {
        let p = self.batcher.position();
        p.epoch as f64 + p.index as f64 / self.batcher.batches_per_epoch().max(1) as f64
    }
}
