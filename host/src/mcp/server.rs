//! The rmcp `ServerHandler`: reads tool arguments, runs the session logic on
//! a blocking thread, forwards progress (bounded, see [`super::progress`]),
//! passes the client's cancellation to every plugin call, and answers with
//! the tool's result type (see [`super::outputs`]).

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CreateTaskResult,
    GetTaskParams, GetTaskResult, Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::json;

use super::args::parse;
use super::inputs::{EndSessionArgs, ListSessionsArgs, NoArgs, ReplyArgs, TurnArgs};
use super::outputs::{
    AgentStatus, NoDetail, Pong, SessionEnded, SessionItem, SessionList, failure, structured, turn_failure,
    turn_result,
};
use super::tasks::Tasks;
use super::tools::{Agent, Catalog, Route};
use crate::auth::Principal;
use crate::control::CancelFlag;
use crate::runtime::loaded::CallOptions;
use crate::sessions::{Sessions, TurnError, TurnRequest};

/// How often expired sessions are swept while serving.
const EXPIRY_SWEEP: Duration = Duration::from_secs(600);

/// The MCP face of Warden.
#[derive(Clone)]
pub struct WardenServer {
    sessions: Arc<Sessions>,
    catalog: Arc<Catalog>,
    tasks: Arc<Tasks>,
}

impl WardenServer {
    pub fn new(sessions: Arc<Sessions>) -> Self {
        let agents: Vec<Agent> = sessions.plugins().agent_names().into_iter().map(Agent::named).collect();
        let tasks = Arc::new(Tasks::new(sessions.clone()));
        Self { sessions, catalog: Arc::new(Catalog::new(&agents)), tasks }
    }

    pub fn tasks(&self) -> &Arc<Tasks> {
        &self.tasks
    }

    /// A turn for the request: as a task when this Warden keeps tasks and the
    /// client declared the tasks extension, else answered when it is done.
    async fn turn_or_task(
        &self,
        tool: &str,
        request: TurnRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // The extension exists from the 2026-07-28 protocol on; a client of an
        // earlier version that declares it gets no task (SEP-2663).
        let modern =
            context.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let wants_task = modern && context.client_capabilities().is_some_and(|c| c.supports_tasks());
        if !(wants_task && self.tasks.available()) {
            return Ok(self.turn(request, context).await.into());
        }
        let principal = self.principal(&context);
        let room = {
            let (sessions, principal) = (self.sessions.clone(), principal.clone());
            tokio::task::spawn_blocking(move || sessions.room_for_turn(&principal, &CallOptions::default()))
                .await
                .map_err(|e| McpError::internal_error(format!("worker thread failed: {e}"), None))?
        };
        let limits = match room {
            Ok(limits) => limits,
            Err(e) => return Ok(turn_result(Err(e)).into()),
        };
        let who = principal.clone();
        let task = self
            .tasks
            .start(principal, &limits, tool, move |sessions, call| {
                sessions.run_turn(&who, request, call).map(|turn| turn_result(Ok(turn)))
            })
            .await?;
        tracing::info!(task = %task.task_id, tool, "started a task");
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    /// Who `context`'s request acts for: the principal its bearer token
    /// proved over HTTP, else (stdio, or loopback HTTP without tokens) the local principal.
    fn principal(&self, context: &RequestContext<RoleServer>) -> Principal {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .unwrap_or_else(|| self.sessions.owners().local())
            .clone()
    }

    async fn turn(&self, request: TurnRequest, context: RequestContext<RoleServer>) -> CallToolResult {
        let (progress, forwarding) = match context.meta.get_progress_token() {
            Some(token) => {
                let (sink, queue, forwarder) = super::progress::forward(context.peer.clone(), token);
                (Some(sink), Some((queue, forwarder)))
            }
            None => (None, None),
        };
        let call = CallOptions { timeout: None, cpu_budget: None, cancel: CancelFlag::new(), progress };
        let joined = self
            .blocking(&context, call, move |sessions, principal, call| {
                sessions.run_turn(principal, request, call)
            })
            .await;
        if let Some((queue, forwarder)) = forwarding {
            queue.close();
            if let Err(e) = forwarder.await {
                tracing::warn!(error = %e, "the progress forwarder failed");
            }
        }
        match joined {
            Ok(outcome) => turn_result(outcome),
            Err(e) => turn_failure("internal", &e.message),
        }
    }

    /// Run `op` for the request's principal on a blocking thread, in a span
    /// naming the principal (so every log line of the call, spawns and
    /// refusals included, says whose it is); the client's cancellation of
    /// the request raises `call`'s cancel flag, which every plugin call of `op` honours.
    async fn blocking<T: Send + 'static>(
        &self,
        context: &RequestContext<RoleServer>,
        call: CallOptions,
        op: impl FnOnce(&Sessions, &Principal, CallOptions) -> Result<T, TurnError> + Send + 'static,
    ) -> Result<Result<T, TurnError>, McpError> {
        let sessions = self.sessions.clone();
        let cancel = call.cancel.clone();
        let principal = self.principal(context);
        let span = tracing::info_span!("call", principal = %crate::logging::one_line(principal.as_str()));
        let mut worker =
            tokio::task::spawn_blocking(move || span.in_scope(|| op(&sessions, &principal, call)));
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

impl ServerHandler for WardenServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = if self.tasks.available() {
            ServerCapabilities::builder().enable_tools().enable_tasks().build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Warden runs coding-agent turns (Codex, Claude Code) in durable sessions. Use `codex` or \
                 `claude` to start (optionally with your own sessionId) and `codex-reply` or `claude-reply` with \
                 the returned threadId to continue; both survive restarts. `ping` lists the agents served.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.catalog.tools().to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.as_ref();
        let Some(route) = self.catalog.route(name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool `{name}`; call tools/list for the available tools"),
                Some(json!({ "tool": name })),
            ));
        };
        let arguments = request.arguments;
        let result = match route {
            Route::Turn(agent) => {
                let agent = &self.catalog.agent(agent).name;
                let request = parse::<TurnArgs>(name, arguments)?.into_request(name, agent)?;
                return self.turn_or_task(name, request, context).await;
            }
            Route::Reply(agent) => {
                let agent = &self.catalog.agent(agent).name;
                let request = parse::<ReplyArgs>(name, arguments)?.into_request(name, agent)?;
                return self.turn_or_task(name, request, context).await;
            }
            Route::ListSessions => {
                let served = self.catalog.agent_names();
                let request = parse::<ListSessionsArgs>(name, arguments)?.into_request(name, &served)?;
                match self
                    .blocking(&context, CallOptions::default(), move |s, who, call| {
                        s.list_page(who, &request, &call)
                    })
                    .await?
                {
                    Ok(page) => {
                        let sessions: Vec<SessionItem> =
                            page.sessions.iter().map(|(s, agent)| SessionItem::new(s, Some(agent))).collect();
                        let list = SessionList { sessions, next_cursor: page.next_cursor };
                        let text = serde_json::to_string_pretty(&list).expect("sessions serialise");
                        structured(&list, text)
                    }
                    Err(e) => failure(&e, NoDetail {}),
                }
            }
            Route::EndSession => {
                let id = parse::<EndSessionArgs>(name, arguments)?.session_id(name)?;
                let key = id.clone();
                match self
                    .blocking(&context, CallOptions::default(), move |s, who, call| s.end(who, &key, &call))
                    .await?
                {
                    Ok(removed) => {
                        let text = if removed {
                            format!("session {id:?} removed")
                        } else {
                            format!("no session {id:?}")
                        };
                        structured(&SessionEnded { session_id: id, removed }, text)
                    }
                    Err(e) => failure(&e, SessionEnded { session_id: id, removed: false }),
                }
            }
            Route::Ping => {
                parse::<NoArgs>(name, arguments)?;
                let p = self.sessions.plugins();
                let plugins = [&p.storage.info, &p.policy.info, &p.context.info, &p.agents[0].plugin.info]
                    .into_iter()
                    .map(|info| (info.role.to_string(), info.name.clone()))
                    .collect();
                let agents = p
                    .agents
                    .iter()
                    .map(|agent| {
                        let problem = agent.unavailable();
                        AgentStatus {
                            name: agent.name.clone(),
                            plugin: agent.plugin.info.name.clone(),
                            available: problem.is_none(),
                            problem,
                        }
                    })
                    .collect();
                structured(&Pong { status: "pong".into(), plugins, agents }, "pong".into())
            }
        };
        Ok(result.into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let task = self.tasks.get(&self.principal(&context), &request.task_id).await?;
        Ok(GetTaskResult::new(task))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.tasks.cancel(&self.principal(&context), &request.task_id).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Err(McpError::invalid_params(
            format!("task {} asks for no input: Warden's tasks never do", request.task_id),
            None,
        ))
    }
}

/// Remove expired sessions and task records now and then, until the task is aborted.
pub fn spawn_expiry_sweeper(sessions: Arc<Sessions>, tasks: Arc<Tasks>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(EXPIRY_SWEEP);
        loop {
            interval.tick().await;
            tasks.purge().await;
            let sessions = sessions.clone();
            match tokio::task::spawn_blocking(move || sessions.expire(&CallOptions::default())).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(expired = n, "removed expired sessions"),
                Ok(Err(e)) => tracing::error!(error = %e, "sweeping expired sessions failed"),
                Err(e) => tracing::error!(error = %e, "the expiry sweep's thread failed"),
            }
        }
    })
}

/// Serve MCP on stdin/stdout until the client disconnects, sweeping expired
/// sessions periodically. Tasks still running when the client goes are
/// finished and recorded before Warden exits, so a client that reconnects
/// (starting another Warden) gets their results from the store.
pub async fn serve_stdio(server: WardenServer) -> anyhow::Result<()> {
    let sweeper = spawn_expiry_sweeper(server.sessions.clone(), server.tasks.clone());
    let tasks = server.tasks.clone();
    let running = server.serve(super::stdio::transport()).await?;
    running.waiting().await?;
    tasks.wait_idle().await;
    sweeper.abort();
    Ok(())
}
