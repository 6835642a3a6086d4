//! The Anthropic Messages API side of the fake provider, for Claude Code
//! (`ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`). Claude Code sends the whole
//! conversation in `messages` on every request, so this side is stateless
//! too: the reply is chosen by the last text block of the LAST user message
//! (Claude Code puts its own `<system-reminder>` blocks before the prompt):
//!
//! * default: a streamed message `echo: <text>` (`message_start`, one text
//!   block, `message_delta` with `end_turn` and usage, `message_stop`), or
//!   the same message as one JSON body when the request does not stream;
//! * contains `[fail400]`: HTTP 400 with an `invalid_request_error` body;
//! * contains `[fail500]`: HTTP 500 with an `api_error` body;
//! * contains `[slow]`: as for the Responses API (see the parent module);
//! * contains `[command]`: a `tool_use` of `Bash` running `touch made-by-claude`; once a
//!   `tool_result` follows the prompt, a message `tool said: <its text>`.

use std::fmt::Write as _;
use std::io::{self, BufReader};
use std::net::TcpStream;

use serde_json::{Value, json};

use super::{Shared, slow, write_response};

/// Answers one `POST /v1/messages`; returns whether the connection stays open.
pub(super) fn answer(
    request: &Value,
    reader: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    shared: &Shared,
    keep_alive: bool,
) -> io::Result<bool> {
    let (text, tool_result) = last_prompt(request);
    if text.contains("[slow]") {
        return slow(reader, w, shared);
    }
    for (marker, status, reason, kind) in [
        ("[fail400]", 400, "Bad Request", "invalid_request_error"),
        ("[fail500]", 500, "Internal Server Error", "api_error"),
    ] {
        if text.contains(marker) {
            let body = json!({
                "type": "error",
                "error": {"type": kind, "message": format!("fake provider: induced failure ({marker})")},
            });
            write_response(w, status, reason, "application/json", body.to_string().as_bytes(), keep_alive)?;
            return Ok(keep_alive);
        }
    }
    let id = format!("msg_{}", shared.next());
    let model = request["model"].as_str().unwrap_or("fake-model");
    let input_tokens = (request.to_string().len() / 4) as u64;
    if text.contains("[command]") && tool_result.is_none() {
        let input = json!({"command": "touch made-by-claude", "description": "Create a file"}).to_string();
        let block = json!({"type": "tool_use", "id": format!("toolu_{}", shared.next()), "name": "Bash", "input": {}});
        let events = [
            message_start(&id, model, input_tokens),
            json!({"type": "content_block_start", "index": 0, "content_block": block}),
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "input_json_delta", "partial_json": input}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"output_tokens": 12}}),
            json!({"type": "message_stop"}),
        ];
        write_response(w, 200, "OK", "text/event-stream", sse(&events).as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    let reply = match &tool_result {
        Some(result) => format!("tool said: {result}"),
        None => format!("echo: {text}"),
    };
    let output_tokens = reply.split_whitespace().count() as u64;
    if request["stream"] != true {
        let body = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        });
        write_response(w, 200, "OK", "application/json", body.to_string().as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    let events = [
        message_start(&id, model, input_tokens),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": reply}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": output_tokens}}),
        json!({"type": "message_stop"}),
    ];
    write_response(w, 200, "OK", "text/event-stream", sse(&events).as_bytes(), keep_alive)?;
    Ok(keep_alive)
}

fn message_start(id: &str, model: &str, input_tokens: u64) -> Value {
    json!({"type": "message_start", "message": {
        "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }})
}

/// Server-sent events, each named after its `type`.
fn sse(events: &[Value]) -> String {
    let mut out = String::new();
    for event in events {
        let _ = write!(out, "event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap_or("message"));
    }
    out
}

/// The prompt (the last text block of the last user message that is not a
/// tool result) and the text of a tool result that followed it, if any.
fn last_prompt(request: &Value) -> (String, Option<String>) {
    let messages = request["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut tool_result = None;
    for message in messages.iter().rev().filter(|m| m["role"] == "user") {
        match &message["content"] {
            Value::String(text) => return (text.clone(), tool_result),
            Value::Array(blocks) => {
                if let Some(result) = blocks.iter().find(|b| b["type"] == "tool_result") {
                    tool_result.get_or_insert_with(|| text_of(&result["content"]));
                    continue;
                }
                if let Some(text) =
                    blocks.iter().rev().find(|b| b["type"] == "text").and_then(|b| b["text"].as_str())
                {
                    return (text.to_string(), tool_result);
                }
            }
            _ => {}
        }
    }
    (String::new(), tool_result)
}

/// A tool result's content: a string, or its text blocks joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}
