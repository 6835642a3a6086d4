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

/// One page cut from a full listing, for stores that keep no index: the
/// items after `after` that `keep` passes, most recently used first (then by
/// key), at most `limit`, and the cursor of the next page if there is one.
/// `position` gives an item's last use and key.
pub fn cut_page<T>(
    mut all: Vec<T>,
    position: impl Fn(&T) -> (u64, String),
    after: Option<&(u64, String)>,
    keep: impl Fn(&T) -> bool,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    all.sort_by_cached_key(|item| {
        let (ms, key) = position(item);
        (std::cmp::Reverse(ms), key)
    });
    let mut page: Vec<T> = all
        .into_iter()
        .filter(|item| {
            after.is_none_or(|(ms, key)| {
                let (at, name) = position(item);
                is_after((at, &name), (*ms, key))
            })
        })
        .filter(|item| keep(item))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = page.last().filter(|_| more).map(|item| {
        let (ms, key) = position(item);
        format(ms, &key)
    });
    (page, next)
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
    fn a_full_listing_is_cut_into_pages() {
        let all: Vec<(u64, String)> =
            [(5, "b"), (7, "a"), (5, "a"), (1, "z")].map(|(m, k)| (m, k.into())).into();
        let position = |item: &(u64, String)| item.clone();
        let (first, next) = cut_page(all.clone(), position, None, |_| true, 2);
        assert_eq!(first, [(7, "a".into()), (5, "a".into())]);
        let after = parse(&next.unwrap()).unwrap();
        let (rest, next) = cut_page(all.clone(), position, Some(&after), |_| true, 2);
        assert_eq!((rest, next), (vec![(5, "b".into()), (1, "z".into())], None));
        let (odd, _) = cut_page(all, position, None, |item| item.0 % 2 == 1, 10);
        assert_eq!(odd.len(), 4);
    }

    #[test]
    fn order_is_most_recent_first_then_by_key() {
        assert!(is_after((5, "a"), (6, "z")));
        assert!(is_after((6, "b"), (6, "a")));
        assert!(!is_after((6, "a"), (6, "a")));
        assert!(!is_after((7, "a"), (6, "z")));
    }
}
