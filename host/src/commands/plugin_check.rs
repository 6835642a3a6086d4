//! `warden plugin check`: what a plugin is, what it asks for, and what the
//! current configuration would grant — without running it. Every problem is
//! listed with the fix; any problem makes the command fail.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::wasmparser::Parser;

use crate::config::Config;
use crate::contract::role::{CONTRACT_VERSION, Role};
use crate::contract::world_check;
use crate::plugins::{self, grants};
use crate::runtime::Runtime;
use crate::runtime::loaded::PluginSource;
use crate::runtime::manifest::{FromWasm, Manifest};
use warden_permissions::{ArgPattern, EnvDeclaration};

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
    /// What is granted but risky (an unrestricted program grant).
    pub warnings: Vec<String>,
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
        Ok(_) => {
            if let Err(e) = runtime.link_check(role, &component) {
                report.problems.push(format!("{e:#}"));
            }
        }
    }
    match grants::grant(role, config, None) {
        Ok(grant) => {
            compare(&manifest, &grant, role, &mut report);
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
fn compare(manifest: &Manifest, grant: &grants::Grant, role: Role, report: &mut Report) {
    let Report { imports, granted, problems, warnings, .. } = report;
    let section = format!("[plugins.{role}]");
    match (&manifest.root, &grant.root) {
        (Some(name), Some(path)) => granted.push(format!("directory `{name}` at {}", path.display())),
        (Some(name), None) => problems.push(format!(
            "it needs the directory `{name}`, which the configuration does not grant: set `root` under {section}"
        )),
        (None, _) => {}
    }
    match (manifest.database, &grant.database) {
        (true, Some(db)) => granted.push(format!(
            "database {} (schema `{}`, statement timeout {} ms, {} + {} + {} connections, at most {} rows / {} MiB per result)",
            db.shown_url(),
            db.schema,
            db.statement_timeout_ms,
            db.pool_size,
            db.lock_pool_size,
            db.plugin_lock_pool_size,
            db.max_rows,
            db.max_result_mib
        )),
        (true, None) => problems.push(format!(
            "it keeps its data in a database, which the configuration does not grant: add [plugins.{role}.database] \
             (see docs/postgres-setup.md)"
        )),
        (false, _) => {}
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
        let grants: Vec<_> = grant.programs.iter().filter(|g| g.name == program.name).collect();
        if grants.is_empty() {
            problems.push(format!(
                "it declares `{}`, which the configuration does not grant: add [[plugins.{role}.programs]] \
                 name = {:?} with a typed argument policy (`policy = \"codex\"`, `\"claude\"`, `\"gemini\"` or an `arguments` table)",
                show(&program.name, &program.args),
                program.name,
            ));
            continue;
        }
        for g in grants {
            match g.resolve(&grant.requests, std::env::var_os("PATH").as_deref()) {
                Err(e) => problems.push(e),
                Ok(resolved) => {
                    if resolved.is_unrestricted() {
                        warnings.push(format!(
                            "the grant of `{}` is UNRESTRICTED: the plugin may pass any argument, including \
                             ones that load code or start other programs",
                            program.name
                        ));
                    }
                    granted.extend(resolved.describe().into_iter().map(|line| format!("program {line}")));
                }
            }
        }
    }
    let declared = EnvDeclaration(manifest.env.clone());
    for var in &manifest.env {
        if grant.env.reaches(&declared, var) || grant.env.inherit.iter().any(|g| g == var) {
            granted.push(format!("environment variable {var}"));
        } else {
            problems.push(format!(
                "it declares the environment variable {var}, which the configuration does not grant: add it to \
                 `env` (passed on from Warden's environment), `env-values` or `env-patterns` under {section}"
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
    for warning in &report.warnings {
        println!("WARNING:  {warning}");
    }
    for problem in &report.problems {
        println!("problem:  {problem}");
    }
    println!("result:   {}", if report.ok() { "ok" } else { "refused" });
}
