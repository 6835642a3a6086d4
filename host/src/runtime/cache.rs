//! A disk cache of compiled components. An entry is named
//! `{engine}-{wasm}.cwasm`: a hash of the engine's compatibility hash (the
//! wasmtime version, target, compiler flags and engine configuration) and the
//! SHA-256 of the component's wasm. Its contents start with an HMAC-SHA256,
//! under a per-install secret, of that name, the wasm's SHA-256 and the
//! compiled artifact, checked before wasmtime sees a byte. So an entry copied
//! under another plugin's name, or planted by anyone without the secret, is
//! refused and recompiled: the code that runs is always the wasm's own. The
//! directory, the secret and the entries must belong to Warden's user and be
//! writable by no one else (see [`cache_files`](super::cache_files)).

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::cache_files::{self, REFRESH_AFTER};

const MAGIC: &[u8; 8] = b"WARDENC2";
const MAC_LEN: usize = 32;

type EntryMac = Hmac<Sha256>;

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
    secret: [u8; 32],
    engine: String,
}

impl ComponentCache {
    /// Open (creating it 0700) the cache at `dir` for `engine`, refusing a
    /// directory or key another user could write, and prune stale entries.
    pub fn new(dir: &Path, engine: &Engine) -> anyhow::Result<Self> {
        cache_files::trusted_dir(dir)?;
        let secret = cache_files::secret(dir)?;
        let engine = engine_tag(engine);
        cache_files::prune(dir, &engine);
        Ok(Self { dir: dir.to_path_buf(), secret, engine })
    }

    /// Load the compiled form of `wasm` from the cache, or compile and store it.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
        let wasm_sha = Sha256::digest(wasm);
        let name = format!("{}-{}.cwasm", self.engine, hex::encode(wasm_sha));
        let path = self.dir.join(&name);
        match self.read_verified(&path, &name, &wasm_sha) {
            // SAFETY: the payload is byte-for-byte what this host serialised for
            // this wasm (its MAC under this install's secret matched the entry's
            // name and the wasm's hash), for this wasmtime version and engine
            // configuration (part of the name); wasmtime re-checks the latter.
            Ok(Some(payload)) => match unsafe { Component::deserialize(engine, &payload) } {
                Ok(component) => {
                    refresh(&path);
                    return Ok((component, CacheOutcome::Hit));
                }
                Err(e) => tracing::warn!(entry = %path.display(), error = %e,
                    "compiled-component cache entry rejected by wasmtime; recompiling"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(entry = %path.display(), error = %e,
                "compiled-component cache entry refused; recompiling"),
        }
        let component = Component::new(engine, wasm)?;
        let payload = component.serialize()?;
        let mac = self.mac(&name, &wasm_sha, &payload).finalize().into_bytes();
        if let Err(e) = cache_files::write_atomic(&self.dir, &name, &[MAGIC, &mac, &payload]) {
            tracing::warn!(entry = %path.display(), error = %e, "could not write the compiled-component cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    /// The entry's payload if it is ours, for this name and wasm; `None` if absent.
    fn read_verified(&self, path: &Path, name: &str, wasm_sha: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(mut file) = cache_files::open_trusted(path)? else { return Ok(None) };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let rest =
            bytes.strip_prefix(MAGIC).ok_or_else(|| anyhow::anyhow!("it is not a Warden cache entry"))?;
        if rest.len() < MAC_LEN {
            anyhow::bail!("it is truncated");
        }
        let (mac, payload) = rest.split_at(MAC_LEN);
        self.mac(name, wasm_sha, payload).verify_slice(mac).map_err(|_| {
            anyhow::anyhow!(
                "its MAC does not match this entry's name and wasm: corrupt, or copied from another entry"
            )
        })?;
        Ok(Some(payload.to_vec()))
    }

    fn mac(&self, name: &str, wasm_sha: &[u8], payload: &[u8]) -> EntryMac {
        let mut mac = EntryMac::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(MAGIC);
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(wasm_sha);
        mac.update(payload);
        mac
    }
}

/// Compile without a cache.
pub fn compile(engine: &Engine, wasm: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
    Ok((Component::new(engine, wasm)?, CacheOutcome::Uncached))
}

/// The first 16 hex digits of a SHA-256 of the engine's compatibility hash.
fn engine_tag(engine: &Engine) -> String {
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
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// Mark a used entry as recently used (for pruning), at most once a day.
fn refresh(path: &Path) {
    let Ok(file) = std::fs::File::options().write(true).open(path) else { return };
    let old = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > REFRESH_AFTER);
    if old && let Err(e) = file.set_modified(SystemTime::now()) {
        tracing::debug!(entry = %path.display(), error = %e, "could not refresh a cache entry's time");
    }
}
