//! Properties of the key encoding and the session decoder, over arbitrary input.

use proptest::prelude::*;
use store_codec::key::{self, Decoded};
use store_codec::record::{StoredSession, StoredTurn, parse_extra};
use store_codec::summary::SummaryView;

/// Flip the case of the letters chosen by `mask`.
fn case_variant(key: &str, mask: &[bool]) -> String {
    key.chars()
        .zip(mask.iter().cycle())
        .map(|(c, flip)| {
            if *flip && c.is_ascii_alphabetic() {
                if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() }
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_key_round_trips(key in "\\PC{1,300}|[a-zA-Z0-9._ %:/\\\\-]{1,80}") {
        let name = key::file_name(&key).unwrap();
        prop_assert!(name.len() <= 255);
        prop_assert!(!name.contains('/') && !name.contains('\0') && !name.starts_with('.'));
        match key::decode(&name) {
            Some(Decoded::Key(back)) => prop_assert_eq!(back, key),
            Some(Decoded::Hashed) => prop_assert!(key.len() > 60, "only long keys are hashed"),
            None => prop_assert!(false, "{name} does not decode"),
        }
    }

    #[test]
    fn distinct_keys_never_share_a_name_even_ignoring_case(
        key in "[a-zA-Z0-9._ %-]{1,40}",
        mask in proptest::collection::vec(any::<bool>(), 1..8),
        other in "\\PC{1,40}",
    ) {
        for candidate in [case_variant(&key, &mask), other] {
            if candidate != key {
                let a = key::file_name(&key).unwrap().to_lowercase();
                let b = key::file_name(&candidate).unwrap().to_lowercase();
                prop_assert_ne!(a, b, "{:?} and {:?}", key, candidate);
            }
        }
    }

    #[test]
    fn decoding_arbitrary_names_is_total_and_canonical(name in "\\PC{0,80}") {
        if let Some(Decoded::Key(key)) = key::decode(&name) {
            prop_assert_eq!(key::file_name(&key).unwrap(), name);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = StoredSession::from_bytes(&bytes);
        let _ = store_codec::legacy::parse_entries(&bytes);
    }

    #[test]
    fn any_prefix_of_a_written_session_gives_its_summary_or_asks_for_more(
        key in "\\PC{1,60}",
        text in "\\PC{0,400}",
        turns in 0usize..60,
        extra_value in "\\PC{0,200}",
        cut in 0usize..40_000,
    ) {
        let extra = parse_extra(&serde_json::json!({"note": extra_value, "nested": {"turns": [text.clone()]}}).to_string()).unwrap();
        let session = StoredSession {
            format: 1,
            key,
            revision: 3,
            created_ms: 1,
            last_accessed_ms: 2,
            turns: vec![StoredTurn { prompt: text.clone(), response: text.clone(), timestamp_ms: 4 }; turns],
            agent_thread_id: Some(text.clone()),
            cwd: Some(text),
            extra,
            ..Default::default()
        };
        let bytes = session.to_bytes();
        let prefix = &bytes[..cut.min(bytes.len())];
        if let Some(summary) = SummaryView::from_prefix(prefix) {
            prop_assert_eq!(summary.unwrap(), SummaryView::of(&session));
        }
        prop_assert_eq!(SummaryView::from_prefix(&bytes).unwrap().unwrap(), SummaryView::of(&session));
    }
}
