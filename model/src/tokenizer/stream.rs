//! Incremental decoding for generation: one token id in, the text it completes out.
//!
//! A byte-level token can end in the middle of a UTF-8 character (an emoji is often three
//! or four byte tokens), so bytes that might still become a character are held back
//! until the next token completes them. Bytes that can never become one come out as
//! U+FFFD at once, as a full `decode` would write them.

use super::Tokenizer;
use crate::error::Result;

pub struct TokenStream<'a> {
    tokenizer: &'a Tokenizer,
    skip_special: bool,
    /// Decoded bytes not yet returned: at most the first 1-3 bytes of one character.
    pending: Vec<u8>,
}

impl<'a> TokenStream<'a> {
    pub(super) fn new(tokenizer: &'a Tokenizer, skip_special: bool) -> TokenStream<'a> {
        TokenStream { tokenizer, skip_special, pending: Vec::new() }
    }

    /// Add one token; returns the text it completes, or `None` when it completes nothing
    /// (a partial character, or a special token that is skipped). An unknown id is an
    /// error and leaves the stream as it was.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.tokenizer.append_piece(id, self.skip_special, false, &mut self.pending)?;
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // Bytes no continuation can repair.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    /// End of generation: whatever is still held back (an unfinished character, written
    /// as U+FFFD), or `None`.
    pub fn finish(self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&self.pending).into_owned())
        }
    }
}
