//! Stop strings over streamed text: generation ends where one of them first appears, and
//! the text shown stops just before it. Text is released as it arrives except for a tail
//! that could still turn out to be the start of a stop string.

pub struct StopText {
    stops: Vec<String>,
    /// Text received and not yet released: at most the longest stop string's length - 1
    /// bytes (or everything up to a stop string, once one is found).
    pending: String,
}

impl StopText {
    /// Empty stop strings are ignored.
    pub fn new(stops: Vec<String>) -> StopText {
        StopText { stops: stops.into_iter().filter(|s| !s.is_empty()).collect(), pending: String::new() }
    }

    /// Add text; returns the text that can be shown now, and `true` once a stop string has
    /// appeared (the returned text then ends just before it, and the rest is dropped).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(at) = self.stops.iter().filter_map(|s| self.pending.find(s.as_str())).min() {
            self.pending.truncate(at);
            return (std::mem::take(&mut self.pending), true);
        }
        // The longest suffix of `pending` that is a proper prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .flat_map(|s| (1..s.len()).rev().filter(move |&n| s.is_char_boundary(n)).map(move |n| &s[..n]))
            .filter(|p| self.pending.ends_with(p))
            .map(|p| p.len())
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - keep;
        (self.pending.drain(..cut).collect(), false)
    }

    /// The end of the text (no stop string came): whatever was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_possible_starts_and_cuts_at_the_first_stop() {
        let mut s = StopText::new(vec!["</end>".into(), "".into(), "STOP".into()]);
        assert_eq!(s.push("Hello </e"), ("Hello ".to_string(), false));
        assert_eq!(s.push("nx ST"), ("</enx ".to_string(), false));
        assert_eq!(s.push("OP and more"), (String::new(), true));
        let mut s = StopText::new(vec!["b".into(), "abc".into()]);
        assert_eq!(s.push("xxab"), ("xxa".to_string(), true));
        let mut s = StopText::new(vec!["é!".into()]);
        assert_eq!(s.push("caf\u{e9}"), ("caf".to_string(), false));
        assert_eq!(s.finish(), "\u{e9}");
        let mut none = StopText::new(vec![]);
        assert_eq!(none.push("anything"), ("anything".to_string(), false));
    }
}
