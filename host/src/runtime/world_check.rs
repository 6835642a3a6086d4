//! Refuse, before instantiation, a component whose imports or exports do not
//! fit its role's world, with a message naming the offending item.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::role::{CONTRACT_VERSION, PACKAGE, Role};

/// Check a component against `role`. WASI 0.2 imports are allowed: they are
/// linked to a deny-all implementation.
pub fn check(engine: &Engine, component: &Component, role: Role) -> Result<(), String> {
    let ty = component.component_type();
    let wanted_export = qualified(role.export());
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    if !exports.contains(&wanted_export) {
        return Err(format!("it does not export `{wanted_export}`, which every {role} plugin must"));
    }
    for name in &exports {
        if *name != wanted_export {
            return Err(format!(
                "it exports `{name}`, which the {role} world does not define; it must export only `{wanted_export}`{}",
                version_hint(name)
            ));
        }
    }
    for (name, _) in ty.imports(engine) {
        if name.starts_with("wasi:") && name.contains("@0.2.") {
            continue;
        }
        let allowed = name == qualified("types") || role.imports().iter().any(|i| name == qualified(i));
        if !allowed {
            return Err(format!(
                "it imports `{name}`, which the {role} world does not provide; a {role} plugin may import only {}{}",
                role.imports().iter().map(|i| format!("`{}`", qualified(i))).collect::<Vec<_>>().join(", "),
                version_hint(name)
            ));
        }
    }
    Ok(())
}

/// A component's import and export names.
pub fn names(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    let exports = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    (imports, exports)
}

/// The distinct `warden:plugin` versions among `names`.
pub fn contract_versions<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut versions: Vec<String> = names
        .filter_map(|n| n.strip_prefix(&format!("{PACKAGE}/")))
        .filter_map(|rest| rest.split_once('@').map(|(_, v)| v.to_string()))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// Whether contract `version` is newer than `host`.
pub fn newer(version: &str, host: &str) -> bool {
    parse(version) > parse(host)
}

fn qualified(interface: &str) -> String {
    format!("{PACKAGE}/{interface}@{CONTRACT_VERSION}")
}

/// Explain a `warden:plugin` item whose version differs from the host's.
fn version_hint(name: &str) -> String {
    let Some(rest) = name.strip_prefix(&format!("{PACKAGE}/")) else { return String::new() };
    let Some((_, version)) = rest.split_once('@') else { return String::new() };
    if version == CONTRACT_VERSION {
        return String::new();
    }
    let newer = newer(version, CONTRACT_VERSION);
    format!(
        " (the plugin was built for contract {version}; this host speaks {CONTRACT_VERSION}{})",
        if newer { ": upgrade Warden or rebuild the plugin against the older contract" } else { "" }
    )
}

fn parse(version: &str) -> Vec<u64> {
    version.split(['.', '-']).map(|p| p.parse().unwrap_or(0)).collect()
}
