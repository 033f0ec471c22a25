//! Toxicity by a word list with severities: transparent and documented, so a reader can see
//! exactly why an answer was flagged (and extend the list), at the price of missing
//! toxicity that uses no listed word and flagging listed words used innocently.
//!
//! The list is a text file, one entry a line: a word or phrase, a tab, its severity (1 mild
//! profanity, 2 insult or strong profanity, 3 threat or incitement); `#` starts a comment.
//! The answer is lower-cased and split into words (letters, digits and apostrophes; curly
//! apostrophes read as straight ones); an entry matches where its words appear
//! consecutively, so "ass" does not match "class". An answer's severity is the highest of
//! its matches; it is toxic when that reaches the threshold.

use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WordList {
    /// Entries by their first word: (the entry's words, severity).
    entries: HashMap<String, Vec<(Vec<String>, u8)>>,
    len: usize,
}

/// The words of `text` as the list matches them.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

impl WordList {
    /// Parse a list; errors name the line.
    pub fn parse(text: &str) -> Result<WordList, String> {
        let mut list = WordList::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (entry, severity) =
                line.rsplit_once('\t').ok_or_else(|| format!("line {}: expected `word<TAB>severity`", i + 1))?;
            let severity: u8 = match severity.trim().parse() {
                Ok(s @ 1..=3) => s,
                _ => return Err(format!("line {}: severity must be 1, 2 or 3, got {:?}", i + 1, severity.trim())),
            };
            let w = words(entry);
            let Some(first) = w.first().cloned() else {
                return Err(format!("line {}: the entry has no word", i + 1));
            };
            list.entries.entry(first).or_default().push((w, severity));
            list.len += 1;
        }
        if list.len == 0 {
            return Err("the word list is empty".into());
        }
        Ok(list)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries found in `text` with their severities, in order of appearance.
    pub fn matches(&self, text: &str) -> Vec<(String, u8)> {
        let w = words(text);
        let mut out = Vec::new();
        for i in 0..w.len() {
            for (entry, severity) in self.entries.get(&w[i]).into_iter().flatten() {
                if w[i..].starts_with(entry) {
                    out.push((entry.join(" "), *severity));
                }
            }
        }
        out
    }

    /// The highest severity found in `text` (0: none).
    pub fn severity(&self, text: &str) -> u8 {
        self.matches(text).iter().map(|m| m.1).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "# test list\ndamn\t1\nidiot\t2\nkill you\t3  # a phrase\n";

    #[test]
    fn words_and_phrases_match_on_word_boundaries() {
        let l = WordList::parse(LIST).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.severity("What a classy, damn fine idea."), 1);
        assert_eq!(l.severity("You IDIOT!"), 2);
        assert_eq!(l.severity("I will kill you."), 3);
        assert_eq!(l.severity("I will kill time, then see you."), 0);
        assert_eq!(l.severity("idiotic"), 0, "whole words only");
        assert_eq!(l.matches("damn, damn idiot"), [("damn".into(), 1), ("damn".into(), 1), ("idiot".into(), 2)]);
        assert_eq!(words("Don\u{2019}t 'quote' me"), ["don't", "quote", "me"]);
    }

    #[test]
    fn bad_lists_name_the_line() {
        assert!(WordList::parse("damn 1\n").unwrap_err().contains("line 1"));
        assert!(WordList::parse("ok\t1\nbad\t7\n").unwrap_err().contains("line 2: severity"));
        assert!(WordList::parse("#\t1\n").unwrap_err().contains("empty"));
        assert!(WordList::parse("!!\t1\n").unwrap_err().contains("no word"));
    }
}
