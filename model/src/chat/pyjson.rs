//! `tojson` as transformers defines it for chat templates: Python's `json.dumps(x,
//! ensure_ascii=False, indent=None, separators=None, sort_keys=False)`, with those four
//! keyword arguments. Its text differs from minijinja's own `tojson` (which escapes HTML
//! characters and never puts a space after `,` or `:`), and templates print it into the
//! prompt, so the model sees exactly what it was trained on only if we match it.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// How `json.dumps` lays the text out.
struct Layout {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// The `tojson` filter.
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_string()),
        Some(v) => Some(" ".repeat(usize::try_from(v).map_err(|_| bad("indent must be a count or a string"))?)),
    };
    // Python's defaults: ", " between items without an indent, "," with one.
    let (item_sep, key_sep) = match separators.as_deref() {
        None => (if indent.is_some() { "," } else { ", " }.to_string(), ": ".to_string()),
        Some([item, key]) => (item.clone(), key.clone()),
        Some(_) => return Err(bad("separators must be (item_separator, key_separator)")),
    };
    let layout = Layout {
        ensure_ascii: ensure_ascii.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys == Some(true),
    };
    let mut out = String::new();
    write_value(value, &layout, 0, &mut out)?;
    Ok(out)
}

fn bad(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("tojson: {msg}"))
}

fn write_value(v: &Value, layout: &Layout, depth: usize, out: &mut String) -> Result<(), Error> {
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => write_number(v, out),
        ValueKind::String => write_string(v.as_str().unwrap_or(""), layout.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            write_container(('[', ']'), items.len(), layout, depth, out, |i, out| {
                write_value(&items[i], layout, depth + 1, out)
            })?;
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if layout.sort_keys {
                keys.sort();
            }
            write_container(('{', '}'), keys.len(), layout, depth, out, |i, out| {
                let key = &keys[i];
                match key.as_str() {
                    Some(s) => write_string(s, layout.ensure_ascii, out),
                    None => write_string(&key.to_string(), layout.ensure_ascii, out),
                }
                out.push_str(&layout.key_sep);
                write_value(&v.get_item(key)?, layout, depth + 1, out)
            })?;
        }
        _ => return Err(bad(&format!("a value of type {} is not JSON serializable", v.kind()))),
    }
    Ok(())
}

/// `[a, b]` or, with an indent, one item a line at `depth + 1`; empty is `[]` either way.
fn write_container(
    (open, close): (char, char),
    n: usize,
    layout: &Layout,
    depth: usize,
    out: &mut String,
    mut item: impl FnMut(usize, &mut String) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if n > 0 {
        let newline = |out: &mut String, d: usize| {
            if let Some(ind) = &layout.indent {
                out.push('\n');
                (0..d).for_each(|_| out.push_str(ind));
            }
        };
        for i in 0..n {
            if i > 0 {
                out.push_str(&layout.item_sep);
            }
            newline(out, depth + 1);
            item(i, out)?;
        }
        newline(out, depth);
    }
    out.push(close);
    Ok(())
}

/// Integers as integers; floats as Python's `repr` writes them (`1.0`, `0.1`, `1e+20`).
fn write_number(v: &Value, out: &mut String) {
    if let Ok(i) = i64::try_from(v.clone()) {
        if v.as_i64().is_some() {
            out.push_str(&i.to_string());
            return;
        }
    }
    let x = f64::try_from(v.clone()).unwrap_or(f64::NAN);
    out.push_str(&py_float_repr(x));
}

fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = x.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let s = x.to_string();
        return if s.contains('.') { s } else { s + ".0" };
    }
    // Rust writes `1e20` / `1.5e-7`; Python `1e+20` / `1.5e-07`.
    let s = format!("{x:e}");
    let (mantissa, exp) = s.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// A JSON string as Python writes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other
/// control characters as `\u00XX`; with `ensure_ascii`, everything outside printable
/// ASCII as `\uXXXX` (UTF-16 surrogate pairs above U+FFFF).
fn write_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(v: serde_json::Value, args: &[(&str, Value)]) -> String {
        let kwargs = Kwargs::from_iter(args.iter().map(|(k, v)| (*k, v.clone())));
        tojson(&Value::from_serialize(&v), kwargs).unwrap()
    }

    /// Expected texts are Python 3's `json.dumps` of the same values.
    #[test]
    fn matches_python_json_dumps() {
        // Keys in sorted order: serde_json's maps (without preserve_order) sort them.
        let v = serde_json::json!({"args": [1, 2.5, true, null], "e": {}, "l": [], "name": "f", "s": "é\"\\\n\u{1}😀"});
        assert_eq!(
            dumps(v.clone(), &[]),
            r#"{"args": [1, 2.5, true, null], "e": {}, "l": [], "name": "f", "s": "é\"\\\n\u0001😀"}"#
        );
        assert_eq!(
            dumps(v.clone(), &[("ensure_ascii", Value::from(true))]),
            r#"{"args": [1, 2.5, true, null], "e": {}, "l": [], "name": "f", "s": "\u00e9\"\\\n\u0001\ud83d\ude00"}"#
        );
        assert_eq!(
            dumps(serde_json::json!({"a": [1, {"b": 2}], "c": {}}), &[("indent", Value::from(2))]),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ],\n  \"c\": {}\n}"
        );
        assert_eq!(
            dumps(
                serde_json::json!({"b": 1, "a": 2}),
                &[("sort_keys", Value::from(true)), ("separators", Value::from(vec![",", ":"]))]
            ),
            r#"{"a":2,"b":1}"#
        );
        assert_eq!(py_float_repr(1e20), "1e+20");
        assert_eq!(py_float_repr(1.5e-7), "1.5e-07");
        assert_eq!(py_float_repr(3.0), "3.0");
        assert_eq!(py_float_repr(0.1), "0.1");
    }
}
