//! Listing cursors: the position of the last session a page showed (its last
//! use and key, in a listing ordered most recently used first, then by key),
//! as an opaque string. A cursor comes back from a caller, so anything this
//! format does not produce is refused.

const PREFIX: &str = "v1.";
const MAX_KEY_BYTES: usize = 1024;

pub fn format(last_used_ms: u64, key: &str) -> String {
    format!("{PREFIX}{last_used_ms}.{}", hex::encode(key.as_bytes()))
}

/// The position a cursor stands for, or a message naming the fix.
pub fn parse(cursor: &str) -> Result<(u64, String), String> {
    let invalid =
        || format!("the cursor {cursor:?} is not one this store issued; list again without a cursor");
    let rest = cursor.strip_prefix(PREFIX).ok_or_else(invalid)?;
    let (ms, hex) = rest.split_once('.').ok_or_else(invalid)?;
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) || hex.len() > 2 * MAX_KEY_BYTES {
        return Err(invalid());
    }
    let ms = ms.parse::<u64>().map_err(|_| invalid())?;
    let key = String::from_utf8(hex::decode(hex).map_err(|_| invalid())?).map_err(|_| invalid())?;
    if key.is_empty() {
        return Err(invalid());
    }
    Ok((ms, key))
}

/// Whether a session at `position` comes after `cursor` in the listing order.
pub fn is_after(position: (u64, &str), cursor: (u64, &str)) -> bool {
    position.0 < cursor.0 || (position.0 == cursor.0 && position.1 > cursor.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let cursor = format(1_700_000_000_000, "a/b é");
        assert_eq!(parse(&cursor).unwrap(), (1_700_000_000_000, "a/b é".to_string()));
        for bad in
            ["", "v1.", "v1.12", "v2.1.61", "v1.x.61", "v1.1.6", "v1.1.zz", "v1.1.ff", "v1.+1.61", "v1.1."]
        {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn order_is_most_recent_first_then_by_key() {
        assert!(is_after((5, "a"), (6, "z")));
        assert!(is_after((6, "b"), (6, "a")));
        assert!(!is_after((6, "a"), (6, "a")));
        assert!(!is_after((7, "a"), (6, "z")));
    }
}
