//! One shard of the teacher cache, a little-endian binary file:
//!
//! ```text
//! header   magic "LMKDSHRD", version u32 = 1, shard index u32, k u32, examples u32,
//!          body length u64
//! body     per example: tokens n u32, scored rows m u32,
//!                       tokens [u32; n]      (the example through its last scored position)
//!                       positions [u32; m]   (where the scored rows are, ascending)
//!                       ids [u32; m*k], log_probs [f32; m*k], log_rest [f32; m]
//! trailer  checksum u64 of the header and body
//! ```
//!
//! A truncated file is told by the body length, a damaged one by the checksum; decoding
//! never allocates more than the bytes present can hold.

use super::super::loss::TeacherTopK;

const MAGIC: &[u8; 8] = b"LMKDSHRD";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 * 4 + 8;

/// One training example's teacher targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The example's tokens through its last scored position.
    pub tokens: Vec<u32>,
    /// The scored positions (labels not -100), ascending.
    pub positions: Vec<u32>,
    /// The teacher's top k at each scored position.
    pub top: TeacherTopK,
}

/// The shards' checksum: the run files' fingerprint, over bytes in memory.
pub use crate::finetune::settings::bytes_fingerprint as checksum;

pub fn encode(index: u32, k: usize, entries: &[Entry]) -> Vec<u8> {
    let mut body = Vec::new();
    let put = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
    for e in entries {
        put(&mut body, e.tokens.len() as u32);
        put(&mut body, e.positions.len() as u32);
        e.tokens.iter().chain(&e.positions).chain(&e.top.ids).for_each(|&v| put(&mut body, v));
        e.top.log_probs.iter().chain(&e.top.log_rest).for_each(|&v| body.extend_from_slice(&v.to_le_bytes()));
    }
    let mut out = Vec::with_capacity(HEADER + body.len() + 8);
    out.extend_from_slice(MAGIC);
    for v in [VERSION, index, k as u32, entries.len() as u32] {
        put(&mut out, v);
    }
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A decoded shard: its index, k and entries. Errors say what is wrong in words.
pub fn decode(bytes: &[u8]) -> Result<(u32, usize, Vec<Entry>), String> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(format!("not a teacher-cache shard ({} bytes, no LMKDSHRD header)", bytes.len()));
    }
    let mut r = Reader { buf: &bytes[..HEADER], pos: 8 };
    let (version, index, k, n) = (r.u32()?, r.u32()?, r.u32()? as usize, r.u32()? as usize);
    let body_len = r.u64()?;
    if version != VERSION {
        return Err(format!("shard format version {version}; this build reads version {VERSION}"));
    }
    let want = (HEADER as u64).saturating_add(body_len).saturating_add(8);
    if (bytes.len() as u64) < want {
        return Err(format!("truncated: {} bytes of {want} (an interrupted copy?)", bytes.len()));
    }
    if bytes.len() as u64 > want {
        return Err(format!("{} bytes after the end of the shard", bytes.len() as u64 - want));
    }
    let end = want as usize - 8;
    let stored = u64::from_le_bytes(bytes[end..].try_into().expect("8 bytes"));
    if checksum(&bytes[..end]) != stored {
        return Err("checksum mismatch: the shard is damaged".into());
    }
    if k == 0 {
        return Err("k is 0".into());
    }
    let mut r = Reader { buf: &bytes[..end], pos: HEADER };
    let mut entries = Vec::with_capacity(n.min(r.left() / 8));
    for i in 0..n {
        entries.push(r.entry(k).map_err(|e| format!("example {i}: {e}"))?);
    }
    if r.left() != 0 {
        return Err(format!("{} unread bytes after {n} examples", r.left()));
    }
    Ok((index, k, entries))
}

/// A bounds-checked cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.left() {
            return Err(format!("needs {n} bytes at offset {}, {} left", self.pos, self.left()));
        }
        self.pos += n;
        Ok(&self.buf[self.pos - n..self.pos])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// `n` 4-byte words, refused before allocating when the bytes are not there.
    fn words(&mut self, n: usize) -> Result<Vec<[u8; 4]>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("count overflows")?)?;
        Ok(bytes.chunks_exact(4).map(|c| c.try_into().expect("4 bytes")).collect())
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        Ok(self.words(n)?.into_iter().map(u32::from_le_bytes).collect())
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        Ok(self.words(n)?.into_iter().map(f32::from_le_bytes).collect())
    }

    fn entry(&mut self, k: usize) -> Result<Entry, String> {
        let (n, m) = (self.u32()? as usize, self.u32()? as usize);
        let tokens = self.u32s(n)?;
        let positions = self.u32s(m)?;
        if positions.windows(2).any(|w| w[0] >= w[1]) || positions.last().is_some_and(|&p| p as usize >= n) {
            return Err(format!("scored positions {positions:?} are not ascending inside {n} tokens"));
        }
        let ids = self.u32s(m.checked_mul(k).ok_or("count overflows")?)?;
        let log_probs = self.f32s(m * k)?;
        let log_rest = self.f32s(m)?;
        Ok(Entry { tokens, positions, top: TeacherTopK { k, ids, log_probs, log_rest } })
    }
}
