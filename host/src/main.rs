//! The `warden` command line.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use warden::auth::{Authenticator, Principal, Principals};
use warden::capabilities::store_fs::FsRoot;
use warden::commands::{copy_store, migrate, plugin_check, plugin_pack, scaffold, sessions};
use warden::config::Config;
use warden::contract::role::Role;
use warden::contract::world_check;
use warden::mcp::{WardenServer, serve_stdio};
use warden::plugins;
use warden::runtime::loaded::describe;
use warden::sessions::{DEFAULT_MAX_RESPONSE_BYTES, Owners, Sessions, TurnLocks};

/// The legacy single-file store's name inside the state directory.
const LEGACY_FILE: &str = "sessions.json";

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "An MCP server giving coding-agent CLIs durable, resumable sessions"
)]
struct Cli {
    /// Operator configuration (TOML); without it the embedded defaults run.
    #[arg(long, global = true, env = "WARDEN_CONFIG")]
    config: Option<PathBuf>,
    /// Where sessions are stored (default: the platform state directory).
    #[arg(long, global = true, env = "WARDEN_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdin/stdout, or over Streamable HTTP with `--http`.
    Serve {
        /// Serve MCP over Streamable HTTP on this address (e.g. 127.0.0.1:8765) at `/mcp`.
        #[arg(long, value_name = "ADDR:PORT")]
        http: Option<std::net::SocketAddr>,
    },
    /// List the plugin in effect for each role: source, hash, limits and grants.
    Plugins,
    /// Write, check and inspect plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// See and repair the session store without a server.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Import legacy sessions.json stores into the directory store, or copy
    /// this configuration's store into another's (`--to`).
    Migrate {
        /// The legacy file; one `{agentId}` placeholder migrates every matching store
        /// (default: sessions.json in the state directory).
        #[arg(long, conflicts_with = "to")]
        store: Option<PathBuf>,
        /// Copy every session of this configuration's store into the store of
        /// this configuration file (e.g. one naming storage-postgres); sessions
        /// the target holds as recently used are kept. Run again at will.
        #[arg(long, value_name = "CONFIG")]
        to: Option<PathBuf>,
        /// Treat keys that differ only in case as one session, keeping the newest.
        #[arg(long)]
        merge_case_variants: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new plugin project that builds as it stands.
    New {
        #[arg(value_parser = parse_role)]
        role: Role,
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// Where to create the project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The plugin SDK a Rust project depends on (Warden's
        /// `crates/warden-plugin`; default: where it was when Warden was built).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Check a plugin without running it: role, contract version, imports and
    /// exports, what it declares and what the configuration would grant.
    Check {
        file: PathBuf,
        /// The role to check it for (default: the role its manifest declares).
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        #[arg(long)]
        json: bool,
    },
    /// Embed a manifest in a component built by another toolchain
    /// (componentize-py, jco, …): its `warden-manifest` section.
    Pack {
        /// The component as built.
        input: PathBuf,
        /// Where to write the packed component (may be `input` itself).
        output: PathBuf,
        /// The plugin's manifest (`warden.toml` in a plugin project).
        #[arg(long)]
        manifest: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::from_world(text).ok_or_else(|| {
        format!("unknown role {text:?}; use one of {}", Role::ALL.map(|r| r.world()).join(", "))
    })
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List stored sessions, most recently used first, page by page.
    List {
        /// Print JSON (an array, written as the pages arrive).
        #[arg(long)]
        json: bool,
        /// Show at most this many sessions, then the cursor that continues.
        #[arg(long)]
        limit: Option<u64>,
        /// Continue after this cursor (printed by an earlier `--limit`).
        #[arg(long)]
        after: Option<String>,
    },
    /// Rebuild the store's indexes from the session files (after a restore
    /// or a hand edit); the store stays usable meanwhile.
    Reindex,
    /// Print one session with its turns as JSON.
    Show {
        key: String,
        /// Whose session (default: the local principal).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Delete one session (the agent's own transcript is left alone).
    Rm {
        key: String,
        /// Whose session (default: the local principal).
        #[arg(long)]
        owner: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    warden::logging::init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(dir) = cli.state_dir {
        config.state_dir = Some(dir);
    }
    match cli.command {
        Command::Serve { http } => serve(&config, http),
        Command::Plugins => list_plugins(&config),
        Command::Plugin(PluginCommand::New { role, name, lang, dir, sdk }) => {
            let created = scaffold::new_plugin(role, &name, lang, &dir, sdk.as_deref())?;
            println!(
                "created {} ({role}, {lang:?}); see its README.md to build, check and load it",
                created.display()
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Pack { input, output, manifest }) => {
            plugin_pack::pack(&input, &manifest, &output)?;
            println!("packed {} with {} into {}", input.display(), manifest.display(), output.display());
            Ok(())
        }
        Command::Plugin(PluginCommand::Check { file, role, json }) => {
            let runtime = plugins::runtime(&config)?;
            let report = plugin_check::check(&runtime, &config, &file, role);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                plugin_check::print(&report);
            }
            if !report.ok() {
                anyhow::bail!(
                    "{} is refused: {} problem(s), listed above",
                    file.display(),
                    report.problems.len()
                );
            }
            Ok(())
        }
        Command::Sessions(command) => {
            let runtime = plugins::runtime(&config)?;
            let (info, wasm) = plugins::plugin_info(Role::StorageBackend, &config)?;
            let storage = runtime.load_storage(info, &wasm)?;
            let owners = Owners::new(Principals::from_config(&config.auth, &config.principals)?);
            let id_of = |key: &str, owner: Option<String>| -> anyhow::Result<String> {
                let owner = match owner {
                    Some(name) => Principal::new(&name).map_err(|e| anyhow::anyhow!("--owner: {e}"))?,
                    None => owners.local().clone(),
                };
                Ok(owners.storage_id(&owner, key)?)
            };
            match command {
                SessionsCommand::List { json, limit, after } => {
                    sessions::list(&storage, &owners, json, limit, after)
                }
                SessionsCommand::Reindex => sessions::reindex(&storage),
                SessionsCommand::Show { key, owner } => {
                    sessions::show(&storage, &owners, &id_of(&key, owner)?)
                }
                SessionsCommand::Rm { key, owner } => sessions::remove(&storage, &id_of(&key, owner)?),
            }
        }
        Command::Migrate { to: Some(target), .. } => {
            let runtime = plugins::runtime(&config)?;
            let target_config = Config::from_file(&target)?;
            let load = |config: &Config| -> anyhow::Result<_> {
                let (info, wasm) = plugins::plugin_info(Role::StorageBackend, config)?;
                runtime.load_storage(info, &wasm)
            };
            let (from, to) = (load(&config)?, load(&target_config)?);
            let report = copy_store::copy(&from, &to)?;
            println!(
                "copied {} session(s) into {} ({}); kept {} the target held as recent or newer; skipped {}",
                report.copied,
                to.info.name,
                target.display(),
                report.kept,
                report.skipped
            );
            Ok(())
        }
        Command::Migrate { store, merge_case_variants, to: None } => {
            let runtime = plugins::runtime(&config)?;
            let store = match store {
                Some(store) => store,
                None => config.state_dir()?.join(LEGACY_FILE),
            };
            migrate::run(&runtime, &config, &store, merge_case_variants)
        }
    }
}

fn serve(config: &Config, http: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    // Checked before anything else starts: a bind refused for want of authentication costs nothing.
    let auth = Authenticator::from_config(&config.auth)?;
    let owners = Owners::new(Principals::from_config(&config.auth, &config.principals)?);
    if let Some(addr) = http {
        warden::mcp::http::check_bind(addr, &auth)?;
    }
    // Probe (and log once) how child processes are contained on this host.
    warden::capabilities::process::containment();
    let runtime = plugins::runtime(config)?;
    let legacy = config.state_dir()?.join(LEGACY_FILE);
    if std::fs::symlink_metadata(&legacy).is_ok() {
        let report = migrate::migrate_one(&runtime, config, &legacy, false).map_err(|e| {
            anyhow::anyhow!(
                "{e:#}\nthe legacy store {} must be migrated before serving: repair it, or move it aside and run `warden migrate` later",
                legacy.display()
            )
        })?;
        tracing::info!(imported = report.imported, kept = report.kept_existing, superseded = report.superseded,
            backup = ?report.backup, "migrated the legacy session store");
    }
    let set = Arc::new(plugins::load_all(&runtime, config)?);
    let locks = FsRoot::open(&config.turn_lock_dir()?, true, 0)
        .map_err(|e| anyhow::anyhow!("the turn-lock directory: {}", describe(&e)))?;
    let max_response_bytes = config.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    let shared = set.storage.info.database.clone();
    let sessions = Sessions::new(set, TurnLocks::new(Some(locks), shared), max_response_bytes, owners);
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let sessions = Arc::new(sessions);
    match http {
        Some(addr) => tokio.block_on(warden::mcp::http::serve_http(sessions, addr, &config.http, auth)),
        None => {
            tracing::info!("plugins loaded; serving MCP on stdio");
            tokio.block_on(serve_stdio(WardenServer::new(sessions)))
        }
    }
}

fn list_plugins(config: &Config) -> anyhow::Result<()> {
    let runtime = plugins::runtime(config)?;
    let mut listed = Vec::new();
    for role in Role::ALL.into_iter().filter(|r| *r != Role::AgentDriver) {
        listed.push((role.to_string(), plugins::plugin_info(role, config)?));
    }
    for spec in plugins::agents::served(config)? {
        let (role, name) = (Role::AgentDriver, &spec.name);
        let label = format!("{role} (agent `{name}`: tools `{name}`, `{name}-reply`)");
        listed.push((label, plugins::plugin_info(Role::AgentDriver, &spec.config)?));
    }
    for (label, (info, wasm)) in listed {
        let role = info.role;
        let component = runtime.compile(&info.name, &wasm)?;
        let (imports, exports) = world_check::names(runtime.engine(), &component);
        let contract = world_check::contract_versions(imports.iter().chain(&exports));
        println!("{label}: {} ({})", info.name, info.source);
        println!("  sha256:   {}", info.sha256);
        println!("  contract: {}", contract.join(", "));
        println!(
            "  limits:   memory {} MiB, cpu budget {} ms per call, call timeout {} ms, {} calls at once",
            info.limits.memory_bytes >> 20,
            info.limits.cpu_budget.as_millis(),
            info.limits.call_timeout.as_millis(),
            info.limits.max_concurrent_calls
        );
        match (&info.fs_root, &info.manifest.root) {
            (Some(root), _) => {
                println!(
                    "  directory: {} ({})",
                    root.path().display(),
                    role.root().map_or("not granted by the world", |access| access.name())
                );
                if let Some(entries) = root.entries() {
                    println!("  only:     {}", entries.join(", "));
                }
                for (path, what) in root.reserved().iter() {
                    println!("  except:   {path} ({what})");
                }
            }
            (None, Some(name)) => println!("  directory: `{name}` declared but not granted"),
            (None, None) => {}
        }
        if let Some(database) = &info.database {
            let [transactions, locks, plugin_locks] = database.pool_sizes();
            println!(
                "  database: {} (schema `{}`, statement timeout {} ms, {transactions} + {locks} + {plugin_locks} connections, locks held as `{}`, at most {} rows / {} MiB per result)",
                database.target,
                database.schema,
                database.statement_timeout.as_millis(),
                database.locks_user,
                database.caps.rows,
                database.caps.bytes >> 20
            );
        }
        if let Some(process) = &info.process {
            for grant in &process.granted {
                let declared = process.declared.iter().any(|d| d.name == grant.name);
                for (i, line) in grant.describe().iter().enumerate() {
                    println!("  {}{line}", if i == 0 { "may run:  " } else { "          " });
                }
                if !declared {
                    println!("            (granted, but the plugin does not declare it)");
                }
            }
            let env = &process.env;
            let inherited: Vec<&String> = process
                .env_declared
                .0
                .iter()
                .filter(|v| env.inherit.iter().any(|g| warden_permissions::name_matches(g, v)))
                .collect();
            println!(
                "  env:      {} (from Warden's environment)",
                inherited.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            );
            for (name, value) in &env.fixed {
                println!("  env:      {name}={value} (fixed)");
            }
            for (name, pattern) in &env.patterns {
                println!("  env:      {name} settable by the plugin, matching /{pattern}/");
            }
            println!(
                "  cwd in:   {}",
                process.cwd_roots.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            println!(
                "  children: {} per call, {} at once; output {} MiB per stream; contained by {}",
                info.limits.max_children_per_call,
                info.limits.max_children,
                info.limits.output_cap >> 20,
                warden::capabilities::process::containment().name()
            );
            let requests = &process.requests;
            println!(
                "  requests: max sandbox {}, approval policies {}, config keys {}, permission modes {}",
                requests.max_sandbox.as_str(),
                requests.approval_policies.join(", "),
                requests.config_keys.keys().cloned().collect::<Vec<_>>().join(", "),
                requests.permission_modes.join(", ")
            );
        }
    }
    Ok(())
}
