//! `warden migrate`: import legacy `sessions.json` stores into the directory
//! store. A path may hold one `{agentId}` placeholder; every store matching
//! it is migrated, each through a storage plugin granted only its own folder.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::contract::bindings::storage::exports::warden::plugin::storage::{MigrateOptions, MigrateReport};
use crate::plugins;
use crate::runtime::Runtime;

pub const PLACEHOLDER: &str = "{agentId}";

/// Migrate every store matching `store` (a path, possibly templated).
/// Returns an error if any store failed; the others are still migrated.
pub fn run(
    runtime: &Runtime,
    config: &Config,
    store: &Path,
    merge_case_variants: bool,
) -> anyhow::Result<()> {
    let stores = expand(store)?;
    if stores.is_empty() {
        println!("no legacy store matches {}", store.display());
        return Ok(());
    }
    let mut failures = Vec::new();
    for path in stores {
        match migrate_one(runtime, config, &path, merge_case_variants) {
            Ok(report) => print_report(&path, &report),
            Err(e) => {
                eprintln!("warden: {}: {e:#}", path.display());
                failures.push(path);
            }
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} store(s) were not migrated: {}",
            failures.len(),
            failures.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// Migrate one legacy file through a storage plugin rooted at its folder.
pub fn migrate_one(
    runtime: &Runtime,
    config: &Config,
    file: &Path,
    merge_case_variants: bool,
) -> anyhow::Result<MigrateReport> {
    let (Some(root), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
        anyhow::bail!("{} does not name a file", file.display());
    };
    let storage = plugins::load_storage_at(runtime, config, root)?;
    let report = storage
        .migrate(&MigrateOptions { source: name.to_string(), merge_case_variants })
        .map_err(anyhow::Error::from)?;
    Ok(report)
}

fn print_report(path: &Path, report: &MigrateReport) {
    match &report.backup {
        Some(backup) => println!(
            "{}: {} imported, {} kept (the store had newer), {} superseded; original kept as {backup}",
            path.display(),
            report.imported,
            report.kept_existing,
            report.superseded
        ),
        None => println!("{}: nothing to migrate", path.display()),
    }
    for note in &report.notes {
        println!("  {note}");
    }
}

/// The legacy files a (possibly templated) path names. Directories that are
/// symbolic links never match a placeholder.
pub fn expand(store: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = store.to_str().ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", store.display()))?;
    let Some((prefix, suffix)) = text.split_once(PLACEHOLDER) else {
        return Ok(if std::fs::symlink_metadata(store).is_ok() {
            vec![store.to_path_buf()]
        } else {
            Vec::new()
        });
    };
    if suffix.contains(PLACEHOLDER) {
        anyhow::bail!("{text} has more than one {PLACEHOLDER}; use one");
    }
    let (parent, stem) = match prefix.rfind('/') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("./", prefix),
    };
    let mut out = Vec::new();
    let entries = std::fs::read_dir(parent).map_err(|e| anyhow::anyhow!("listing {parent}: {e}"))?;
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(String::from) else { continue };
        let Some(agent) = name.strip_prefix(stem) else { continue };
        if agent.is_empty() || agent.contains('/') {
            continue;
        }
        if entry.file_type()?.is_symlink() {
            eprintln!("warden: skipping {}: a symbolic link is never followed", entry.path().display());
            continue;
        }
        let candidate = PathBuf::from(format!("{parent}{name}{suffix}"));
        if std::fs::symlink_metadata(&candidate).is_ok() {
            out.push(candidate);
        }
    }
    out.sort();
    Ok(out)
}
