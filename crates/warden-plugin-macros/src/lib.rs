//! The compile-time half of `warden-plugin` (use it through that crate):
//! `embed_manifest!` checks a plugin's manifest while the plugin is compiled
//! and embeds it as the `warden-manifest` custom section, and
//! `contract_version!` reads the contract version from the WIT the SDK is
//! generated from, so the version is written down once, in `wit/`.
//!
//! The host stays the authority on what a manifest may ask for; what is
//! checked here is what can be known before the plugin exists: the TOML
//! parses as a manifest, its role is a world of the contract (and the role
//! the plugin exports), and its contract is the one the SDK speaks.

use proc_macro::{Delimiter, Literal, TokenStream, TokenTree};
use std::path::PathBuf;
use std::str::FromStr;

use warden_permissions::Manifest;

/// The contract's worlds file: its `package` line holds the version, its
/// `world` lines the roles.
const WORLDS: &str = include_str!("../../../wit/worlds.wit");

/// The contract version the SDK's bindings are generated from, as a string literal.
#[proc_macro]
pub fn contract_version(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        return error("contract_version!() takes no arguments");
    }
    TokenTree::Literal(Literal::string(&contract())).into()
}

/// `embed_manifest!(file = "warden.toml")`, or with `role = "<world>"` when
/// the caller knows the role the plugin exports: checks the manifest at
/// `<crate directory>/<file>` and emits the `warden-manifest` section holding
/// it (on wasm32 only). A problem is a compile error naming the file and the fix.
#[proc_macro]
pub fn embed_manifest(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(tokens) => tokens,
        Err(message) => error(&message),
    }
}

fn expand(input: TokenStream) -> Result<TokenStream, String> {
    let arguments = arguments(input)?;
    let argument = |key: &str| arguments.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let file = argument("file").ok_or("name the manifest: `file = \"warden.toml\"`")?;
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "CARGO_MANIFEST_DIR is not set; build the plugin with cargo".to_string())?;
    let path = PathBuf::from(crate_dir).join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the plugin manifest {}: {e}", path.display()))?;
    check(&text, argument("role")).map_err(|e| format!("{}: {e}", path.display()))?;
    let path = path.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))?;
    let bytes = format!("include_bytes!({path:?})");
    let section = format!(
        "#[cfg(target_arch = \"wasm32\")]\n\
         #[unsafe(link_section = \"warden-manifest\")]\n\
         #[used]\n\
         static __WARDEN_MANIFEST: [u8; {bytes}.len()] = *{bytes};"
    );
    TokenStream::from_str(&section).map_err(|e| format!("embedding the manifest: {e}"))
}

/// What can be known of a manifest before the plugin is built.
fn check(text: &str, exported_role: Option<&str>) -> Result<(), String> {
    let manifest = Manifest::parse(text)?;
    let worlds = worlds();
    if let Some(declared) = &manifest.role {
        if !worlds.contains(&declared.as_str()) {
            return Err(format!(
                "role = {declared:?} is not a role of the contract; use one of {}",
                worlds.join(", ")
            ));
        }
        if let Some(exported) = exported_role
            && declared != exported
        {
            return Err(format!(
                "role = {declared:?}, but the plugin exports the {exported} role; set role = {exported:?}"
            ));
        }
    }
    if let (Some(declared), Some(_)) = (&manifest.contract, exported_role) {
        let contract = contract();
        if *declared != contract {
            return Err(format!(
                "contract = {declared:?}, but this warden-plugin builds against contract {contract}; \
                 set contract = {contract:?}"
            ));
        }
    }
    Ok(())
}

/// `key = "value"` pairs separated by commas.
fn arguments(input: TokenStream) -> Result<Vec<(String, String)>, String> {
    let tokens = flatten(input);
    let mut pairs = Vec::new();
    for chunk in tokens.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ',')) {
        match chunk {
            [] => continue,
            [TokenTree::Ident(key), TokenTree::Punct(eq), TokenTree::Literal(value)]
                if eq.as_char() == '=' =>
            {
                pairs.push((key.to_string(), string(value)?));
            }
            _ => return Err("expected `key = \"value\"` arguments, e.g. `file = \"warden.toml\"`".into()),
        }
    }
    Ok(pairs)
}

/// The tokens of `input`, with the invisible groups a `macro_rules!`
/// fragment (`$file:literal`) arrives in opened.
fn flatten(input: TokenStream) -> Vec<TokenTree> {
    let mut tokens = Vec::new();
    for token in input {
        match token {
            TokenTree::Group(group) if group.delimiter() == Delimiter::None => {
                tokens.extend(flatten(group.stream()))
            }
            token => tokens.push(token),
        }
    }
    tokens
}

/// The text of a plain string literal.
fn string(literal: &Literal) -> Result<String, String> {
    let text = literal.to_string();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains(['\\', '"']))
        .map(str::to_string)
        .ok_or_else(|| format!("{text} must be a plain string literal (no escapes, not raw)"))
}

/// The version on the contract's `package warden:plugin@<version>;` line.
fn contract() -> String {
    package_version(WORLDS).expect("wit/worlds.wit starts with `package warden:plugin@<version>;`")
}

fn package_version(wit: &str) -> Option<String> {
    let line = wit.lines().find_map(|l| l.trim().strip_prefix("package warden:plugin@"))?;
    Some(line.strip_suffix(';')?.to_string())
}

/// The contract's worlds (one per role), by name.
fn worlds() -> Vec<&'static str> {
    WORLDS.lines().filter_map(|l| l.trim().strip_prefix("world ")?.strip_suffix(" {")).collect()
}

fn error(message: &str) -> TokenStream {
    TokenStream::from_str(&format!("::core::compile_error!({});", Literal::string(message)))
        .expect("a compile_error! invocation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_and_the_worlds_from_the_wit() {
        assert_eq!(package_version("// c\npackage warden:plugin@0.2.0;\n").as_deref(), Some("0.2.0"));
        let worlds = worlds();
        for role in ["storage-backend", "session-policy", "context-builder", "agent-driver"] {
            assert!(worlds.contains(&role), "{role} missing from {worlds:?}");
        }
    }

    #[test]
    fn accepts_a_matching_manifest() {
        let text = format!("contract = {:?}\nrole = \"storage-backend\"\nroot = \"state\"\n", contract());
        check(&text, Some("storage-backend")).unwrap();
        check("role = \"session-policy\"\n", None).unwrap();
        check("", Some("agent-driver")).unwrap();
    }

    #[test]
    fn refuses_what_the_host_would_refuse_naming_the_fix() {
        let err = check("role = \"session-policy\"\n", Some("storage-backend")).unwrap_err();
        assert!(err.contains("set role = \"storage-backend\""), "{err}");
        let err = check("contract = \"0.0.9\"\n", Some("storage-backend")).unwrap_err();
        assert!(err.contains(&format!("set contract = {:?}", contract())), "{err}");
        let err = check("role = \"storage\"\n", None).unwrap_err();
        assert!(err.contains("not a role") && err.contains("storage-backend"), "{err}");
        let err = check("programz = []\n", None).unwrap_err();
        assert!(err.contains("programz"), "{err}");
    }

    #[test]
    fn a_manifest_without_the_sdk_may_name_an_older_contract() {
        check("contract = \"0.1.0\"\nrole = \"session-policy\"\n", None).unwrap();
    }
}
