//! The Gemini API side of the fake provider, for Gemini CLI
//! (`GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT`, and `selectedType =
//! "gemini-api-key"` in its settings). Gemini CLI sends the whole
//! conversation in `contents` on every request, so this side is stateless
//! too: the reply is chosen by the last text part of the LAST user content
//! that is not a function response:
//!
//! * `POST /v1beta/models/<model>:streamGenerateContent?alt=sse`: a streamed
//!   answer `echo: <text>` in two chunks, the last with `finishReason` and
//!   `usageMetadata`;
//! * `POST /v1beta/models/<model>:generateContent` (Gemini CLI's own helper
//!   calls, such as its model router, which ask for JSON by schema): a JSON
//!   text built from the schema;
//! * contains `[fail400]` / `[fail500]`: HTTP 400 / 500 with a Google API
//!   error body;
//! * contains `[slow]`: as for the Responses API (see the parent module).

use std::fmt::Write as _;
use std::io::{self, BufReader};
use std::net::TcpStream;

use serde_json::{Map, Value, json};

use super::{Shared, lock, slow, write_response};

/// Whether `path` is a Gemini API call this fake answers.
pub(super) fn handles(path: &str) -> bool {
    path.starts_with("/v1beta/models/")
}

/// Answers one Gemini API call; returns whether the connection stays open.
pub(super) fn answer(
    path: &str,
    request: &Value,
    reader: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    shared: &Shared,
    keep_alive: bool,
) -> io::Result<bool> {
    let method = path.rsplit_once(':').map_or("", |(_, m)| m.split('?').next().unwrap_or(""));
    if method == "generateContent" {
        let text = from_schema(&request["generationConfig"]["responseJsonSchema"]).to_string();
        let body = json!({"candidates": [candidate(&text, true)], "usageMetadata": usage(request, &text)});
        write_response(w, 200, "OK", "application/json", body.to_string().as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    if method != "streamGenerateContent" {
        let body = error(404, &format!("no fake for {method}"), "NOT_FOUND");
        write_response(w, 404, "Not Found", "application/json", body.as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    lock(&shared.gemini_requests).push(request.clone());
    let text = last_prompt(request);
    if text.contains("[slow]") {
        return slow(reader, w, shared);
    }
    for (marker, status, reason, kind) in [
        ("[fail400]", 400, "Bad Request", "INVALID_ARGUMENT"),
        ("[fail500]", 500, "Internal Server Error", "INTERNAL"),
    ] {
        if text.contains(marker) {
            let body = error(status, &format!("fake provider: induced failure ({marker})"), kind);
            write_response(w, status, reason, "application/json", body.as_bytes(), keep_alive)?;
            return Ok(keep_alive);
        }
    }
    let reply = format!("echo: {text}");
    let (first, rest) = reply.split_at(reply.len().min(6));
    let chunks = [
        json!({"candidates": [candidate(first, false)], "modelVersion": "fake-gemini"}),
        json!({"candidates": [candidate(rest, true)], "modelVersion": "fake-gemini", "usageMetadata": usage(request, &reply)}),
    ];
    let mut sse = String::new();
    for chunk in chunks {
        let _ = write!(sse, "data: {chunk}\n\n");
    }
    write_response(w, 200, "OK", "text/event-stream", sse.as_bytes(), keep_alive)?;
    Ok(keep_alive)
}

fn candidate(text: &str, last: bool) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": [{"text": text}]}, "index": 0});
    if last {
        candidate["finishReason"] = json!("STOP");
    }
    candidate
}

fn usage(request: &Value, reply: &str) -> Value {
    let prompt = (request.to_string().len() / 4) as u64;
    let candidates = reply.split_whitespace().count() as u64;
    json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates})
}

fn error(code: u16, message: &str, status: &str) -> String {
    json!({"error": {"code": code, "message": message, "status": status}}).to_string()
}

/// The last text part of the last user content that is not a function response.
fn last_prompt(request: &Value) -> String {
    let contents = request["contents"].as_array().map(Vec::as_slice).unwrap_or_default();
    contents
        .iter()
        .rev()
        .filter(|c| c["role"] == "user")
        .find_map(|c| {
            let parts = c["parts"].as_array()?;
            parts.iter().rev().find_map(|p| p["text"].as_str()).map(str::to_string)
        })
        .unwrap_or_default()
}

/// A value of the JSON schema `schema`: "fake" strings, 1 for numbers.
fn from_schema(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("object") => {
            let properties = schema["properties"].as_object().cloned().unwrap_or_default();
            Value::Object(properties.iter().map(|(k, v)| (k.clone(), from_schema(v))).collect::<Map<_, _>>())
        }
        Some("array") => json!([]),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        _ => match schema["enum"].as_array().and_then(|e| e.first()) {
            Some(first) => first.clone(),
            None => json!("fake"),
        },
    }
}
