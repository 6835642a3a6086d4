//! The tools Warden offers: names, titles, descriptions and annotations; the
//! input and output schemas are derived from the types in [`super::inputs`]
//! and [`super::outputs`]. Every agent gets `<name>` and `<name>-reply` with
//! the same contract, so the turn tools are built from an [`Agent`].

use std::collections::HashMap;

use rmcp::model::{Tool, ToolAnnotations};

use super::inputs::{EndSessionArgs, ListSessionsArgs, NoArgs, ReplyArgs, TurnArgs};
use super::outputs::{Pong, SessionEnded, SessionList, TurnOutput};

/// An agent whose turns are offered as tools.
#[derive(Clone, Debug)]
pub struct Agent {
    /// The tool name (`codex`); the reply tool is `<name>-reply`.
    pub name: String,
    /// The name people know it by (`Codex`), for titles and descriptions.
    pub display_name: String,
}

impl Agent {
    pub fn named(name: &str) -> Self {
        Agent { name: name.to_string(), display_name: crate::plugins::agents::display_name(name) }
    }
}

/// What a tool call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A turn in a new or named session ([`TurnArgs`]) with the agent at this index.
    Turn(usize),
    /// The next turn of a thread or session ([`ReplyArgs`]) with the agent at this index.
    Reply(usize),
    ListSessions,
    EndSession,
    Ping,
}

/// The tool list and the route of each tool name, built together.
pub struct Catalog {
    tools: Vec<Tool>,
    routes: HashMap<String, Route>,
    agents: Vec<Agent>,
}

impl Catalog {
    pub fn new(agents: &[Agent]) -> Self {
        let mut catalog = Catalog { tools: Vec::new(), routes: HashMap::new(), agents: agents.to_vec() };
        for (index, agent) in agents.iter().enumerate() {
            catalog.add(Route::Turn(index), turn_tool(agent));
            catalog.add(Route::Reply(index), reply_tool(agent));
        }
        catalog.add(Route::ListSessions, list_sessions_tool());
        catalog.add(Route::EndSession, end_session_tool());
        catalog.add(Route::Ping, ping_tool());
        catalog
    }

    fn add(&mut self, route: Route, tool: Tool) {
        let previous = self.routes.insert(tool.name.to_string(), route);
        assert!(previous.is_none(), "two tools are named {}", tool.name);
        self.tools.push(tool);
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    pub fn route(&self, tool: &str) -> Option<Route> {
        self.routes.get(tool).copied()
    }

    /// The agent a [`Route::Turn`] or [`Route::Reply`] names.
    pub fn agent(&self, index: usize) -> &Agent {
        &self.agents[index]
    }

    pub fn agent_names(&self) -> Vec<&str> {
        self.agents.iter().map(|a| a.name.as_str()).collect()
    }
}

fn turn_tool(agent: &Agent) -> Tool {
    let Agent { name, display_name } = agent;
    Tool::new(
        name.clone(),
        format!(
            "Run a {display_name} turn in a durable session. Without sessionId a new session starts; with \
             one, the session continues (created on first use). Sessions survive Warden restarts. A session \
             another agent holds is handed over: {display_name} starts with its history replayed."
        ),
        rmcp::model::JsonObject::new(),
    )
    .with_title(format!("Run {display_name}"))
    .with_input_schema::<TurnArgs>()
    .with_output_schema::<TurnOutput>()
    .with_annotations(agent_annotations())
}

fn reply_tool(agent: &Agent) -> Tool {
    let Agent { name, display_name } = agent;
    Tool::new(
        format!("{name}-reply"),
        format!(
            "Continue a {display_name} thread by threadId (or the deprecated conversationId), or a Warden \
             session by sessionId. A thread unknown to Warden is recovered from {display_name}'s own \
             transcript on disk."
        ),
        rmcp::model::JsonObject::new(),
    )
    .with_title(format!("{display_name} reply"))
    .with_input_schema::<ReplyArgs>()
    .with_output_schema::<TurnOutput>()
    .with_annotations(agent_annotations())
}

/// An agent's turn changes files and reaches model providers and the web.
fn agent_annotations() -> ToolAnnotations {
    ToolAnnotations::new().read_only(false).destructive(true).idempotent(false).open_world(true)
}

fn list_sessions_tool() -> Tool {
    Tool::new(
        "listSessions",
        "List live sessions, most recently used first, one page at a time (pass `nextCursor` back as \
         `cursor`): id, the agent holding it, thread id, created and last-used times, turn count, cwd, \
         model. Filter by cwd, model, agent, or text in the key.",
        rmcp::model::JsonObject::new(),
    )
    .with_title("List sessions")
    .with_input_schema::<ListSessionsArgs>()
    .with_output_schema::<SessionList>()
    .with_annotations(ToolAnnotations::new().read_only(true).open_world(false))
}

fn end_session_tool() -> Tool {
    Tool::new(
        "endSession",
        "Remove a session from Warden. The agent's own transcript is kept.",
        rmcp::model::JsonObject::new(),
    )
    .with_title("End a session")
    .with_input_schema::<EndSessionArgs>()
    .with_output_schema::<SessionEnded>()
    .with_annotations(
        ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(false),
    )
}

fn ping_tool() -> Tool {
    Tool::new(
        "ping",
        "Check that Warden is running; reports the plugin in effect for each role, and each agent served \
         with its plugin and whether it is available.",
        rmcp::model::JsonObject::new(),
    )
    .with_title("Ping Warden")
    .with_input_schema::<NoArgs>()
    .with_output_schema::<Pong>()
    .with_annotations(ToolAnnotations::new().read_only(true).open_world(false))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn tool<'a>(catalog: &'a Catalog, name: &str) -> &'a Tool {
        catalog.tools().iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} is listed"))
    }

    fn schema(object: &rmcp::model::JsonObject) -> Value {
        Value::Object(object.clone())
    }

    fn agents() -> Vec<Agent> {
        ["codex", "claude"].into_iter().map(Agent::named).collect()
    }

    #[test]
    fn every_tool_has_a_title_annotations_and_both_schemas() {
        let catalog = Catalog::new(&agents());
        let names: Vec<&str> = catalog.tools().iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            ["codex", "codex-reply", "claude", "claude-reply", "listSessions", "endSession", "ping"]
        );
        assert_eq!(tool(&catalog, "claude").title.as_deref(), Some("Run Claude Code"));
        for tool in catalog.tools() {
            assert!(tool.title.is_some(), "{}", tool.name);
            assert!(tool.annotations.is_some(), "{}", tool.name);
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert_eq!(
                tool.input_schema["additionalProperties"], false,
                "{}: unknown fields are refused",
                tool.name
            );
            assert!(tool.input_schema["properties"].is_object(), "{}: clients expect properties", tool.name);
            assert!(tool.output_schema.is_some(), "{}", tool.name);
            assert!(catalog.route(&tool.name).is_some(), "{} has a route", tool.name);
        }
        let hints = |name| {
            let a = tool(&catalog, name).annotations.clone().unwrap();
            (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        };
        assert_eq!(hints("codex"), (Some(false), Some(true), Some(false), Some(true)));
        assert_eq!(hints("codex-reply"), hints("codex"));
        assert_eq!(hints("endSession"), (Some(false), Some(true), Some(true), Some(false)));
        assert_eq!(hints("listSessions").0, Some(true));
        assert_eq!(hints("ping").0, Some(true));
    }

    #[test]
    fn the_codex_schema_keeps_the_wire_names() {
        let catalog = Catalog::new(&agents());
        let input = schema(&tool(&catalog, "codex").input_schema);
        let mut properties: Vec<&str> =
            input["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        properties.sort_unstable();
        let mut expected = [
            "prompt",
            "sessionId",
            "resetSession",
            "model",
            "reasoningEffort",
            "sandbox",
            "cwd",
            "workingDirectory",
            "approval-policy",
            "config",
            "base-instructions",
            "developer-instructions",
            "profile",
            "include-plan-tool",
            "compact-prompt",
        ];
        expected.sort_unstable();
        assert_eq!(properties, expected);
        assert_eq!(input["required"], json!(["prompt"]));
        let sandbox = &input["properties"]["sandbox"];
        assert!(sandbox["enum"].as_array().unwrap().contains(&json!("danger-full-access")), "{sandbox}");
        assert!(sandbox["description"].as_str().unwrap().contains("max-sandbox"));
        assert!(!input.to_string().contains("$ref"), "schemas are inline for simple clients: {input}");
        let reply = schema(&tool(&catalog, "codex-reply").input_schema);
        let reply_fields: Vec<&str> =
            reply["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(reply_fields.len(), 4, "{reply_fields:?}");
        for field in ["prompt", "threadId", "conversationId", "sessionId"] {
            assert!(reply_fields.contains(&field), "{field}");
        }
    }

    #[test]
    fn outputs_are_typed() {
        let catalog = Catalog::new(&agents());
        let output = |name| schema(tool(&catalog, name).output_schema.as_ref().unwrap());
        let turn = output("codex");
        assert_eq!(turn["required"], json!(["content"]));
        assert_eq!(turn["properties"]["usage"]["properties"]["inputTokens"]["type"], "integer");
        let sessions = output("listSessions");
        let item = &sessions["properties"]["sessions"]["items"];
        assert_eq!(item["type"], "object", "{sessions}");
        for field in ["id", "agent", "createdAt", "lastAccessedAt", "turnCount", "threadId", "model", "cwd"] {
            assert!(item["properties"].get(field).is_some(), "{field}: {item}");
        }
        assert_eq!(output("endSession")["required"], json!(["sessionId", "removed"]));
        assert_eq!(output("ping")["properties"]["plugins"]["additionalProperties"]["type"], "string");
        let agent = &output("ping")["properties"]["agents"]["items"];
        for field in ["name", "plugin", "available"] {
            assert!(agent["properties"].get(field).is_some(), "{field}: {agent}");
        }
    }

    #[test]
    fn each_agent_gets_its_own_pair_of_tools() {
        let catalog = Catalog::new(&[Agent::named("codex"), Agent::named("other")]);
        assert_eq!(catalog.route("other"), Some(Route::Turn(1)));
        assert_eq!(catalog.route("other-reply"), Some(Route::Reply(1)));
        assert_eq!(catalog.agent(1).name, "other");
        assert_eq!(tool(&catalog, "other-reply").title.as_deref(), Some("other reply"));
        assert_eq!(tool(&catalog, "other").input_schema, tool(&catalog, "codex").input_schema);
        assert_eq!(catalog.route("nope"), None);
    }
}
