//! Token kinds and the split of a text on special tokens, before the tokenizer proper
//! sees it (llama.cpp's `tokenizer_st_partition`).

/// What a token is, from GGUF's `tokenizer.ggml.token_type` (llama.cpp's
/// `LLAMA_TOKEN_TYPE_*`) or from a `tokenizer.json`'s added tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Produced by the tokenizer; decodes through the byte-level alphabet or with `▁` as
    /// a space, as the vocabulary's family does.
    Normal,
    /// The unknown token: treated like a control token.
    Unknown,
    /// `<|im_start|>`, `<|endoftext|>`, ...: matched in text only when special tokens are
    /// parsed; left out of decoded text when special tokens are skipped.
    Control,
    /// Added vocabulary: always matched in text, always decoded as its literal text.
    UserDefined,
    /// Reserved slots: never produced, decode to nothing.
    Unused,
    /// Byte-fallback tokens (`<0x0A>`): decode to their byte.
    Byte,
}

impl TokenKind {
    /// From a GGUF token type; unknown values decode to nothing, as llama.cpp's "undefined".
    pub fn from_gguf(t: i64) -> TokenKind {
        match t {
            1 => TokenKind::Normal,
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            6 => TokenKind::Byte,
            _ => TokenKind::Unused,
        }
    }

    /// Tokens that decoding leaves out when asked to skip special tokens.
    pub fn is_special(self) -> bool {
        matches!(self, TokenKind::Control | TokenKind::Unknown)
    }
}

/// A token that is matched in the text before BPE runs.
#[derive(Clone, Debug)]
pub struct SpecialToken {
    pub id: u32,
    pub text: String,
    /// Matched even when special tokens are not parsed (user-defined tokens).
    pub always: bool,
    /// Whitespace to the left / right of a match is dropped (`tokenizer.json`'s `lstrip` /
    /// `rstrip`, llama.cpp's `LLAMA_TOKEN_ATTR_LSTRIP` / `RSTRIP`).
    pub lstrip: bool,
    pub rstrip: bool,
}

/// A piece of the input: text for BPE, or a special token already resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// Split `text` on special tokens the way llama.cpp's `tokenizer_st_partition` does: the
/// tokens are tried longest first, each splitting every text fragment left by the ones
/// before it at all its occurrences. `specials` must be sorted longest first; empty token
/// texts are ignored.
pub fn partition<'t>(text: &'t str, specials: &[SpecialToken], parse_special: bool) -> Vec<Fragment<'t>> {
    let mut fragments = Vec::new();
    if !text.is_empty() {
        fragments.push(Fragment::Text(text));
    }
    for sp in specials {
        if sp.text.is_empty() || !(parse_special || sp.always) {
            continue;
        }
        if !fragments.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(sp.text.as_str()))) {
            continue;
        }
        let mut next = Vec::with_capacity(fragments.len() + 2);
        for f in fragments {
            match f {
                Fragment::Token(_) => next.push(f),
                Fragment::Text(mut rest) => {
                    while let Some(at) = rest.find(sp.text.as_str()) {
                        let mut left = &rest[..at];
                        if sp.lstrip {
                            left = left.trim_end_matches(is_c_space);
                        }
                        if !left.is_empty() {
                            next.push(Fragment::Text(left));
                        }
                        next.push(Fragment::Token(sp.id));
                        rest = &rest[at + sp.text.len()..];
                        if sp.rstrip {
                            rest = rest.trim_start_matches(is_c_space);
                        }
                    }
                    if !rest.is_empty() {
                        next.push(Fragment::Text(rest));
                    }
                }
            }
        }
        fragments = next;
    }
    fragments
}

/// C's `isspace`, which llama.cpp strips with (it includes the vertical tab).
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(id: u32, text: &str, always: bool) -> SpecialToken {
        SpecialToken { id, text: text.into(), always, lstrip: false, rstrip: false }
    }

    #[test]
    fn splits_on_control_tokens_only_when_parsing_special() {
        let specials = [sp(1, "<|im_start|>", false), sp(2, "<|im_end|>", false)];
        let text = "<|im_start|>user\nhi<|im_end|>\n";
        assert_eq!(
            partition(text, &specials, true),
            [Fragment::Token(1), Fragment::Text("user\nhi"), Fragment::Token(2), Fragment::Text("\n")]
        );
        assert_eq!(partition(text, &specials, false), [Fragment::Text(text)]);
        assert!(partition("", &specials, true).is_empty());
    }

    #[test]
    fn user_defined_tokens_always_split_and_longest_wins() {
        let specials = [sp(7, "<tool>", true), sp(8, "<t>", true)];
        assert_eq!(
            partition("a<tool>b<t><t>", &specials, false),
            [Fragment::Text("a"), Fragment::Token(7), Fragment::Text("b"), Fragment::Token(8), Fragment::Token(8)]
        );
    }

    #[test]
    fn strip_flags_drop_ascii_whitespace() {
        let specials = [SpecialToken { id: 3, text: "<mask>".into(), always: true, lstrip: true, rstrip: true }];
        assert_eq!(
            partition("a  <mask>  b", &specials, false),
            [Fragment::Text("a"), Fragment::Token(3), Fragment::Text("b")]
        );
    }
}
