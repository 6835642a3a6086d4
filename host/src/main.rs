//! The `warden` command line.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use warden::config::Config;
use warden::mcp::{WardenServer, serve_stdio};
use warden::plugins;
use warden::runtime::role::Role;

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
    /// Serve MCP over stdin/stdout.
    Serve,
    /// List the plugin in effect for each role: source, hash, limits and grants.
    Plugins,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
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
        Command::Serve => serve(&config),
        Command::Plugins => list_plugins(&config),
    }
}

fn serve(config: &Config) -> anyhow::Result<()> {
    let runtime = plugins::runtime(config)?;
    let set = Arc::new(plugins::load_all(&runtime, config)?);
    tracing::info!("plugins loaded; serving MCP on stdio");
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tokio.block_on(serve_stdio(WardenServer::new(set)))
}

fn list_plugins(config: &Config) -> anyhow::Result<()> {
    for role in Role::ALL {
        let (info, _) = plugins::plugin_info(role, config)?;
        println!("{role}: {} ({})", info.name, info.source);
        println!("  sha256: {}", info.sha256);
        println!(
            "  limits: memory {} MiB, cpu budget {} ms",
            info.limits.memory_bytes >> 20,
            info.limits.cpu_budget.as_millis()
        );
        if let Some(root) = &info.fs_root {
            println!("  directory: {}", root.path().display());
        }
        if let Some(process) = &info.process {
            for grant in &process.granted {
                println!("  may run: {} {}", grant.name, grant.args.0.join(" "));
            }
        }
    }
    Ok(())
}
