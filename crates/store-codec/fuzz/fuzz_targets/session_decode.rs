//! Any bytes: the session-file and legacy-store decoders never panic, and a
//! decoded session re-encodes to something that decodes to the same session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_codec::legacy;
use store_codec::record::StoredSession;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(session) = StoredSession::from_bytes(bytes) {
        assert_eq!(StoredSession::from_bytes(&session.to_bytes()).unwrap(), session);
    }
    if let Ok(entries) = legacy::parse_entries(bytes) {
        for (key, value) in entries {
            let _ = legacy::to_session(&key, value);
        }
    }
});
