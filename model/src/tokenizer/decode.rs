//! Tokens back to bytes: one token's piece (llama.cpp's `token_to_piece`) and the space
//! clean-up some vocabularies ask for (the end of llama.cpp's `detokenize`).

use super::byte_level;
use super::special::TokenKind;
use super::PieceStyle;

/// Append the bytes of one token; returns false for a special token skipped. Control and
/// unknown tokens give their text unless `skip_special`; user-defined tokens always give
/// their text; byte tokens (`<0x0A>`) their byte; unused ones nothing. `first`: no token
/// was kept before this one (WordPiece puts no space before the first).
pub fn append_piece(
    text: &str,
    kind: TokenKind,
    style: PieceStyle,
    skip_special: bool,
    first: bool,
    out: &mut Vec<u8>,
) -> bool {
    if let PieceStyle::WordPiece { cleanup } = style {
        return append_wordpiece(text, kind, cleanup, skip_special, first, out);
    }
    match kind {
        TokenKind::Control | TokenKind::Unknown if skip_special => return false,
        TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined => out.extend_from_slice(text.as_bytes()),
        TokenKind::Normal if style == PieceStyle::ByteLevel => byte_level::decode_into(text, out),
        TokenKind::Normal => {
            let mut rest = text;
            while let Some(at) = rest.find('\u{2581}') {
                out.extend_from_slice(&rest.as_bytes()[..at]);
                out.push(b' ');
                rest = &rest[at + '\u{2581}'.len_utf8()..];
            }
            out.extend_from_slice(rest.as_bytes());
        }
        TokenKind::Byte => out.extend(byte_of(text)),
        TokenKind::Unused => {}
    }
    true
}

/// Hugging Face's `decoders::WordPiece`: every token but the first is joined with a space,
/// or without one when it starts with `##`; `cleanup` is applied to each token so joined.
fn append_wordpiece(
    text: &str,
    kind: TokenKind,
    cleanup: bool,
    skip_special: bool,
    first: bool,
    out: &mut Vec<u8>,
) -> bool {
    if skip_special && kind.is_special() {
        return false;
    }
    let piece = match text.strip_prefix("##") {
        _ if first => text.to_string(),
        Some(rest) if kind == TokenKind::Normal => rest.to_string(),
        _ => format!(" {text}"),
    };
    let piece = if cleanup { tokenizers::decoders::wordpiece::cleanup(&piece) } else { piece };
    out.extend_from_slice(piece.as_bytes());
    true
}

/// The byte of a `<0xNN>` token.
fn byte_of(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

/// llama.cpp's `clean_spaces` passes over the decoded bytes: drop the space before
/// `?`, `!`, `.` and `,`; drop both spaces around a lone `'`; drop the space before
/// `'s`, `'m`, `'re` and `'ve`.
pub fn clean_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ,"
    let mut out = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    // " ' ": llama.cpp overwrites the skipped space with NUL in place, which the next
    // character then sees as its predecessor.
    let mut t = std::mem::take(&mut out);
    let mut i = 0;
    while i < t.len() {
        let x = t[i];
        if i > 0 && x == b'\'' && i + 1 < t.len() && t[i - 1] == b' ' && t[i + 1] == b' ' {
            out.pop();
            t[i + 1] = 0;
            i += 1;
        }
        out.push(x);
        i += 1;
    }
    // " 's", " 'm", " 're", " 've"
    t = std::mem::take(&mut out);
    for (i, &x) in t.iter().enumerate() {
        if i > 0 && t[i - 1] == b' ' && x == b'\'' && i + 1 < t.len() {
            let (x1, x2) = (t[i + 1], t.get(i + 2).copied());
            if matches!(x1, b's' | b'm') || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))) {
                out.pop();
            }
        }
        out.push(x);
    }
    *text = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut b = s.as_bytes().to_vec();
        clean_spaces(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn clean_spaces_as_llama_cpp() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("a ' b"), "a'b");
        assert_eq!(clean("x ' ' y"), "x'' y");
        assert_eq!(clean("he 's I 'm we 're they 've it 'd you 'll"), "he's I'm we're they've it 'd you 'll");
        assert_eq!(clean(" ."), ".");
    }

    #[test]
    fn pieces() {
        let mut out = Vec::new();
        append_piece("▁Hello▁▁x", TokenKind::Normal, PieceStyle::Spaced, false, true, &mut out);
        append_piece("<0x0A>", TokenKind::Byte, PieceStyle::Spaced, false, false, &mut out);
        append_piece("Ġw", TokenKind::Normal, PieceStyle::ByteLevel, false, false, &mut out);
        assert!(!append_piece("<s>", TokenKind::Control, PieceStyle::Spaced, true, false, &mut out));
        append_piece("<s>", TokenKind::Control, PieceStyle::Spaced, false, false, &mut out);
        assert_eq!(out, b" Hello  x\n w<s>");
        let mut out = Vec::new();
        let wp = PieceStyle::WordPiece { cleanup: true };
        for (t, k) in [
            ("##a", TokenKind::Normal),
            ("##b", TokenKind::Normal),
            (".", TokenKind::Normal),
            ("[SEP]", TokenKind::Control),
        ] {
            append_piece(t, k, wp, false, out.is_empty(), &mut out);
        }
        assert_eq!(out, b"##ab. [SEP]");
    }
}
