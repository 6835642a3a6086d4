//! Pure logic of the storage plugins, kept native so it can be unit-,
//! property- and fuzz-tested: session keys to portable file names and back,
//! and the on-disk JSON form of a session.

pub mod cursor;
pub mod framed;
pub mod key;
pub mod legacy;
pub mod record;
pub mod summary;
mod wit_convert;
