//! Any file name: decoding never panics, and a decoded key encodes back to
//! exactly that name (names and keys are one-to-one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use store_codec::key::{self, Decoded};

fuzz_target!(|name: &str| {
    if let Some(Decoded::Key(key)) = key::decode(name) {
        assert_eq!(key::file_name(&key).unwrap(), name);
    }
    if !name.is_empty() {
        let encoded = key::file_name(name).unwrap();
        if let Some(Decoded::Key(back)) = key::decode(&encoded) {
            assert_eq!(back, name);
        }
    }
});
