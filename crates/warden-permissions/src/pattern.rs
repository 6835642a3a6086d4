//! Positional argument patterns (a plugin's own declaration of what it runs,
//! and the operator's explicitly unrestricted grants) and `*` wildcards for
//! environment variable names.
//!
//! An argument pattern is a list of items: a literal matches one equal
//! argument, `*` matches any one argument, and a trailing `**` matches all
//! remaining arguments (including none).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ArgPattern(pub Vec<String>);

impl ArgPattern {
    pub fn matches(&self, args: &[String]) -> bool {
        let mut args = args.iter();
        for (i, item) in self.0.iter().enumerate() {
            if item == "**" && i + 1 == self.0.len() {
                return true;
            }
            match args.next() {
                Some(arg) if item == "*" || item == arg => {}
                _ => return false,
            }
        }
        args.next().is_none()
    }

    /// Whether any item is a wildcard, i.e. the pattern admits arguments the
    /// operator did not write out.
    pub fn has_wildcard(&self) -> bool {
        self.0.iter().any(|item| item == "*" || item == "**")
    }

    pub fn show(&self) -> String {
        self.0.join(" ")
    }
}

/// `*` matches any run of characters; everything else matches itself.
/// Linear in the text: each `*` is matched greedily from the left, which is
/// exact for patterns whose only metacharacter is `*`.
pub fn name_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(items: &[&str]) -> ArgPattern {
        ArgPattern(items.iter().map(|s| s.to_string()).collect())
    }

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn literal_star_and_rest() {
        let p = pattern(&["exec", "*", "**"]);
        assert!(p.matches(&args(&["exec", "x"])));
        assert!(p.matches(&args(&["exec", "x", "y", "z"])));
        assert!(!p.matches(&args(&["exec"])));
        assert!(!p.matches(&args(&["run", "x"])));
        assert!(pattern(&["--version"]).matches(&args(&["--version"])));
        assert!(!pattern(&["--version"]).matches(&args(&["--version", "extra"])));
        assert!(pattern(&[]).matches(&[]));
        assert!(!pattern(&["**", "x"]).matches(&args(&["a", "x"])), "** only counts at the end");
        assert!(p.has_wildcard() && !pattern(&["exec", "--json"]).has_wildcard());
    }

    #[test]
    fn name_wildcards() {
        assert!(name_matches("*_API_KEY", "MOCK_API_KEY"));
        assert!(!name_matches("*_API_KEY", "MOCK_API_KEYS"));
        assert!(name_matches("LC_*", "LC_ALL"));
        assert!(name_matches("A*B*C", "AxxBxxC"));
        assert!(!name_matches("HOME", "HOMEX"));
        assert!(name_matches("*", ""));
        assert!(!name_matches("A*A", "A"), "the prefix and suffix may not overlap");
    }

    #[test]
    fn many_stars_stay_linear() {
        let pattern = "*a".repeat(2000);
        let text = "a".repeat(1999) + "b";
        assert!(!name_matches(&pattern, &text));
    }

    /// Reference: the exponential backtracking matcher this replaces.
    fn reference(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((prefix, rest)) => {
                let Some(tail) = text.strip_prefix(prefix) else { return false };
                (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| reference(rest, &tail[i..]))
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_backtracking(pattern in "[ab*]{0,8}", text in "[ab]{0,10}") {
            prop_assert_eq!(name_matches(&pattern, &text), reference(&pattern, &text));
        }
    }
}
