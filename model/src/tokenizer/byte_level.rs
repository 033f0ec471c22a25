//! GPT-2's byte-level alphabet: every byte is written as one printable character, so a
//! byte-level BPE vocabulary is a set of strings over 256 characters. Printable Latin-1
//! bytes stand for themselves; the other 68 (controls, space, 0x7F-0xA0, soft hyphen)
//! are shifted to U+0100.. in byte order (space is `Ġ`, newline `Ċ`).

use std::sync::OnceLock;

/// The character that stands for each byte.
pub fn byte_to_char() -> &'static [char; 256] {
    static TABLE: OnceLock<[char; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\0'; 256];
        let mut shifted = 0u32;
        for (b, slot) in table.iter_mut().enumerate() {
            let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
            let code = if printable {
                b as u32
            } else {
                shifted += 1;
                255 + shifted
            };
            *slot = char::from_u32(code).expect("U+0021..U+0143 are all scalar values");
        }
        table
    })
}

/// The byte a character of the alphabet stands for, or `None` for other characters.
pub fn char_to_byte(c: char) -> Option<u8> {
    // Inverse of `byte_to_char`, indexed by code point (the alphabet ends at U+0143).
    static INVERSE: OnceLock<[Option<u8>; 0x144]> = OnceLock::new();
    let inverse = INVERSE.get_or_init(|| {
        let mut inv = [None; 0x144];
        for (b, &c) in byte_to_char().iter().enumerate() {
            inv[c as usize] = Some(b as u8);
        }
        inv
    });
    inverse.get(c as usize).copied().flatten()
}

/// Append the bytes a byte-level token stands for. Characters outside the alphabet (a
/// malformed vocabulary) are kept as their own UTF-8.
pub fn decode_into(token: &str, out: &mut Vec<u8>) {
    for c in token.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_is_a_bijection() {
        let table = byte_to_char();
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(table[b as usize]), Some(b), "byte {b:#04x}");
        }
        assert_eq!(char_to_byte('大'), None);
    }
}
