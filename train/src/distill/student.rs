//! A student made from the teacher itself: some of its blocks (for example every other
//! one), renumbered from 0, with the embedding, final norm, output head, tokenizer and
//! every other setting copied unchanged (the blocks' tensors keep their type: a Q4_1
//! teacher gives a Q4_1 student). Starting from the teacher's own weights is how
//! DistilBERT initialised its student; the tokenizer is the teacher's by construction.

use crate::TrainError;
use lamina_model::gguf::{GgufFile, GgufWriter, MetaValue};
use std::borrow::Cow;
use std::path::Path;

/// The blocks named by `spec`: a comma list of indices and ranges (`0,2,4`, `0-5,11`), or
/// `every=N` (blocks 0, N, 2N, ...), for a teacher of `n_layers` blocks.
pub fn parse_layers(spec: &str, n_layers: usize) -> Result<Vec<usize>, TrainError> {
    let bad = |msg: String| TrainError::Config(format!("student layers `{spec}`: {msg}"));
    let spec = spec.trim().strip_prefix("layers=").unwrap_or(spec.trim());
    let layers: Vec<usize> = if let Some(n) = spec.strip_prefix("every=") {
        let n: usize = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| bad("every=N needs N >= 1".into()))?;
        (0..n_layers).step_by(n).collect()
    } else {
        let mut out = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let num = |s: &str| s.parse::<usize>().map_err(|_| bad(format!("`{s}` is not a block index")));
            match part.split_once('-') {
                Some((a, b)) => out.extend(num(a)?..=num(b)?),
                None => out.push(num(part)?),
            }
        }
        out
    };
    if layers.is_empty() {
        return Err(bad("no block chosen".into()));
    }
    if let Some(&l) = layers.iter().find(|&&l| l >= n_layers) {
        return Err(bad(format!("block {l} does not exist: the teacher has {n_layers} (0 to {})", n_layers - 1)));
    }
    if layers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("list the blocks in increasing order, each once".into()));
    }
    Ok(layers)
}

/// Write the student made of the teacher's blocks `layers` to `out` (atomically).
pub fn write_layer_subset(teacher: &GgufFile, layers: &[usize], out: &Path) -> Result<(), TrainError> {
    let arch = teacher.architecture()?.to_string();
    let count_key = format!("{arch}.block_count");
    let n_layers = teacher.get_u64(&count_key)? as usize;
    let metadata = teacher
        .metadata_in_order()
        .map(|(k, v)| {
            let v = match k {
                _ if k == count_key => MetaValue::U32(layers.len() as u32),
                "general.name" => MetaValue::String(format!(
                    "{} (blocks {} of {n_layers})",
                    v.as_str().unwrap_or("model"),
                    layers.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",")
                )),
                _ => v.clone(),
            };
            (k.to_string(), v)
        })
        .collect();
    let mut writer = GgufWriter::new(metadata)?;
    // (student name, teacher name) in the teacher's order.
    let mut names = Vec::new();
    for info in &teacher.tensors {
        let renamed = match block_of(&info.name) {
            Some((block, rest)) => layers.iter().position(|&l| l == block).map(|new| format!("blk.{new}.{rest}")),
            None => Some(info.name.clone()),
        };
        if let Some(name) = renamed {
            writer.add_tensor(&name, info.ty, &info.ne)?;
            names.push(info.name.clone());
        }
    }
    let mut source = names.iter();
    writer.write_file(out, |_| {
        let info = teacher.tensor_info(source.next().expect("one per tensor")).expect("listed from the teacher");
        Ok(Cow::Borrowed(teacher.tensor_bytes(info)))
    })?;
    Ok(())
}

/// `blk.N.rest` as (N, rest).
fn block_of(name: &str) -> Option<(usize, &str)> {
    let (n, rest) = name.strip_prefix("blk.")?.split_once('.')?;
    Some((n.parse().ok()?, rest))
}
