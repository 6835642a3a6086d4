//! A disk cache of compiled components. An entry's name hashes the wasm's
//! SHA-256 and the engine's compatibility hash (which covers the wasmtime
//! version, target, compiler flags and engine configuration); its
//! contents carry the SHA-256 of the compiled artifact, which is checked
//! before wasmtime sees a byte. A corrupt or mismatched entry is logged and
//! recompiled, never trusted. The cache directory must be writable only by
//! the operator: an attacker able to write there could plant an artifact with
//! a matching checksum.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"WARDENC1";

/// Where a component came from, for the benchmark and `warden plugins`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Compiled,
    /// No cache configured.
    Uncached,
}

pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating the component cache {}: {e}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// Load the compiled form of `wasm` from the cache, or compile and store it.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!("{}.cwasm", entry_key(engine, wasm)));
        match std::fs::read(&path) {
            Ok(bytes) => match verified_payload(&bytes) {
                // SAFETY: the payload is byte-for-byte what this host serialised
                // (its SHA-256 matched), for this wasmtime version and engine
                // configuration (part of the entry name); wasmtime re-checks both.
                Some(payload) => match unsafe { Component::deserialize(engine, payload) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => tracing::warn!(entry = %path.display(), error = %e,
                        "compiled-component cache entry rejected by wasmtime; recompiling"),
                },
                None => tracing::warn!(entry = %path.display(),
                    "compiled-component cache entry is corrupt; recompiling"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(entry = %path.display(), error = %e,
                "cannot read compiled-component cache entry; recompiling"),
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&path, &component.serialize()?) {
            tracing::warn!(entry = %path.display(), error = %e, "could not write the compiled-component cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        let temp = self.dir.join(format!(".tmp.{}", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(payload))?;
            file.write_all(payload)?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if result.is_err()
            && let Err(e) = std::fs::remove_file(&temp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(temp = %temp.display(), error = %e, "could not remove a cache temp file");
        }
        result
    }
}

/// Compile without a cache.
pub fn compile(engine: &Engine, wasm: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
    Ok((Component::new(engine, wasm)?, CacheOutcome::Uncached))
}

fn entry_key(engine: &Engine, wasm: &[u8]) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only `write` is used")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(Sha256::digest(wasm));
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, payload) = rest.split_at(32);
    (Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_must_match_its_checksum() {
        let payload = b"compiled";
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(payload));
        entry.extend_from_slice(payload);
        assert_eq!(verified_payload(&entry), Some(&payload[..]));
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(verified_payload(&entry), None);
        assert_eq!(verified_payload(b"WARDENC1short"), None);
        assert_eq!(verified_payload(b""), None);
    }
}
