//! `warden plugin check`: what a plugin is, what it asks for, and what the
//! current configuration would grant — without running it. Every problem is
//! listed with the fix; any problem makes the command fail.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::wasmparser::Parser;

use crate::capabilities::process_grant::{ArgPattern, DeclaredProgram, ProgramGrant, wildcard_match};
use crate::config::Config;
use crate::plugins::{self, grants};
use crate::runtime::Runtime;
use crate::runtime::manifest::Manifest;
use crate::runtime::plugin::PluginSource;
use crate::runtime::role::{CONTRACT_VERSION, Role};
use crate::runtime::world_check;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    pub file: String,
    pub sha256: String,
    pub role: Option<Role>,
    /// The contract version(s) its imports and exports name.
    pub contract: Vec<String>,
    pub host_contract: &'static str,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub declares: Option<Manifest>,
    pub grants: Option<grants::Grant>,
    /// What the plugin asked for that the configuration gives.
    pub granted: Vec<String>,
    /// Each problem, with its fix.
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn check(runtime: &Runtime, config: &Config, file: &Path, role: Option<Role>) -> Report {
    let mut report =
        Report { file: file.display().to_string(), host_contract: CONTRACT_VERSION, ..Report::default() };
    let wasm = match std::fs::read(file) {
        Ok(wasm) => wasm,
        Err(e) => {
            report.problems.push(format!("cannot read {}: {e}", file.display()));
            return report;
        }
    };
    report.sha256 = hex::encode(Sha256::digest(&wasm));
    if !wasm.starts_with(b"\0asm") {
        report.problems.push("this is not WebAssembly (no \\0asm header)".into());
        return report;
    }
    if !Parser::is_component(&wasm) {
        report.problems.push(
            "this is a core WebAssembly module, not a component: build it for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)"
                .into(),
        );
        return report;
    }
    let manifest = match Manifest::from_wasm(&wasm) {
        Ok(manifest) => manifest,
        Err(e) => {
            report.problems.push(format!("{e}; fix the plugin's warden.toml"));
            return report;
        }
    };
    let name = plugins::file_plugin_name(file);
    let component = match runtime.compile(&name, &wasm) {
        Ok(component) => component,
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            return report;
        }
    };
    let (imports, exports) = world_check::names(runtime.engine(), &component);
    report.contract = world_check::contract_versions(imports.iter().chain(&exports));
    report.imports = imports;
    report.exports = exports;
    for version in &report.contract {
        if world_check::newer(version, CONTRACT_VERSION) {
            report.problems.push(format!(
                "it was built for contract {version}, newer than the {CONTRACT_VERSION} this host speaks: \
                 upgrade Warden, or build the plugin against contract {CONTRACT_VERSION}"
            ));
        }
    }
    let role = match role.or_else(|| manifest.role.as_deref().and_then(Role::from_world)).or_else(|| {
        report.exports.iter().find_map(|e| {
            Role::ALL.into_iter().find(|r| e.starts_with(&format!("warden:plugin/{}@", r.export())))
        })
    }) {
        Some(role) => role,
        None => {
            report.problems.push("its role is unknown: give --role or set `role` in its warden.toml".into());
            report.declares = Some(manifest);
            return report;
        }
    };
    report.role = Some(role);
    if let Some(declared) = &manifest.role
        && declared != role.world()
    {
        report.problems.push(format!("it declares the role `{declared}` but is checked as {role}"));
    }
    match world_check::check(runtime.engine(), &component, role) {
        Err(why) => report.problems.push(format!("it does not fit the {role} world: {why}")),
        Ok(()) => {
            if let Err(e) = runtime.link_check(role, &component) {
                report.problems.push(format!("{e:#}"));
            }
        }
    }
    match grants::grant(role, config, false) {
        Ok(grant) => {
            compare(&manifest, &grant, role, &report.imports, &mut report.granted, &mut report.problems);
            report.grants = Some(grant);
        }
        Err(e) => report.problems.push(format!("the configuration is invalid: {e:#}")),
    }
    if report.problems.is_empty()
        && let Err(e) = plugins::resolve(role, config, name, PluginSource::File(file.to_path_buf()), &wasm)
    {
        report.problems.push(format!("{e:#}"));
    }
    report.declares = Some(manifest);
    report
}

/// Set what the plugin asked for against what the configuration grants.
fn compare(
    manifest: &Manifest,
    grant: &grants::Grant,
    role: Role,
    imports: &[String],
    granted: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let section = format!("[plugins.{role}]");
    match (&manifest.root, &grant.root) {
        (Some(name), Some(path)) => granted.push(format!("directory `{name}` at {}", path.display())),
        (Some(name), None) => problems.push(format!(
            "it needs the directory `{name}`, which the configuration does not grant: set `root` under {section}"
        )),
        (None, _) => {}
    }
    let imports_process = imports.iter().any(|i| i.starts_with("warden:plugin/process@"));
    if imports_process && manifest.programs.is_empty() {
        problems.push(
            "it imports `process` but declares no program, so any spawn would be refused: declare each \
             program and its arguments under [[programs]] in its warden.toml"
                .into(),
        );
    }
    for program in &manifest.programs {
        if grant.programs.iter().any(|g| covers(g, program)) {
            granted.push(format!("program `{}`", show(&program.name, &program.args)));
        } else {
            problems.push(format!(
                "it declares `{}`, which the configuration does not grant: add [[plugins.{role}.programs]] \
                 name = {:?}, args = {:?}",
                show(&program.name, &program.args),
                program.name,
                program.args.0
            ));
        }
    }
    for var in &manifest.env {
        if grant.env.iter().any(|g| wildcard_match(g, var) || g == var) {
            granted.push(format!("environment variable {var}"));
        } else {
            problems.push(format!(
                "it declares the environment variable {var}, which the configuration does not grant: add it to `env` under {section}"
            ));
        }
    }
    if let Some(needed) = manifest.memory_mib {
        if needed <= grant.memory_mib {
            granted.push(format!("{needed} MiB of memory (limit {} MiB)", grant.memory_mib));
        } else {
            problems.push(format!(
                "it needs {needed} MiB of memory, over the {} MiB limit: raise `memory-mib` under {section}",
                grant.memory_mib
            ));
        }
    }
}

/// Whether a grant allows every argument list the declaration allows.
fn covers(grant: &ProgramGrant, declared: &DeclaredProgram) -> bool {
    if grant.name != declared.name {
        return false;
    }
    let (g, d) = (&grant.args.0, &declared.args.0);
    for (i, item) in d.iter().enumerate() {
        match g.get(i).map(String::as_str) {
            Some("**") if i + 1 == g.len() => return true,
            Some("*") if item != "**" => {}
            Some(literal) if literal == item && item != "*" && item != "**" => {}
            _ => return false,
        }
    }
    g.len() == d.len() || (g.len() == d.len() + 1 && g.last().is_some_and(|x| x == "**"))
}

fn show(name: &str, args: &ArgPattern) -> String {
    std::iter::once(name).chain(args.0.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
}

/// What a manifest asks for, on one line.
fn summary(manifest: &Manifest) -> String {
    let mut parts = Vec::new();
    if let Some(root) = &manifest.root {
        parts.push(format!("directory `{root}`"));
    }
    for program in &manifest.programs {
        parts.push(format!("program `{}`", show(&program.name, &program.args)));
    }
    if !manifest.env.is_empty() {
        parts.push(format!("environment {}", manifest.env.join(", ")));
    }
    if let Some(mib) = manifest.memory_mib {
        parts.push(format!("{mib} MiB of memory"));
    }
    if parts.is_empty() { "nothing".into() } else { parts.join("; ") }
}

pub fn print(report: &Report) {
    println!("plugin:   {}", report.file);
    println!("sha256:   {}", report.sha256);
    if let Some(role) = report.role {
        println!("role:     {role}");
    }
    if !report.contract.is_empty() {
        println!("contract: {} (this host speaks {})", report.contract.join(", "), report.host_contract);
    }
    if !report.exports.is_empty() {
        println!("exports:  {}", report.exports.join(", "));
        let warden: Vec<&String> = report.imports.iter().filter(|i| i.starts_with("warden:")).collect();
        let wasi = report.imports.len() - warden.len();
        println!(
            "imports:  {}{}",
            warden.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            if wasi > 0 { format!(" (+{wasi} WASI interfaces, denied by the host)") } else { String::new() }
        );
    }
    if let Some(manifest) = &report.declares {
        println!("declares: {}", summary(manifest));
    }
    for item in &report.granted {
        println!("granted:  {item}");
    }
    for problem in &report.problems {
        println!("problem:  {problem}");
    }
    println!("result:   {}", if report.ok() { "ok" } else { "refused" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(items: &[&str]) -> ArgPattern {
        ArgPattern(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn coverage_of_declared_patterns() {
        let grant = |args: &[&str]| ProgramGrant { name: "codex".into(), path: None, args: pattern(args) };
        let declared = |args: &[&str]| DeclaredProgram { name: "codex".into(), args: pattern(args) };
        assert!(covers(&grant(&["exec", "**"]), &declared(&["exec", "**"])));
        assert!(covers(&grant(&["exec", "**"]), &declared(&["exec", "*", "x"])));
        assert!(covers(&grant(&["*", "**"]), &declared(&["exec", "**"])));
        assert!(covers(&grant(&["exec", "**"]), &declared(&["exec"])));
        assert!(!covers(&grant(&["exec", "*"]), &declared(&["exec", "**"])));
        assert!(!covers(&grant(&["exec"]), &declared(&["exec", "*"])));
        assert!(!covers(&grant(&["exec", "x"]), &declared(&["exec", "*"])));
        assert!(!covers(&grant(&["run", "**"]), &declared(&["exec", "**"])));
    }
}
