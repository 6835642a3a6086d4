//! Refuse, before instantiation, a component whose imports or exports do not
//! fit its role's world, with a message naming the offending item.
//!
//! Contract versions: a plugin built against any released version on the
//! host's compatible line (`0.1.x` up to the host's own) is accepted —
//! minor versions only add, and wasmtime links such names semver-compatibly.
//! A newer version, or one off the line, is refused naming both versions.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::role::{CONTRACT_VERSION, PACKAGE, Role};

/// Check a component against `role`. WASI 0.2 imports are allowed: they are
/// linked to a deny-all implementation. Exports outside `warden:plugin/`
/// (componentize-py leaves its build-time `exports` interface in every
/// component) are allowed too, since the host never calls them; they are
/// returned so the caller can log them. Another `warden:plugin` export is
/// refused: it means the plugin was built for another role.
pub fn check(engine: &Engine, component: &Component, role: Role) -> Result<Vec<String>, String> {
    let (imports, exports) = names(engine, component);
    let is_role_export =
        |name: &String| contract_item(name).is_some_and(|(interface, _)| interface == role.export());
    if !exports.iter().any(is_role_export) {
        return Err(format!(
            "it does not export `{}`, which every {role} plugin must",
            qualified(role.export())
        ));
    }
    let mut outside = Vec::new();
    for name in &exports {
        match contract_item(name) {
            Some((interface, version)) if role.exports().any(|e| e == interface) => supported(name, version)?,
            None if !name.starts_with(&format!("{PACKAGE}/")) => outside.push(name.clone()),
            _ => {
                return Err(format!(
                    "it exports `{name}`, which the {role} world does not define; it may export only {}",
                    role.exports().map(|e| format!("`{}`", qualified(e))).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    for name in &imports {
        if name.starts_with("wasi:") && name.contains("@0.2.") {
            continue;
        }
        match contract_item(name) {
            Some((interface, version)) if interface == "types" || role.imports().contains(&interface) => {
                supported(name, version)?;
            }
            _ => {
                return Err(format!(
                    "it imports `{name}`, which the {role} world does not provide; a {role} plugin may import only {}",
                    role.imports()
                        .iter()
                        .map(|i| format!("`{}`", qualified(i)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok(outside)
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
    let mut versions: Vec<String> =
        names.filter_map(|n| contract_item(n)).map(|(_, v)| v.to_string()).collect();
    versions.sort();
    versions.dedup();
    versions
}

/// Whether contract `version` is newer than `host`.
pub fn newer(version: &str, host: &str) -> bool {
    parse(version) > parse(host)
}

/// Whether the host can link a plugin built for contract `version`.
pub fn compatible(version: &str) -> bool {
    let (v, host) = (parse(version), parse(CONTRACT_VERSION));
    v.len() == 3 && v[..2] == host[..2] && v <= host
}

/// `warden:plugin/<interface>@<version>` split into its parts.
fn contract_item(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(&format!("{PACKAGE}/"))?.split_once('@')
}

fn supported(name: &str, version: &str) -> Result<(), String> {
    if compatible(version) {
        return Ok(());
    }
    if newer(version, CONTRACT_VERSION) {
        return Err(format!(
            "`{name}` is from contract {version}, newer than the {CONTRACT_VERSION} this host speaks: upgrade \
             Warden, or build the plugin against contract {CONTRACT_VERSION}"
        ));
    }
    Err(format!(
        "`{name}` is from contract {version}, which this host (contract {CONTRACT_VERSION}) no longer links: \
         rebuild the plugin against contract {CONTRACT_VERSION}"
    ))
}

fn qualified(interface: &str) -> String {
    format!("{PACKAGE}/{interface}@{CONTRACT_VERSION}")
}

fn parse(version: &str) -> Vec<u64> {
    version.split(['.', '-']).map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_on_the_host_line_up_to_the_host_are_compatible() {
        assert!(compatible("0.1.0"));
        assert!(compatible(CONTRACT_VERSION));
        assert!(!compatible("0.1.9"), "newer patch");
        assert!(!compatible("0.2.0"));
        assert!(!compatible("0.0.9"));
        assert!(newer("0.1.9", CONTRACT_VERSION) && !newer("0.1.0", CONTRACT_VERSION));
    }
}
