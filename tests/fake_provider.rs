//! A fake model provider for driving the real Codex CLI and Claude Code in
//! tests, with nothing but `std` and `serde_json`: OpenAI's Responses API
//! (here), Anthropic's Messages API (`anthropic`) and the Gemini API (`gemini`), on one port.
//!
//! It listens on `127.0.0.1:0`, answers `POST /v1/responses`,
//! `POST /v1/messages` and the Gemini API's `POST /v1beta/models/…`, and serves every
//! connection on its own thread until the [`FakeProvider`] is dropped. Codex
//! sends the whole history in `input` on every request, so the fake is
//! stateless: the reply is chosen by the text of the LAST user message in
//! `input`:
//!
//! * default: a streamed reply with one assistant message `echo: <text>`,
//!   then `response.completed` with usage numbers;
//! * contains `[slow]`: response headers, then nothing for [`SLOW_HOLD`]
//!   (the connection is held, other connections are served meanwhile); the
//!   stream then ends WITHOUT `response.completed`. The hold ends early when
//!   the client goes away or the provider is dropped;
//! * contains `[fail500]`: HTTP 500 with a JSON error body;
//! * contains `[command]`: a `function_call` to `exec_command` with
//!   `{"cmd":"echo hi"}`; once a `function_call_output` item follows that
//!   user message, a message `ran command`.
//!
//! The Messages API's markers are described in `anthropic`.
//!
//! HTTP/1.0 and 1.1 with keep-alive or `Connection: close`, request bodies
//! with `Content-Length` or `Transfer-Encoding: chunked`, `Expect:
//! 100-continue`. Any other path gets 404, another method 405, a compressed
//! body 415, an unparsable one 400.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod anthropic;
mod gemini;

/// How long a `[slow]` request holds its connection open without sending any event.
pub const SLOW_HOLD: Duration = Duration::from_secs(120);

const MAX_HEADER_LINE: usize = 16 << 10;
const MAX_HEADERS: usize = 200;
const MAX_BODY: usize = 64 << 20;
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A fake Responses-API server on 127.0.0.1; stops when dropped.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    requests: Mutex<Vec<Value>>,
    /// Bodies of `POST /v1/messages` (Anthropic), apart from the Responses API's.
    messages_requests: Mutex<Vec<Value>>,
    /// Bodies of the Gemini API's streamed chat requests.
    gemini_requests: Mutex<Vec<Value>>,
    /// Clones of the open connections, shut down on drop to end their threads.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

impl Shared {
    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl FakeProvider {
    /// Binds 127.0.0.1 on a free port and serves on background threads.
    pub fn start() -> FakeProvider {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("fake provider: binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake provider: local address");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            messages_requests: Mutex::new(Vec::new()),
            gemini_requests: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fake-provider-accept".into())
                .spawn(move || accept_loop(listener, shared))
                .expect("fake provider: spawning the accept thread")
        };
        FakeProvider { addr, shared, acceptor: Some(acceptor) }
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`: codex POSTs to `<base_url>/responses`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The JSON bodies of the `POST /v1/responses` requests received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    /// `http://127.0.0.1:PORT`: Claude Code's `ANTHROPIC_BASE_URL`.
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JSON bodies of the `POST /v1/messages` requests received so far, in order.
    pub fn messages_requests(&self) -> Vec<Value> {
        lock(&self.shared.messages_requests).clone()
    }

    /// `http://127.0.0.1:PORT`: Gemini CLI's `GOOGLE_GEMINI_BASE_URL`.
    pub fn gemini_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JSON bodies of the Gemini API's streamed chat requests received so far, in order.
    pub fn gemini_requests(&self) -> Vec<Value> {
        lock(&self.shared.gemini_requests).clone()
    }

    /// Writes `dir/config.toml` pointing codex at this provider (creating `dir`).
    /// Codex needs `MOCK_API_KEY` set (any value) in its environment. Keep `dir`
    /// out of /tmp: codex refuses to set up its helper binaries there.
    pub fn write_codex_home(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let config = format!(
            r#"model = "mock-model"
model_provider = "mock"
approval_policy = "never"
check_for_update_on_startup = false

[model_providers.mock]
name = "Mock"
base_url = "{base_url}"
wire_api = "responses"
env_key = "MOCK_API_KEY"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false
"#,
            base_url = self.base_url()
        );
        let path = dir.join("config.toml");
        std::fs::write(&path, config).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, conn) in lock(&self.shared.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let id = shared.next();
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(id, clone);
        }
        let shared2 = Arc::clone(&shared);
        let spawned = thread::Builder::new().name(format!("fake-provider-conn-{id}")).spawn(move || {
            let _ = serve_connection(stream, &shared2);
            lock(&shared2.conns).remove(&id);
        });
        if spawned.is_err() {
            lock(&shared.conns).remove(&id);
        }
    }
}

struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    body: Vec<u8>,
    content_encoding: Option<String>,
}

/// Serves requests on one connection until it is closed or asks to close.
fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()), // clean EOF between requests
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let body = error_body(&format!("bad request: {e}"), "invalid_request_error");
                write_response(&mut writer, 400, "Bad Request", "application/json", body.as_bytes(), false)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let keep_alive = handle(&request, &mut reader, &mut writer, shared)?;
        if !keep_alive {
            let _ = writer.flush();
            let _ = writer.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Reads one request; `None` on EOF before its first byte.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> io::Result<Option<Request>> {
    let mut line = String::new();
    // Tolerate empty lines before a request line (RFC 9112 §2.2).
    loop {
        line.clear();
        if read_line(reader, &mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(format!("malformed request line {:?}", line.trim_end())));
    };
    let method = method.to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let http10 = version.eq_ignore_ascii_case("HTTP/1.0");

    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        line.clear();
        if read_line(reader, &mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF inside headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(invalid("too many headers".into()));
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(invalid(format!("malformed header {l:?}")));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| -> Vec<&str> {
        headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    };
    let has_token = |name: &str, token: &str| {
        header(name).iter().flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };

    let keep_alive = if has_token("connection", "close") {
        false
    } else if http10 {
        has_token("connection", "keep-alive")
    } else {
        true
    };
    let chunked = has_token("transfer-encoding", "chunked");
    let content_length = match header("content-length").first() {
        Some(v) => Some(v.parse::<usize>().map_err(|_| invalid(format!("bad content-length {v:?}")))?),
        None => None,
    };
    if !http10 && has_token("expect", "100-continue") {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    let body = if chunked {
        read_chunked(reader)?
    } else if let Some(len) = content_length {
        if len > MAX_BODY {
            return Err(invalid(format!("body of {len} bytes is too large")));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    let content_encoding =
        header("content-encoding").first().map(|v| v.to_ascii_lowercase()).filter(|v| v != "identity");
    Ok(Some(Request { method, path, keep_alive, body, content_encoding }))
}

/// Reads a line of at most [`MAX_HEADER_LINE`] bytes (including its `\n`).
fn read_line(reader: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<usize> {
    let mut buf = Vec::new();
    let n = reader.by_ref().take(MAX_HEADER_LINE as u64).read_until(b'\n', &mut buf)?;
    if n == MAX_HEADER_LINE && buf.last() != Some(&b'\n') {
        return Err(invalid("header line too long".into()));
    }
    line.push_str(&String::from_utf8_lossy(&buf));
    Ok(n)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read_line(reader, &mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF inside chunked body"));
        }
        let size_text = line.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {:?}", line.trim())))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                if read_line(reader, &mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf[..1])?;
        if crlf[0] == b'\r' {
            reader.read_exact(&mut crlf[1..])?;
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Answers one request; returns whether the connection stays open.
fn handle(
    req: &Request,
    reader: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    shared: &Shared,
) -> io::Result<bool> {
    let keep_alive = req.keep_alive;
    if req.path != "/v1/responses" && req.path != "/v1/messages" && !gemini::handles(&req.path) {
        let body = error_body(&format!("no route for {} {}", req.method, req.path), "not_found");
        write_response(w, 404, "Not Found", "application/json", body.as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    if req.method != "POST" {
        let body = error_body(&format!("method {} not allowed", req.method), "invalid_request_error");
        write_response(w, 405, "Method Not Allowed", "application/json", body.as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    if let Some(enc) = &req.content_encoding {
        let body = error_body(&format!("content-encoding {enc} is not supported"), "invalid_request_error");
        write_response(w, 415, "Unsupported Media Type", "application/json", body.as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    let parsed: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            let body = error_body(&format!("body is not JSON: {e}"), "invalid_request_error");
            write_response(w, 400, "Bad Request", "application/json", body.as_bytes(), keep_alive)?;
            return Ok(keep_alive);
        }
    };
    if req.path == "/v1/messages" {
        lock(&shared.messages_requests).push(parsed.clone());
        return anthropic::answer(&parsed, reader, w, shared, keep_alive);
    }
    if gemini::handles(&req.path) {
        return gemini::answer(&req.path, &parsed, reader, w, shared, keep_alive);
    }
    lock(&shared.requests).push(parsed.clone());

    let input = parsed.get("input").and_then(Value::as_array).cloned().unwrap_or_default();
    let last_user = input.iter().rposition(is_user_message);
    let text = last_user.map(|i| message_text(&input[i])).unwrap_or_default();
    let input_tokens = (req.body.len() / 4) as u64;

    if text.contains("[slow]") {
        return slow(reader, w, shared);
    }
    if text.contains("[fail500]") {
        let body = error_body("fake provider: induced failure ([fail500])", "server_error");
        write_response(w, 500, "Internal Server Error", "application/json", body.as_bytes(), keep_alive)?;
        return Ok(keep_alive);
    }
    let resp_id = format!("resp_{}", shared.next());
    let events = if text.contains("[command]") {
        let answered = last_user.is_some_and(|i| {
            input[i + 1..].iter().any(|item| item_type(item) == Some("function_call_output"))
        });
        if answered {
            message_events(&resp_id, &format!("msg_{}", shared.next()), "ran command", input_tokens)
        } else {
            let n = shared.next();
            function_call_events(&resp_id, &format!("fc_{n}"), &format!("call_{n}"), input_tokens)
        }
    } else {
        message_events(&resp_id, &format!("msg_{}", shared.next()), &format!("echo: {text}"), input_tokens)
    };
    let mut sse = String::new();
    for event in events {
        let kind = event["type"].as_str().unwrap_or("message").to_string();
        let _ = write!(sse, "event: {kind}\ndata: {event}\n\n");
    }
    write_response(w, 200, "OK", "text/event-stream", sse.as_bytes(), keep_alive)?;
    Ok(keep_alive)
}

/// Headers of a chunked event stream, then silence for [`SLOW_HOLD`] unless
/// the client leaves or the provider stops; then the stream ends (without
/// `response.completed`) and the connection closes.
fn slow(reader: &mut BufReader<TcpStream>, w: &mut TcpStream, shared: &Shared) -> io::Result<bool> {
    w.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    w.flush()?;
    let stream = reader.get_mut();
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let started = Instant::now();
    let mut scratch = [0u8; 1024];
    while started.elapsed() < SLOW_HOLD && !shared.stop.load(Ordering::SeqCst) {
        match stream.read(&mut scratch) {
            Ok(0) => return Ok(false), // the client went away
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return Ok(false),
        }
    }
    let _ = w.write_all(b"0\r\n\r\n");
    Ok(false)
}

fn is_user_message(item: &Value) -> bool {
    matches!(item_type(item), None | Some("message"))
        && item.get("role").and_then(Value::as_str) == Some("user")
}

fn item_type(item: &Value) -> Option<&str> {
    item.get("type").and_then(Value::as_str)
}

/// The text of a message: a string `content`, or its text parts joined.
fn message_text(item: &Value) -> String {
    match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        _ => String::new(),
    }
}

fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    })
}

fn created(resp_id: &str) -> Value {
    json!({
        "type": "response.created",
        "response": {"id": resp_id, "object": "response", "status": "in_progress", "model": "mock-model"},
    })
}

fn completed(resp_id: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "type": "response.completed",
        "response": {
            "id": resp_id,
            "object": "response",
            "status": "completed",
            "model": "mock-model",
            "output": output,
            "usage": usage,
        },
    })
}

fn message_events(resp_id: &str, item_id: &str, text: &str, input_tokens: u64) -> Vec<Value> {
    let output_tokens = text.split_whitespace().count().max(1) as u64;
    let done = json!({
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    });
    vec![
        created(resp_id),
        json!({
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []},
        }),
        json!({
            "type": "response.output_text.delta",
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        }),
        json!({"type": "response.output_item.done", "output_index": 0, "item": done.clone()}),
        completed(resp_id, vec![done], usage(input_tokens, output_tokens)),
    ]
}

fn function_call_events(resp_id: &str, item_id: &str, call_id: &str, input_tokens: u64) -> Vec<Value> {
    let item = json!({
        "type": "function_call",
        "id": item_id,
        "status": "completed",
        "call_id": call_id,
        "name": "exec_command",
        "arguments": json!({"cmd": "echo hi"}).to_string(),
    });
    vec![
        created(resp_id),
        json!({"type": "response.output_item.done", "output_index": 0, "item": item.clone()}),
        completed(resp_id, vec![item], usage(input_tokens, 12)),
    ]
}

fn error_body(message: &str, kind: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": kind}}).to_string()
}

fn write_response(
    w: &mut TcpStream,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncache-control: no-cache\r\n\
         content-length: {}\r\nconnection: {connection}\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}
