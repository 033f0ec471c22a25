//! `tokenizer.model`: a SentencePiece model file (protobuf `ModelProto`), read as llama.cpp's
//! converter reads it (`_set_vocab_sentencepiece`: pieces, scores and types become the
//! GGUF vocabulary) and run by the same SentencePiece engine as a GGUF `llama`
//! vocabulary. Only BPE models (Llama 2, Mistral, TinyLlama, Phi-3, Gemma) run that way;
//! Unigram models are refused.
//!
//! The protobuf is read by hand (four fields of two messages); every length is checked,
//! so a damaged file is an error, never a panic.

use super::eog::NamedIds;
use super::hf_json;
use super::special::TokenKind;
use super::{Engine, LeadingSpace, PieceStyle, Settings, SpecialIds, Tokenizer, Vocab};
use crate::error::{ModelError, Result};
use std::path::Path;

/// What the tokenizer needs from `ModelProto`.
#[derive(Debug, Default, PartialEq)]
struct Model {
    pieces: Vec<(String, f32, i32)>,
    /// `TrainerSpec.model_type`: 1 Unigram, 2 BPE (the default when absent is Unigram).
    model_type: u64,
    unk_id: Option<u64>,
    bos_id: Option<u64>,
    eos_id: Option<u64>,
    pad_id: Option<u64>,
    /// `NormalizerSpec.add_dummy_prefix` (default true).
    add_dummy_prefix: bool,
}

/// The tokenizer of `dir/tokenizer.model`, with `tokenizer_config.json`'s special tokens
/// and flags and `generation_config.json`'s end-of-generation ids when present.
pub fn load(dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.model");
    let path = path.as_path();
    let bytes = crate::hf::read_side_file(path, "SentencePiece model")?;
    let bad = |msg: String| ModelError::Tokenizer(format!("{}: {msg}", path.display()));
    let m = parse(&bytes).map_err(bad)?;
    if m.model_type != 2 {
        let kind = if m.model_type == 1 { "a Unigram" } else { "a non-BPE" };
        return Err(ModelError::Unsupported(format!(
            "{}: {kind} SentencePiece model (model_type {}); only BPE models are supported",
            path.display(),
            m.model_type
        )));
    }
    if m.pieces.is_empty() {
        return Err(bad("no pieces".into()));
    }
    let n = m.pieces.len();
    let texts: Vec<String> = m.pieces.iter().map(|p| p.0.clone()).collect();
    let kinds = m.pieces.iter().map(|p| TokenKind::from_gguf(p.2 as i64)).collect();
    let scores = m.pieces.iter().map(|p| p.1).collect();
    // SentencePiece's defaults are unk 0, bos 1, eos 2, pad -1 (none).
    let id = |v: Option<u64>, default: Option<u32>| {
        v.map_or(default, |i| u32::try_from(i).ok()).filter(|&i| (i as usize) < n)
    };
    let mut ids = SpecialIds {
        unk: id(m.unk_id, Some(0)),
        bos: id(m.bos_id, Some(1)),
        eos: id(m.eos_id, Some(2)),
        pad: id(m.pad_id, None),
        add_bos: true,
        ..SpecialIds::default()
    };
    hf_json::apply_tokenizer_config(dir, &texts, &mut ids);
    let leading_space = if m.add_dummy_prefix { LeadingSpace::OfFirstToken } else { LeadingSpace::Keep };
    let settings = Settings {
        ids,
        add_space_prefix: m.add_dummy_prefix,
        clean_spaces: false,
        pieces: PieceStyle::Spaced,
        leading_space,
    };
    let named = NamedIds { eos: settings.ids.eos, ..NamedIds::default() };
    let mut tok = Tokenizer::assemble(Vocab::new(texts, kinds, scores), Engine::Spm, settings, named, |_| Vec::new());
    tok.eog.extend(hf_json::generation_eog(dir, n));
    Ok(tok)
}

/// A protobuf reader over one message.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

/// One field: its number and its value (a varint, a 32-bit word, or bytes).
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.at).ok_or("a varint runs past the end")?;
            self.at += 1;
            v |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or("a field runs past the end")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn next(&mut self) -> Option<std::result::Result<(u64, Field<'a>), String>> {
        (self.at < self.b.len()).then(|| {
            let key = self.varint()?;
            let field = match key & 7 {
                0 => Field::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Field::Other
                }
                2 => {
                    let n = usize::try_from(self.varint()?).map_err(|_| "a huge length")?;
                    Field::Bytes(self.take(n)?)
                }
                5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
                w => return Err(format!("wire type {w} of field {} is not supported", key >> 3)),
            };
            Ok((key >> 3, field))
        })
    }
}

fn fields(b: &[u8]) -> Reader<'_> {
    Reader { b, at: 0 }
}

fn parse(bytes: &[u8]) -> std::result::Result<Model, String> {
    let mut m = Model { add_dummy_prefix: true, model_type: 1, ..Model::default() };
    let mut top = fields(bytes);
    while let Some(f) = top.next() {
        match f? {
            (1, Field::Bytes(p)) => m.pieces.push(piece(p)?),
            (2, Field::Bytes(spec)) => {
                let mut r = fields(spec);
                while let Some(f) = r.next() {
                    match f? {
                        (3, Field::Varint(v)) => m.model_type = v,
                        (40, Field::Varint(v)) => m.unk_id = Some(v),
                        (41, Field::Varint(v)) => m.bos_id = Some(v),
                        (42, Field::Varint(v)) => m.eos_id = Some(v),
                        (43, Field::Varint(v)) => m.pad_id = Some(v),
                        _ => {}
                    }
                }
            }
            (3, Field::Bytes(spec)) => {
                let mut r = fields(spec);
                while let Some(f) = r.next() {
                    if let (3, Field::Varint(v)) = f? {
                        m.add_dummy_prefix = v != 0;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(m)
}

/// `SentencePiece { piece = 1; score = 2; type = 3 (NORMAL when absent) }`.
fn piece(b: &[u8]) -> std::result::Result<(String, f32, i32), String> {
    let (mut text, mut score, mut ty) = (String::new(), 0.0, 1);
    let mut r = fields(b);
    while let Some(f) = r.next() {
        match f? {
            (1, Field::Bytes(s)) => text = String::from_utf8(s.to_vec()).map_err(|_| "a piece is not UTF-8")?,
            (2, Field::Fixed32(bits)) => score = f32::from_bits(bits),
            (3, Field::Varint(v)) => ty = i32::try_from(v).unwrap_or(0),
            _ => {}
        }
    }
    Ok((text, score, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_errors() {
        assert!(parse(&[0x0A, 0x05, 0x0A]).is_err(), "a piece longer than the file");
        assert!(parse(&[0x0A]).is_err(), "a key without its length");
        assert!(parse(&[0xFF; 12]).is_err(), "an endless varint");
        assert!(parse(&[0x0B]).is_err(), "wire type 3");
        assert_eq!(parse(&[]).unwrap().pieces.len(), 0);
    }
}
