//! The teacher cache: shards round-trip exactly; an interrupted caching run continues
//! where it stopped and ends with the files of an uninterrupted one, as does a cache built
//! in parts (the ranks of an MPI job); truncated, damaged,
//! missing and foreign shards or manifests are clear errors, never panics.

use lamina_tensor::Tensor;
use lamina_train::distill::cache::{self, shard, CacheSpec, Part, TeacherCache};
use lamina_train::distill::TeacherTopK;
use lamina_train::finetune::TrainBatch;
use lamina_train::sft::Encoded;
use lamina_train::TrainError;
use std::path::{Path, PathBuf};

const VOCAB: usize = 12;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-kd-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Seven examples of different lengths; the first two tokens of each are a prompt (not scored).
fn examples() -> Vec<Encoded> {
    (0..7u32)
        .map(|e| {
            let tokens: Vec<u32> = (0..5 + e % 3).map(|i| (e * 7 + i * 5) % VOCAB as u32).collect();
            let mut labels: Vec<i32> = tokens[1..].iter().map(|&t| t as i32).collect();
            labels.push(-100);
            labels[0] = -100;
            Encoded { tokens, labels }
        })
        .collect()
}

fn spec(examples: &[Encoded]) -> CacheSpec {
    CacheSpec {
        k: 3,
        temperature: 2.0,
        vocab: VOCAB,
        shard_examples: 3,
        teacher: "test-teacher".into(),
        data: cache::data_fingerprint(examples),
        examples: examples.len(),
    }
}

/// A causal stand-in teacher: position i's logits depend on the row's tokens through i.
fn teacher(tokens: &[u32], batch: usize) -> Result<Tensor, TrainError> {
    let mut logits = Vec::new();
    for row in tokens.chunks(tokens.len() / batch) {
        let mut h = 1u64;
        for &t in row {
            h = h.wrapping_mul(31).wrapping_add(t as u64 + 1);
            logits.extend((0..VOCAB as u64).map(|v| ((h.wrapping_mul(v + 3) % 97) as f32) / 10.0));
        }
    }
    Ok(Tensor::from_vec(logits, &[tokens.len(), VOCAB])?)
}

fn build(dir: &Path, ex: &[Encoded]) -> cache::BuildReport {
    cache::build(dir, &spec(ex), ex, 2, &mut teacher, &mut |_, _| {}).unwrap()
}

fn shard_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().to_string(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn shards_round_trip_exactly() {
    let top = TeacherTopK {
        k: 2,
        ids: vec![5, 1, 0, 7],
        log_probs: vec![-0.1, -2.5, -0.7, -f32::MIN_POSITIVE],
        log_rest: vec![-3.0, -80.0],
    };
    let entries = vec![
        shard::Entry { tokens: vec![1, 2, 3, 4], positions: vec![1, 3], top },
        shard::Entry {
            tokens: vec![9],
            positions: vec![],
            top: TeacherTopK { k: 2, ids: vec![], log_probs: vec![], log_rest: vec![] },
        },
    ];
    let bytes = shard::encode(4, 2, &entries);
    let (index, k, back) = shard::decode(&bytes).unwrap();
    assert_eq!((index, k), (4, 2));
    assert_eq!(back, entries);
    assert_eq!(shard::encode(index, k, &back), bytes);
}

#[test]
fn the_cache_holds_the_teachers_top_k_and_a_batch_finds_its_rows() {
    let dir = tmp("lookup");
    let ex = examples();
    let r = build(&dir, &ex);
    assert_eq!((r.shards, r.reused), (3, 0));
    let c = TeacherCache::open(&dir, &spec(&ex)).unwrap();
    // Example 4's entry is its teacher top k at τ = 2, from the full log-softmax.
    let e = &ex[4];
    let found = c.get(&e.tokens[..e.len() - 1], &(1..e.len() as u32 - 1).collect::<Vec<_>>()).unwrap();
    let logits = teacher(&e.tokens, 1).unwrap().to_vec_f32().unwrap();
    for (row, &p) in found.positions.iter().enumerate() {
        let z: Vec<f64> =
            logits[p as usize * VOCAB..(p as usize + 1) * VOCAB].iter().map(|&v| v as f64 / 2.0).collect();
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        let mut order: Vec<usize> = (0..VOCAB).collect();
        order.sort_by(|&a, &b| z[b].total_cmp(&z[a]).then(a.cmp(&b)));
        let ids: Vec<u32> = order[..3].iter().map(|&i| i as u32).collect();
        assert_eq!(&found.top.ids[row * 3..row * 3 + 3], ids.as_slice());
        for j in 0..3 {
            let want = z[order[j]] - lse;
            assert!((found.top.log_probs[row * 3 + j] as f64 - want).abs() < 1e-5);
        }
        let rest: f64 = order[3..].iter().map(|&i| (z[i] - lse).exp()).sum();
        assert!((found.top.log_rest[row] as f64 - rest.ln()).abs() < 1e-5);
    }
    // A batch of examples 4 and 0, padded: rows are found whatever the padding.
    let seq = ex[4].len().max(ex[0].len()) + 2;
    let (mut tokens, mut labels) = (Vec::new(), Vec::new());
    for e in [&ex[4], &ex[0]] {
        tokens.extend(e.tokens.iter().copied().chain(std::iter::repeat_n(0, seq - e.len())));
        labels.extend(e.labels.iter().copied().chain(std::iter::repeat_n(-100, seq - e.len())));
    }
    let b = TrainBatch { batch: 2, seq, tokens, labels };
    let (rows, top, lab) = c.targets(&b).unwrap();
    assert_eq!(rows.len(), b.scored());
    assert_eq!(top.rows(), rows.len());
    assert_eq!(rows[0], 1);
    assert_eq!(lab[0], ex[4].labels[1] as u32);
    assert_eq!(&top.ids[..found.top.ids.len()], found.top.ids.as_slice());
    // Tokens the cache has not seen are an error, not a guess.
    let mut other = b.clone();
    other.tokens[0] = (other.tokens[0] + 1) % VOCAB as u32;
    let err = c.targets(&other).unwrap_err().to_string();
    assert!(err.contains("no entry"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_interrupted_caching_run_continues_and_equals_an_uninterrupted_one() {
    let ex = examples();
    let whole = tmp("whole");
    build(&whole, &ex);

    // The teacher fails on its 5th example: shard 0 (3 examples) is complete, shard 1 is not.
    let split = tmp("split");
    let mut calls = 0;
    let mut failing = |t: &[u32], b: usize| {
        calls += b;
        if calls > 4 {
            return Err(TrainError::Config("interrupted".into()));
        }
        teacher(t, b)
    };
    assert!(cache::build(&split, &spec(&ex), &ex, 1, &mut failing, &mut |_, _| {}).is_err());
    let names: Vec<String> = shard_files(&split).into_iter().map(|f| f.0).collect();
    assert_eq!(names, ["manifest.json", "shard-00000.bin"]);
    let err = TeacherCache::open(&split, &spec(&ex)).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("shard-00001.bin") && err.contains("did not finish"), "{err}");

    let mut calls = 0;
    let mut counting = |t: &[u32], b: usize| {
        calls += b;
        teacher(t, b)
    };
    let r = cache::build(&split, &spec(&ex), &ex, 3, &mut counting, &mut |_, _| {}).unwrap();
    assert_eq!((r.shards, r.reused, calls), (3, 1, 4), "only shards 1 and 2 are computed");
    assert_eq!(shard_files(&split), shard_files(&whole));
    for d in [whole, split] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_cache_built_in_parts_equals_one_built_whole() {
    let ex = examples();
    let (whole, parts) = (tmp("whole-p"), tmp("parts"));
    build(&whole, &ex);
    let s = spec(&ex);
    let err = cache::build_part(&parts, &s, &ex, Part::WHOLE, 2, &mut teacher, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("prepare"), "{err}");
    cache::prepare(&parts, &s, &ex).unwrap();
    // Part 1 of 2 holds shard 1 of 0..3; part 0, shards 0 and 2.
    let mut seen = Vec::new();
    for (index, shards) in [(1, 1), (0, 2)] {
        let mut progress = |done: usize, total: usize| seen.push((index, done, total));
        let r = cache::build_part(&parts, &s, &ex, Part { index, count: 2 }, 2, &mut teacher, &mut progress).unwrap();
        assert_eq!((r.shards, r.reused), (shards, 0));
    }
    assert_eq!(seen, [(1, 1, 1), (0, 1, 2), (0, 2, 2)]);
    assert_eq!(shard_files(&parts), shard_files(&whole));
    for d in [whole, parts] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn damaged_caches_are_clear_errors() {
    let ex = examples();
    let dir = tmp("damaged");
    build(&dir, &ex);
    let s = spec(&ex);
    let path = dir.join("shard-00001.bin");
    let good = std::fs::read(&path).unwrap();
    let open_err = || TeacherCache::open(&dir, &s).map(|_| ()).unwrap_err().to_string();

    std::fs::write(&path, &good[..good.len() - 5]).unwrap();
    let err = open_err();
    assert!(err.contains("shard-00001.bin") && err.contains("truncated"), "{err}");
    for cut in [0, 7, 20, 40] {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(open_err().contains("shard-00001.bin"));
    }
    let mut flipped = good.clone();
    flipped[40] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    assert!(open_err().contains("checksum"), "{}", open_err());
    // A shard of the wrong place (shard 0's bytes under shard 1's name).
    std::fs::write(&path, std::fs::read(dir.join("shard-00000.bin")).unwrap()).unwrap();
    assert!(open_err().contains("expected shard 1"), "{}", open_err());
    // A caching run over the damage recomputes that shard.
    build(&dir, &ex);
    assert_eq!(std::fs::read(&path).unwrap(), good);
    // Another k, temperature or data is refused, naming what differs.
    let err = TeacherCache::open(&dir, &CacheSpec { k: 4, ..s.clone() }).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("k: 3 in the cache, 4 now"), "{err}");
    let err = cache::build(&dir, &CacheSpec { temperature: 1.0, ..s.clone() }, &ex, 2, &mut teacher, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("temperature"), "{err}");
    std::fs::write(dir.join("manifest.json"), "{not json").unwrap();
    assert!(open_err().contains("manifest.json"), "{}", open_err());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(open_err().contains("no manifest.json"), "{}", open_err());
}
