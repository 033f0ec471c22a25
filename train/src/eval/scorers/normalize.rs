//! SQuAD's answer normalisation (`normalize_answer` in the official evaluation script, also
//! lm-evaluation-harness's): lower case, remove ASCII punctuation, remove the articles
//! "a", "an", "the" where they are whole words, collapse whitespace.

/// Python's `string.punctuation`.
const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;

/// A character of Python's `\w` (Unicode letters and digits, and `_`).
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub fn normalize(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punct: String = lowered.chars().filter(|c| !PUNCTUATION.contains(*c)).collect();
    let no_articles = remove_articles(&no_punct);
    no_articles.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `re.sub(r"\b(a|an|the)\b", " ", text)`: a maximal run of word characters that is an
/// article becomes a space.
fn remove_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if matches!(word.as_str(), "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if word_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The normalised text's words.
pub fn tokens(s: &str) -> Vec<String> {
    normalize(s).split(' ').filter(|t| !t.is_empty()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_normalisation_by_hand() {
        assert_eq!(normalize("The Eiffel Tower!"), "eiffel tower");
        assert_eq!(normalize("  an  apple,\ta PEAR  "), "apple pear");
        // Articles only as whole words: "theatre", "anchor", "a1" stay.
        assert_eq!(normalize("The theatre's anchor, a1"), "theatres anchor a1");
        // Punctuation goes before articles are matched: "the-end" becomes "theend".
        assert_eq!(normalize("the-end"), "theend");
        // A non-ASCII mark is not punctuation here, but it is a word boundary.
        assert_eq!(normalize("the’s"), "’s");
        assert_eq!(normalize("Ünïcode Straße"), "ünïcode straße");
        assert_eq!(normalize(""), "");
        assert_eq!(tokens("The cat, the hat."), ["cat", "hat"]);
    }
}
