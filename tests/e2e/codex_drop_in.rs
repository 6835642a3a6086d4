//! Warden as the replacement of the removed official `codex mcp-server`,
//! seen by a real MCP client (rmcp) and running the REAL Codex CLI against
//! the fake provider: tools/list shows every tool's title, annotations and
//! typed output schema, arguments are checked against the same types, and the
//! official server's `profile`, `include-plan-tool` and `compact-prompt` do
//! what the README says.

use rmcp::model::{CallToolRequestParams, Tool};
use serde_json::{Value, json};

use crate::codex_mcp::{Connection, World, call, structured, text};

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} is listed"))
}

/// The message of the protocol error a call with `arguments` gets.
async fn refusal(server: &Connection, tool: &'static str, arguments: Value) -> String {
    let Value::Object(arguments) = arguments else { panic!("arguments are an object") };
    let params = CallToolRequestParams::new(tool).with_arguments(arguments);
    server.call_tool(params).await.expect_err("the call is refused").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_shows_titles_annotations_and_typed_results() {
    let world = World::new();
    let (server, _) = world.serve(120).await;
    let tools = server.list_all_tools().await.unwrap();
    for t in &tools {
        assert!(t.title.as_deref().is_some_and(|title| !title.is_empty()), "{} has a title", t.name);
        assert!(t.output_schema.is_some(), "{} has an output schema", t.name);
        assert_eq!(t.input_schema["additionalProperties"], false, "{} refuses unknown fields", t.name);
    }
    let hints = |name| {
        let a = tool(&tools, name).annotations.clone().unwrap_or_else(|| panic!("{name} is annotated"));
        (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
    };
    for name in ["codex", "codex-reply"] {
        let (read_only, _, _, open_world) = hints(name);
        assert_eq!((read_only, open_world), (Some(false), Some(true)), "{name}");
    }
    let (_, destructive, idempotent, _) = hints("endSession");
    assert_eq!((destructive, idempotent), (Some(true), Some(true)));
    assert_eq!(hints("listSessions").0, Some(true));
    assert_eq!(hints("ping").0, Some(true));
    let codex = Value::Object(tool(&tools, "codex").input_schema.as_ref().clone());
    for field in [
        "approval-policy",
        "base-instructions",
        "workingDirectory",
        "profile",
        "include-plan-tool",
        "compact-prompt",
    ] {
        assert!(codex["properties"].get(field).is_some(), "`codex` accepts {field}: {codex}");
    }

    // A listed session matches the announced item schema, field by field.
    let turn =
        call(&server, "codex", json!({"prompt": "hello", "sessionId": "typed", "cwd": world.project()}))
            .await;
    assert_eq!(turn.is_error, Some(false), "{}", text(&turn));
    let listed = call(&server, "listSessions", json!({})).await;
    let item_schema = tool(&tools, "listSessions").output_schema.as_ref().unwrap()["properties"]["sessions"]
        ["items"]
        .clone();
    let item = &structured(&listed)["sessions"][0];
    for field in item_schema["required"].as_array().unwrap() {
        let field = field.as_str().unwrap();
        let value = &item[field];
        let types = &item_schema["properties"][field]["type"];
        let kind = match value {
            Value::String(_) => "string",
            Value::Number(_) => "integer",
            Value::Null => "null",
            other => panic!("{field} is {other}"),
        };
        assert!(
            types == kind || types.as_array().is_some_and(|t| t.contains(&json!(kind))),
            "{field}: {value} vs {types}"
        );
    }
    assert_eq!(item["id"], "typed");
    assert_eq!(item["turnCount"], 1);

    // Arguments are read by the same types: errors name the field and the fix.
    let unknown = refusal(&server, "codex", json!({"promt": "x"})).await;
    assert!(
        unknown.contains("`promt` is not an argument of `codex`; it accepts prompt, sessionId"),
        "{unknown}"
    );
    let wrong = refusal(&server, "codex", json!({"prompt": 3})).await;
    assert!(wrong.contains("`prompt` must be a string, not integer `3`"), "{wrong}");
    let choice = refusal(&server, "codex", json!({"prompt": "x", "approval-policy": "sometimes"})).await;
    assert!(
        choice.contains("`approval-policy` is \"sometimes\"; use one of untrusted, on-failure"),
        "{choice}"
    );
    let none = refusal(&server, "ping", json!({"verbose": true})).await;
    assert!(none.contains("`verbose` is not an argument of `ping`; it takes none"), "{none}");
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_servers_arguments_do_what_the_readme_says() {
    let world = World::new();
    // Codex compacts a thread before a turn once it holds more tokens than this.
    let home = world.path("codex-home/config.toml");
    let config = std::fs::read_to_string(&home).unwrap();
    std::fs::write(&home, format!("model_auto_compact_token_limit = 1\n{config}")).unwrap();
    let (server, _) = world.serve(120).await;

    // include-plan-tool: false is what codex exec does anyway: it offers the model no plan tool.
    let planned = call(
        &server,
        "codex",
        json!({"prompt": "plan it", "cwd": world.project(), "include-plan-tool": false}),
    )
    .await;
    assert_eq!(structured(&planned)["content"], "echo: plan it", "{}", text(&planned));
    let offered = world.provider.requests().last().unwrap()["tools"].clone();
    let names: Vec<&str> = offered.as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"exec_command"), "the offered tools are listed: {names:?}");
    assert!(!names.contains(&"update_plan"), "codex exec offers no plan tool: {names:?}");

    // What codex exec cannot do is refused before anything runs.
    let asked = world.provider.requests().len();
    let plan = refusal(&server, "codex", json!({"prompt": "x", "include-plan-tool": true})).await;
    assert!(plan.contains("`include-plan-tool` cannot be true"), "{plan}");
    let profile = refusal(&server, "codex", json!({"prompt": "x", "profile": "fast"})).await;
    assert!(profile.contains("`profile` is refused: a profile loads configuration"), "{profile}");
    assert_eq!(world.provider.requests().len(), asked, "no refused call reached codex");

    // compact-prompt becomes the prompt codex compacts the thread with.
    let mark = "Summarise this thread for the drop-in test.";
    let first =
        call(&server, "codex", json!({"prompt": "first", "sessionId": "long", "cwd": world.project()})).await;
    assert_eq!(first.is_error, Some(false), "{}", text(&first));
    let second =
        call(&server, "codex", json!({"prompt": "second", "sessionId": "long", "compact-prompt": mark}))
            .await;
    assert_eq!(structured(&second)["content"], "echo: second", "{}", text(&second));
    let compacted = world.provider.requests().iter().any(|r| r["input"].to_string().contains(mark));
    assert!(
        compacted,
        "codex compacted with the caller's prompt: {:#?}",
        world.provider.requests().iter().map(|r| r["input"].to_string()).collect::<Vec<_>>()
    );
    server.cancel().await.unwrap();
}
