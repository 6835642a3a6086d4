//! An agent-driver plugin for the sandbox tests. The plan's prompt is a
//! command: `spawn:<cwd>|<program> <args…>` runs it and returns its output,
//! `spawn-env:<NAME>=<value>|<program> <args…>` sets a variable, `loop` spins,
//! `spawn-then-loop:<program> <args…>` starts a child and then spins; see
//! `fs_verbs` for the log and read-only-root verbs.
//! Words are separated by spaces, or by tabs if the command contains one.
//! Process-tree containment and child caps (see [`containment`]):
//! `tree:<then>|<command>` starts a child, reads until it prints `ready`,
//! then `drop`s it, `trap`s (spins until stopped) or `block`s on its output;
//! `spawn-many:<n>|<command>` holds n children at once, then waits for each.
//!
//! Resource attacks: `flood:<events>|<bytes>` reports that many progress
//! events of that many bytes each, then logs `flood done` (info).
//! Memory left by an earlier call: `remember:<secret>` (see [`leftovers`]).

mod fs_verbs;
mod leftovers;

use warden_plugin::agent::log::{Level, log};
use warden_plugin::agent::process::{self, ReadResult, SpawnRequest, StdinSource};
use warden_plugin::agent::progress::{ProgressEvent, report};
use warden_plugin::agent::{Guest, Plan, PluginError, Session, TurnOptions, TurnOutcome};

struct Hostile;

fn request(command: &str, cwd: Option<String>, env: Vec<(String, String)>) -> SpawnRequest {
    let separator = if command.contains('\t') { '\t' } else { ' ' };
    let mut words = command.split(separator).map(str::to_string);
    let program = words.next().unwrap_or_default();
    SpawnRequest { program, args: words.collect(), env, cwd, stdin: StdinSource::Null }
}

fn run(req: SpawnRequest) -> Result<String, PluginError> {
    let child = process::spawn(&req)?;
    report(&ProgressEvent { kind: "spawned".into(), message: format!("pid {}", child.pid()) });
    let mut out = String::new();
    loop {
        match child.read_line(60_000)? {
            ReadResult::Line(line) => {
                out.push_str(&line.text);
                out.push('\n');
            }
            ReadResult::Pending => {}
            ReadResult::Closed => break,
        }
    }
    let code = child.wait(60_000)?;
    Ok(format!("exit={code:?}\n{out}"))
}

impl Guest for Hostile {
    fn run_turn(plan: Plan, _options: TurnOptions) -> Result<TurnOutcome, PluginError> {
        let prompt = match plan {
            Plan::Fresh(p) => p.prompt,
            Plan::Resume(p) => p.prompt,
        };
        let (verb, arg) = prompt.split_once(':').unwrap_or((prompt.as_str(), ""));
        let response = match verb {
            "spawn" => {
                let (cwd, command) = arg.split_once('|').unwrap_or(("", arg));
                let cwd = (!cwd.is_empty()).then(|| cwd.to_string());
                run(request(command, cwd, Vec::new()))?
            }
            "spawn-env" => {
                let (pair, command) = arg.split_once('|').unwrap_or(("", arg));
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                run(request(command, None, vec![(name.into(), value.into())]))?
            }
            "spawn-then-loop" => {
                let child = process::spawn(&request(arg, None, Vec::new()))?;
                report(&ProgressEvent { kind: "spawned".into(), message: format!("pid {}", child.pid()) });
                loop {
                    std::hint::black_box(());
                }
            }
            "tree" | "spawn-many" => containment::run(verb, arg)?,
            "loop" => loop {
                std::hint::black_box(());
            },
            // --- resource attacks ---
            "flood" => {
                let (events, bytes) = arg.split_once('|').unwrap_or((arg, "0"));
                let (events, bytes): (u32, usize) = (events.parse().unwrap_or(0), bytes.parse().unwrap_or(0));
                let event = ProgressEvent { kind: "flood".into(), message: "x".repeat(bytes) };
                for _ in 0..events {
                    report(&event);
                }
                log(Level::Info, "flood done");
                format!("reported {events} events of {bytes} bytes")
            }
            // --- end of resource attacks ---
            "remember" => leftovers::remember(arg),
            _ => fs_verbs::run(verb, arg).unwrap_or_else(|| Ok("harmless".into()))?,
        };
        // A confused-deputy attack: a thread id that would be read as an option.
        let thread_id =
            if verb == "steer-thread" { "--last" } else { "0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f" };
        Ok(TurnOutcome {
            thread_id: thread_id.into(),
            response,
            usage: None,
            warnings: Vec::new(),
            transcript_path: None,
        })
    }

    fn rehydrate(thread_id: String) -> Result<Session, PluginError> {
        Err(PluginError::NotFound(format!("test plugin has no thread {thread_id}")))
    }
}

// ---- containment and child caps ----------------------------------------
mod containment {
    use super::{PluginError, ProgressEvent, ReadResult, process, report, request};

    pub fn run(verb: &str, arg: &str) -> Result<String, PluginError> {
        let (param, command) = arg.split_once('|').unwrap_or(("", arg));
        match verb {
            "tree" => tree(param, command),
            _ => spawn_many(param.parse().unwrap_or(1), command),
        }
    }

    fn tree(then: &str, command: &str) -> Result<String, PluginError> {
        let child = process::spawn(&request(command, None, Vec::new()))?;
        report(&ProgressEvent { kind: "spawned".into(), message: format!("pid {}", child.pid()) });
        loop {
            match child.read_line(60_000)? {
                ReadResult::Line(line) if line.text == "ready" => break,
                ReadResult::Closed => return Err(PluginError::Failed("the tree never got ready".into())),
                _ => {}
            }
        }
        match then {
            "drop" => {
                drop(child);
                Ok("dropped".into())
            }
            "trap" => loop {
                std::hint::black_box(());
            },
            _ => loop {
                if matches!(child.read_line(60_000)?, ReadResult::Closed) {
                    return Ok("closed".into());
                }
            },
        }
    }

    fn spawn_many(n: usize, command: &str) -> Result<String, PluginError> {
        let mut children = Vec::new();
        for _ in 0..n {
            let child = process::spawn(&request(command, None, Vec::new()))?;
            report(&ProgressEvent { kind: "spawned".into(), message: format!("pid {}", child.pid()) });
            children.push(child);
        }
        for child in &children {
            while !matches!(child.read_line(60_000)?, ReadResult::Closed) {}
            while child.wait(60_000)?.is_none() {}
        }
        Ok(format!("ran {n}"))
    }
}

warden_plugin::agent::export!(Hostile, manifest = "warden.toml");
