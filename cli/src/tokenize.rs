//! `lamina tokenize`: a text's token ids and pieces, printed as llama.cpp's
//! `llama-tokenize` prints them (`tools/tokenize/tokenize.cpp`): one `%6d -> 'piece'`
//! line per token by default, a Python list with `--ids`. Only the tokenizer is loaded,
//! so a vocabulary-only GGUF (llama.cpp's `ggml-vocab-*.gguf`) is a valid `--model`.

use crate::llm::{model_path, CliResult};
use clap::Args;
use lamina_model::gguf::GgufFile;
use lamina_model::Tokenizer;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// The text (or use --prompt, --file or --stdin).
    #[arg(value_name = "TEXT", conflicts_with_all = ["prompt", "file", "stdin"])]
    pub text: Option<String>,
    /// A GGUF file (a vocabulary-only one will do) or a Hugging Face directory
    /// (tokenizer.json). Default: SmolLM2-135M-Instruct, fetched on first use.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// The text, as llama-tokenize's -p.
    #[arg(long, short = 'p', value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Read the text from a file, byte for byte.
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Read the text from standard input.
    #[arg(long)]
    pub stdin: bool,
    /// Print only the ids, as a Python list: [1, 2, 3].
    #[arg(long, conflicts_with = "pieces")]
    pub ids: bool,
    /// Print only the pieces (the vocabulary's token texts, such as '▁Hello' or 'Ġworld'),
    /// as a Python list.
    #[arg(long)]
    pub pieces: bool,
    /// Do not add BOS (and EOS) even where the model asks for them.
    #[arg(long)]
    pub no_bos: bool,
    /// Tokenize special-token text such as `<|im_start|>` as plain text.
    #[arg(long)]
    pub no_parse_special: bool,
    /// Take `\n`, `\t`, `\\`, `\x41`, ... in the text literally.
    #[arg(long)]
    pub no_escape: bool,
    /// Print the number of tokens at the end.
    #[arg(long)]
    pub show_count: bool,
}

pub fn run(args: TokenizeArgs) -> CliResult {
    let path = model_path(&args.model)?;
    let tokenizer =
        if path.is_dir() { Tokenizer::from_hf_dir(&path)? } else { Tokenizer::from_gguf(&GgufFile::open(&path)?)? };
    let mut text = read_text(&args)?;
    if !args.no_escape {
        text = process_escapes(&text);
    }
    let text = String::from_utf8(text)
        .map_err(|e| format!("the text is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))?;
    // llama-tokenize adds the special tokens only if the model adds BOS.
    let add_special = tokenizer.adds_bos() && !args.no_bos;
    let ids = tokenizer.encode(&text, add_special, !args.no_parse_special)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&render(&tokenizer, &ids, &args)?)?;
    Ok(())
}

fn read_text(args: &TokenizeArgs) -> CliResult<Vec<u8>> {
    if args.stdin {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    if let Some(f) = &args.file {
        return std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()).into());
    }
    match args.text.as_ref().or(args.prompt.as_ref()) {
        Some(t) => Ok(t.clone().into_bytes()),
        None => Err("no text: give TEXT, --prompt, --file or --stdin".into()),
    }
}

/// The output, as bytes: a piece may be part of a UTF-8 character, printed raw as
/// llama-tokenize does.
fn render(tokenizer: &Tokenizer, ids: &[u32], args: &TokenizeArgs) -> CliResult<Vec<u8>> {
    let mut out = Vec::new();
    if args.ids {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "[{}]", list.join(", "))?;
    } else if args.pieces {
        let list: Vec<String> = ids.iter().map(|&i| python_str(tokenizer.id_to_token(i).unwrap_or(""))).collect();
        writeln!(out, "[{}]", list.join(", "))?;
    } else {
        for &id in ids {
            write!(out, "{id:6} -> '")?;
            out.extend(tokenizer.token_to_piece(id, true)?);
            writeln!(out, "'")?;
        }
    }
    if args.show_count {
        writeln!(out, "Total number of tokens: {}", ids.len())?;
    }
    Ok(out)
}

/// A Python string literal, as Python's `repr` writes it: single quotes unless the text
/// has a single quote and no double quote; backslashes, the quote and controls escaped.
fn python_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut q = String::with_capacity(s.len() + 2);
    q.push(quote);
    for c in s.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            c if c == quote => {
                q.push('\\');
                q.push(c);
            }
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if c.is_control() => q.push_str(&format!("\\x{:02x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push(quote);
    q
}

/// llama.cpp's `string_process_escapes`: `\n \r \t \' \" \\` and `\xHH`; any other
/// backslash stays as it is.
fn process_escapes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += 1;
        let hex = input.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match input[i] {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\'' | b'"' | b'\\' => out.push(input[i]),
            b'x' if hex.is_some() => {
                out.extend(hex);
                i += 2;
            }
            c => out.extend([b'\\', c]),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_llama_cpp() {
        let e = |s: &str| String::from_utf8(process_escapes(s.as_bytes())).unwrap();
        assert_eq!(e(r"a\nb\tc\\d\'\q"), "a\nb\tc\\d'\\q");
        assert_eq!(e(r"\x41\x4"), "A\\x4");
        assert_eq!(e("end\\"), "end\\");
    }

    #[test]
    fn python_lists() {
        assert_eq!(python_str("▁it's\n"), r#""▁it's\n""#);
        assert_eq!(python_str("a'\"b\\"), r#"'a\'"b\\'"#);
    }
}
