//! A reversible encoding of session keys into file names that are safe on
//! Linux, macOS and Windows file systems, including case-insensitive ones.
//!
//! Bytes outside `[a-z0-9_-.]` become `%XX` (uppercase hex), so upper-case
//! letters are escaped and keys differing only in case never share a name.
//! A leading dot, trailing dots, and names Windows reserves (`CON`, `NUL`,
//! `COM1` …, compared case-insensitively before the first dot) get their
//! first or last character escaped too. Names that would exceed
//! [`MAX_ENCODED`] bytes use `~` plus the SHA-256 of the key; the file then
//! holds the full key. Every name ends in [`SUFFIX`].

use sha2::{Digest, Sha256};

pub const SUFFIX: &str = ".json";
/// Longest encoded stem; with the suffix and quarantine tags it stays under 255 bytes.
pub const MAX_ENCODED: usize = 200;

const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "conin$", "conout$", "com0", "com1", "com2", "com3", "com4", "com5", "com6",
    "com7", "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// What a file name stands for.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The name encodes this key directly.
    Key(String),
    /// A hashed name; the key is inside the file.
    Hashed,
}

/// The file name for `key`. Refuses the empty key.
pub fn file_name(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("the empty string is not a session key".into());
    }
    let bytes = key.as_bytes();
    let mut out = String::with_capacity(key.len() + SUFFIX.len());
    for (i, &b) in bytes.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == bytes.len();
        let plain = matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-') || (b == b'.' && !first && !last);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if is_reserved(&out) {
        let first = out.remove(0);
        out.insert_str(0, &format!("%{:02X}", first as u8));
    }
    if out.len() > MAX_ENCODED {
        return Ok(hashed_name(key));
    }
    out.push_str(SUFFIX);
    Ok(out)
}

/// The hashed file name used for long keys.
pub fn hashed_name(key: &str) -> String {
    format!("~{}{SUFFIX}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Decode a file name produced by [`file_name`]; `None` for names this
/// encoding never produces (they are not sessions).
pub fn decode(name: &str) -> Option<Decoded> {
    let stem = name.strip_suffix(SUFFIX)?;
    if let Some(hash) = stem.strip_prefix('~') {
        let valid = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        return valid.then_some(Decoded::Hashed);
    }
    let mut bytes = Vec::with_capacity(stem.len());
    let raw = stem.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            if !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
                return None;
            }
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(bytes).ok()?;
    // Only the canonical encoding is accepted, so names and keys are one-to-one.
    (file_name(&key).ok()? == name).then_some(Decoded::Key(key))
}

fn is_reserved(stem: &str) -> bool {
    let base = stem.split('.').next().unwrap_or(stem);
    RESERVED.contains(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_stay_readable() {
        assert_eq!(file_name("auth-review_2").unwrap(), "auth-review_2.json");
        assert_eq!(file_name("a.b").unwrap(), "a.b.json");
    }

    #[test]
    fn hostile_keys_are_escaped() {
        assert_eq!(file_name("../x").unwrap(), "%2E.%2Fx.json");
        assert_eq!(file_name(".").unwrap(), "%2E.json");
        assert_eq!(file_name("..").unwrap(), "%2E%2E.json");
        assert_eq!(file_name("Foo").unwrap(), "%46oo.json");
        assert_eq!(file_name("con").unwrap(), "%63on.json");
        assert_eq!(file_name("nul.txt").unwrap(), "%6Eul.txt.json");
        assert_eq!(file_name("a ").unwrap(), "a%20.json");
        assert_eq!(file_name("a:b\\c").unwrap(), "a%3Ab%5Cc.json");
        assert!(file_name("").is_err());
    }

    #[test]
    fn long_keys_are_hashed() {
        let key = "k".repeat(300);
        let name = file_name(&key).unwrap();
        assert!(name.starts_with('~') && name.len() < 255);
        assert_eq!(decode(&name), Some(Decoded::Hashed));
    }

    #[test]
    fn decode_inverts_and_rejects_non_canonical() {
        for key in ["a", "Foo", "../x", "con", "é", "%", "a.", "__proto__"] {
            assert_eq!(decode(&file_name(key).unwrap()), Some(Decoded::Key(key.into())), "{key}");
        }
        assert_eq!(decode("%4a.json"), None, "lower-case hex is not canonical");
        assert_eq!(decode("Foo.json"), None, "upper case is never produced");
        assert_eq!(decode("x.tmp"), None);
    }
}
