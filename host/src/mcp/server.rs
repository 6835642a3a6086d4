//! The rmcp `ServerHandler`: reads tool arguments, runs the session logic on
//! a blocking thread, forwards progress (bounded, see [`super::progress`]),
//! passes the client's cancellation to every plugin call, and shapes every
//! result as text plus `structuredContent`.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use super::args::Args;
use super::tools::{self, APPROVAL_POLICIES, CODEX_ARGS, REASONING_EFFORTS, REPLY_ARGS, SANDBOXES};
use crate::commands::sessions::summary_json;
use crate::runtime::control::CancelFlag;
use crate::runtime::plugin::CallOptions;
use crate::sessions::{Sessions, Target, TurnError, TurnRequest, TurnResult, TurnSettings};

/// How often expired sessions are swept while serving.
const EXPIRY_SWEEP: Duration = Duration::from_secs(600);

/// The MCP face of Warden.
#[derive(Clone)]
pub struct WardenServer {
    sessions: Arc<Sessions>,
    tools: Arc<Vec<Tool>>,
}

impl WardenServer {
    pub fn new(sessions: Arc<Sessions>) -> Self {
        Self { sessions, tools: Arc::new(tools::all()) }
    }

    async fn turn(&self, request: TurnRequest, context: RequestContext<RoleServer>) -> CallToolResult {
        let (progress, forwarding) = match context.meta.get_progress_token() {
            Some(token) => {
                let (sink, queue, forwarder) = super::progress::forward(context.peer.clone(), token);
                (Some(sink), Some((queue, forwarder)))
            }
            None => (None, None),
        };
        let call = CallOptions { timeout: None, cancel: CancelFlag::new(), progress };
        let joined =
            self.blocking(&context, call, move |sessions, call| sessions.run_turn(request, call)).await;
        if let Some((queue, forwarder)) = forwarding {
            queue.close();
            if let Err(e) = forwarder.await {
                tracing::warn!(error = %e, "the progress forwarder failed");
            }
        }
        match joined {
            Ok(outcome) => turn_result(outcome),
            Err(e) => error_result("internal", &e.message, None),
        }
    }

    /// Run `op` on a blocking thread; the client's cancellation of the request
    /// raises `call`'s cancel flag, which every plugin call of `op` honours.
    async fn blocking<T: Send + 'static>(
        &self,
        context: &RequestContext<RoleServer>,
        call: CallOptions,
        op: impl FnOnce(&Sessions, CallOptions) -> Result<T, TurnError> + Send + 'static,
    ) -> Result<Result<T, TurnError>, McpError> {
        let sessions = self.sessions.clone();
        let cancel = call.cancel.clone();
        let mut worker = tokio::task::spawn_blocking(move || op(&sessions, call));
        let joined = tokio::select! {
            joined = &mut worker => joined,
            _ = context.ct.cancelled() => {
                tracing::info!("the client cancelled a call; stopping its plugin calls");
                cancel.cancel();
                let ended = worker.await;
                tracing::info!("the cancelled call has ended");
                ended
            }
        };
        joined.map_err(|e| McpError::internal_error(format!("worker thread failed: {e}"), None))
    }
}

fn codex_request(args: &Args) -> Result<TurnRequest, McpError> {
    let target = match args.string("sessionId")? {
        Some(id) => Target::Session { id, create: true },
        None => Target::New,
    };
    Ok(TurnRequest {
        target,
        prompt: args.required_string("prompt")?,
        reset: args.bool("resetSession")?,
        settings: TurnSettings {
            model: args.string("model")?,
            reasoning_effort: args.choice("reasoningEffort", REASONING_EFFORTS)?,
            sandbox: args.choice("sandbox", SANDBOXES)?,
            cwd: args.either(&["cwd", "workingDirectory"])?,
            approval_policy: args.choice("approval-policy", APPROVAL_POLICIES)?,
            config: args.config_overrides("config")?,
            base_instructions: args.string("base-instructions")?,
            developer_instructions: args.string("developer-instructions")?,
        },
    })
}

fn reply_request(args: &Args) -> Result<TurnRequest, McpError> {
    let thread = args.either(&["threadId", "conversationId"])?;
    let target = match (thread, args.string("sessionId")?) {
        (Some(thread), None) => Target::Thread(thread),
        (None, Some(id)) => Target::Session { id, create: false },
        (Some(_), Some(_)) => {
            return Err(super::args::invalid(
                "codex-reply",
                "sessionId",
                "cannot be given with threadId; give one".into(),
            ));
        }
        (None, None) => {
            return Err(super::args::invalid("codex-reply", "threadId", "is required (or sessionId)".into()));
        }
    };
    Ok(TurnRequest {
        target,
        prompt: args.required_string("prompt")?,
        reset: false,
        settings: TurnSettings::default(),
    })
}

fn turn_result(outcome: Result<TurnResult, TurnError>) -> CallToolResult {
    let turn = match outcome {
        Ok(turn) => turn,
        Err(error) => return error_result(kind_of(&error), &error.to_string(), None),
    };
    let mut structured = json!({
        "threadId": turn.thread_id,
        "sessionId": turn.session_id,
        "content": turn.content,
        "truncated": turn.truncated_from.is_some(),
        "warnings": turn.warnings,
    });
    if let Some(path) = &turn.transcript {
        structured["transcript"] = json!(path.display().to_string());
    }
    if let Some(u) = &turn.usage {
        structured["usage"] = json!({
            "inputTokens": u.input_tokens,
            "cachedInputTokens": u.cached_input_tokens,
            "outputTokens": u.output_tokens,
            "reasoningOutputTokens": u.reasoning_output_tokens,
        });
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(turn.content)]);
    result.structured_content = Some(structured);
    result
}

/// The `error.kind` a client sees for a failed call.
fn kind_of(error: &TurnError) -> &'static str {
    match error {
        TurnError::Invalid(_) => "invalid",
        TurnError::NotFound(_) => "not-found",
        TurnError::Busy(_) => "busy",
        TurnError::Cancelled => "cancelled",
        TurnError::Timeout(_) => "timeout",
        TurnError::Conflict(_) => "conflict",
        TurnError::Agent(_) => "agent",
        TurnError::Plugin(_) => "plugin",
    }
}

fn error_result(kind: &str, message: &str, extra: Option<Value>) -> CallToolResult {
    let mut structured = json!({ "content": message, "error": { "kind": kind, "message": message } });
    if let (Some(Value::Object(extra)), Value::Object(target)) = (extra, &mut structured) {
        target.extend(extra);
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(message.to_string())]);
    result.structured_content = Some(structured);
    result
}

fn structured(value: Value, text: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

impl ServerHandler for WardenServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Warden runs Codex turns in durable sessions. Use `codex` to start (optionally with your own \
                 sessionId) and `codex-reply` with the returned threadId to continue; both survive restarts.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.as_ref();
        let result = match name {
            "codex" => {
                let args = Args::new(name, request.arguments, CODEX_ARGS)?;
                self.turn(codex_request(&args)?, context).await
            }
            "codex-reply" => {
                let args = Args::new(name, request.arguments, REPLY_ARGS)?;
                self.turn(reply_request(&args)?, context).await
            }
            "listSessions" => {
                Args::new(name, request.arguments, &[])?;
                match self.blocking(&context, CallOptions::default(), |s, call| s.list(&call)).await? {
                    Ok(list) => {
                        let items: Vec<Value> = list.iter().map(summary_json).collect();
                        let text = serde_json::to_string_pretty(&items).expect("JSON values serialise");
                        structured(json!({ "sessions": items }), text)
                    }
                    Err(e) => error_result(kind_of(&e), &e.to_string(), None),
                }
            }
            "endSession" => {
                let args = Args::new(name, request.arguments, &["sessionId"])?;
                let id = args.required_string("sessionId")?;
                let key = id.clone();
                match self
                    .blocking(&context, CallOptions::default(), move |s, call| s.end(&key, &call))
                    .await?
                {
                    Ok(removed) => {
                        let text = if removed {
                            format!("session {id:?} removed")
                        } else {
                            format!("no session {id:?}")
                        };
                        structured(json!({ "sessionId": id, "removed": removed }), text)
                    }
                    Err(e) => error_result(
                        kind_of(&e),
                        &e.to_string(),
                        Some(json!({ "sessionId": id, "removed": false })),
                    ),
                }
            }
            "ping" => {
                Args::new(name, request.arguments, &[])?;
                let p = self.sessions.plugins();
                let plugins: serde_json::Map<String, Value> =
                    [&p.storage.info, &p.policy.info, &p.context.info, &p.agent.info]
                        .into_iter()
                        .map(|info| (info.role.to_string(), Value::String(info.name.clone())))
                        .collect();
                structured(json!({ "status": "pong", "plugins": plugins }), "pong".into())
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown tool `{other}`; call tools/list for the available tools"),
                    Some(json!({ "tool": other })),
                ));
            }
        };
        Ok(result.into())
    }
}

/// Serve MCP on stdin/stdout until the client disconnects, sweeping expired
/// sessions periodically.
pub async fn serve_stdio(server: WardenServer) -> anyhow::Result<()> {
    let sessions = server.sessions.clone();
    let sweeper = tokio::spawn(async move {
        let mut interval = tokio::time::interval(EXPIRY_SWEEP);
        loop {
            interval.tick().await;
            let sessions = sessions.clone();
            match tokio::task::spawn_blocking(move || sessions.expire(&CallOptions::default())).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(expired = n, "removed expired sessions"),
                Ok(Err(e)) => tracing::error!(error = %e, "sweeping expired sessions failed"),
                Err(e) => tracing::error!(error = %e, "the expiry sweep's thread failed"),
            }
        }
    });
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    sweeper.abort();
    Ok(())
}
