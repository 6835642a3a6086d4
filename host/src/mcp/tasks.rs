//! Durable MCP tasks (the `io.modelcontextprotocol/tasks` extension of the
//! 2026-07-28 protocol). A client of that protocol that declares the
//! extension gets a task for every agent turn: the
//! call answers at once with the task's id, the turn runs on, and
//! `tasks/get` reports it (working with the latest progress message, then
//! completed with the tool's result, failed or cancelled).
//!
//! Records live in the session store through the storage plugin's
//! `task-store`, so a client that reconnects, over stdio or HTTP, and a
//! restarted Warden still answer. While a turn runs, the process running it
//! holds a lock (in the turn-lock directory) named after the task: a record
//! that says `working` with nobody holding its lock belongs to a turn a
//! stopped Warden never finished, and reads as `failed`, saying so.
//!
//! Every record read back is checked: its id, its shape, and its owner (a
//! task of another principal answers exactly as one that does not exist).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, DetailedTask, JsonObject, Task, TaskPayload, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Principal;
use crate::contract::bindings::storage::exports::warden::plugin::task_store::TaskRecord;
use crate::control::CancelFlag;
use crate::runtime::loaded::CallOptions;
use crate::sessions::turn_locks::{HeldLock, NotLocked};
use crate::sessions::{Limits, Sessions, TurnError, now_ms};
use crate::types::PluginError;

/// How often a client is asked to poll.
const POLL_INTERVAL_MS: u64 = 1000;
/// The JSON-RPC error code of a failed turn, in a failed task.
const TURN_FAILED: i64 = -32000;
/// Longest status message kept for a running task.
const MAX_STATUS_BYTES: usize = 1024;

/// The document Warden keeps for a task (the `body` of its record).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    owner: String,
    tool: String,
    status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_message: Option<String>,
    created_ms: u64,
    updated_ms: u64,
    ttl_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<JsonObject>,
}

impl Document {
    /// The document is one Warden could have written.
    fn coherent(&self) -> bool {
        match self.status {
            TaskStatus::Completed => self.result.is_some() && self.error.is_none(),
            TaskStatus::Failed => self.error.is_some() && self.result.is_none(),
            TaskStatus::Working | TaskStatus::Cancelled => self.result.is_none() && self.error.is_none(),
            _ => false,
        }
    }

    fn detailed(&self, id: &str) -> DetailedTask {
        let mut task = Task::new(id, self.status, iso8601(self.created_ms), iso8601(self.updated_ms))
            .with_ttl_ms(self.ttl_ms);
        task.poll_interval_ms = Some(POLL_INTERVAL_MS);
        task.status_message = self.status_message.clone();
        let payload = match self.status {
            TaskStatus::Completed => {
                TaskPayload::Completed { result: self.result.clone().unwrap_or_default() }
            }
            TaskStatus::Failed => TaskPayload::Failed { error: self.error.clone().unwrap_or_default() },
            TaskStatus::Cancelled => TaskPayload::Cancelled,
            _ => TaskPayload::Working,
        };
        DetailedTask::new(task, payload)
    }

    /// The record holding this document; it lives its TTL past the last
    /// change, and a running task's past the longest a turn may take.
    fn record(&self, id: &str, running_for_ms: u64) -> TaskRecord {
        let alive =
            if self.status.is_terminal() { self.ttl_ms } else { self.ttl_ms.saturating_add(running_for_ms) };
        TaskRecord {
            id: id.to_string(),
            expires_ms: self.updated_ms.saturating_add(alive),
            body: serde_json::to_string(self).expect("task documents serialise"),
        }
    }
}

/// A task this process runs.
struct Running {
    owner: Principal,
    cancel: CancelFlag,
    message: Arc<Mutex<Option<String>>>,
    document: Document,
}

/// The tasks of one Warden process, and the store that keeps them.
pub struct Tasks {
    sessions: Arc<Sessions>,
    running: Mutex<HashMap<String, Running>>,
    /// Finished here but not saved (the store refused): kept so this process still answers.
    unsaved: Mutex<HashMap<String, Document>>,
    idle: tokio::sync::Notify,
}

impl Tasks {
    pub fn new(sessions: Arc<Sessions>) -> Self {
        Self {
            sessions,
            running: Mutex::new(HashMap::new()),
            unsaved: Mutex::new(HashMap::new()),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// Whether this Warden offers tasks: its storage plugin keeps them.
    pub fn available(&self) -> bool {
        self.sessions.plugins().storage.has_task_store()
    }

    /// Start `turn` as a task of `principal` (whose `limits` give its
    /// retention) for `tool`; answers once the task's record is stored (so
    /// `tasks/get` finds it).
    pub async fn start<F>(
        self: &Arc<Self>,
        principal: Principal,
        limits: &Limits,
        tool: &str,
        turn: F,
    ) -> Result<Task, McpError>
    where
        F: FnOnce(&Sessions, CallOptions) -> Result<CallToolResult, TurnError> + Send + 'static,
    {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let document = Document {
            owner: principal.as_str().to_string(),
            tool: tool.to_string(),
            status: TaskStatus::Working,
            status_message: None,
            created_ms: now,
            updated_ms: now,
            ttl_ms: limits.task_ttl_ms,
            result: None,
            error: None,
        };
        // The lock first: a record that says `working` is never seen without it.
        let lock = self.lock(&id).await?;
        let record = document.record(&id, self.longest_turn_ms());
        let task = document.detailed(&id).task;
        self.save(record).await.map_err(|e| {
            McpError::internal_error(
                format!("the task could not be stored, so it was not started: {e}"),
                None,
            )
        })?;
        let cancel = CancelFlag::new();
        let message = Arc::new(Mutex::new(None));
        self.running.lock().expect("task lock").insert(
            id.clone(),
            Running {
                owner: principal.clone(),
                cancel: cancel.clone(),
                message: message.clone(),
                document: document.clone(),
            },
        );
        let progress: crate::capabilities::progress::ProgressSink = {
            let message = message.clone();
            Arc::new(move |event| {
                let mut text = format!("{}: {}", event.kind, event.message);
                if text.len() > MAX_STATUS_BYTES {
                    let cut = (0..=MAX_STATUS_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                    text.truncate(cut);
                }
                *message.lock().expect("task message lock") = Some(text);
            })
        };
        let call = CallOptions { timeout: None, cpu_budget: None, cancel, progress: Some(progress) };
        let tasks = self.clone();
        let span = tracing::info_span!("task", principal = %crate::logging::one_line(principal.as_str()), task = %id);
        let task_id = id.clone();
        let sessions = self.sessions.clone();
        tokio::spawn(async move {
            let outcome = tokio::task::spawn_blocking(move || span.in_scope(|| turn(&sessions, call))).await;
            tasks.finish(&task_id, document, outcome).await;
            // Releasing a lock held on the database waits for the server: not on a runtime worker.
            let _ = tokio::task::spawn_blocking(move || drop(lock)).await;
        });
        Ok(task)
    }

    /// Record how a task's turn ended, and forget it as running.
    async fn finish(
        &self,
        id: &str,
        mut document: Document,
        outcome: Result<Result<CallToolResult, TurnError>, tokio::task::JoinError>,
    ) {
        document.updated_ms = now_ms();
        match outcome {
            Ok(Ok(result)) if result.is_error != Some(true) => {
                document.status = TaskStatus::Completed;
                document.result = Some(object(&result));
            }
            Ok(Ok(result)) => {
                document.status = TaskStatus::Failed;
                let message = result
                    .content
                    .first()
                    .and_then(|c| c.as_text())
                    .map(|t| t.text.clone())
                    .unwrap_or_else(|| "the turn failed".into());
                document.error = Some(error_object(&message, result.structured_content.clone()));
            }
            Ok(Err(TurnError::Cancelled)) => document.status = TaskStatus::Cancelled,
            Ok(Err(e)) => {
                document.status = TaskStatus::Failed;
                document.error = Some(error_object(&e.to_string(), None));
            }
            Err(e) => {
                document.status = TaskStatus::Failed;
                document.error = Some(error_object(&format!("the turn's thread failed: {e}"), None));
            }
        }
        tracing::info!(task = %id, status = ?document.status, "task finished");
        if let Err(e) = self.save(document.record(id, 0)).await {
            tracing::error!(task = %id, error = %e, "a finished task could not be stored; only this process can report it");
            self.unsaved.lock().expect("task lock").insert(id.to_string(), document);
        }
        self.running.lock().expect("task lock").remove(id);
        self.idle.notify_waiters();
    }

    /// `tasks/get`: the task as `principal` may see it.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<DetailedTask, McpError> {
        if let Some(running) = self.running.lock().expect("task lock").get(id) {
            if running.owner != *principal {
                return Err(unknown(id));
            }
            let mut document = running.document.clone();
            document.status_message = running.message.lock().expect("task message lock").clone();
            return Ok(document.detailed(id));
        }
        if let Some(document) = self.unsaved.lock().expect("task lock").get(id) {
            return if document.owner == principal.as_str() {
                Ok(document.detailed(id))
            } else {
                Err(unknown(id))
            };
        }
        let Some(mut document) = self.load(id).await? else { return Err(unknown(id)) };
        if document.owner != principal.as_str() {
            return Err(unknown(id));
        }
        if document.status == TaskStatus::Working && !self.runs_elsewhere(id).await? {
            document.status = TaskStatus::Failed;
            document.updated_ms = now_ms();
            document.error = Some(error_object(
                "Warden stopped while this task's turn was running (a restart or a crash); the turn was not \
                 recorded. Run it again.",
                None,
            ));
            if let Err(e) = self.save(document.record(id, 0)).await {
                tracing::warn!(task = %id, error = %e, "could not record an interrupted task as failed");
            }
        }
        Ok(document.detailed(id))
    }

    /// `tasks/cancel`: cancel the turn as `notifications/cancelled` would.
    pub async fn cancel(&self, principal: &Principal, id: &str) -> Result<(), McpError> {
        if let Some(running) = self.running.lock().expect("task lock").get(id) {
            if running.owner != *principal {
                return Err(unknown(id));
            }
            tracing::info!(task = %id, "the client cancelled a task; stopping its turn");
            running.cancel.cancel();
            return Ok(());
        }
        let unsaved = self.unsaved.lock().expect("task lock").get(id).cloned();
        let document = match unsaved {
            Some(document) => document,
            None => self.load(id).await?.ok_or_else(|| unknown(id))?,
        };
        if document.owner != principal.as_str() {
            return Err(unknown(id));
        }
        if document.status == TaskStatus::Working && self.runs_elsewhere(id).await? {
            return Err(McpError::invalid_request(
                format!(
                    "task {id} runs in another Warden process sharing this store; cancel it through that process"
                ),
                None,
            ));
        }
        // Finished (or interrupted): nothing runs to cancel; the status stays what it is.
        Ok(())
    }

    /// Remove expired records now and then.
    pub async fn purge(&self) {
        if !self.available() {
            return;
        }
        let sessions = self.sessions.clone();
        match tokio::task::spawn_blocking(move || {
            sessions.plugins().storage.with(&CallOptions::default()).purge_tasks(now_ms())
        })
        .await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(removed = n, "removed expired task records"),
            Ok(Err(e)) => tracing::warn!(error = %e, "removing expired task records failed"),
            Err(e) => tracing::warn!(error = %e, "the task purge's thread failed"),
        }
    }

    /// Wait until no task of this process is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            let count = self.running.lock().expect("task lock").len();
            if count == 0 {
                return;
            }
            tracing::info!(running = count, "waiting for running tasks to finish and be recorded");
            notified.await;
        }
    }

    pub fn is_idle(&self) -> bool {
        self.running.lock().expect("task lock").is_empty()
    }

    /// Cancel every task this process runs (a shutdown's grace period ended).
    pub fn cancel_all(&self) {
        for running in self.running.lock().expect("task lock").values() {
            running.cancel.cancel();
        }
    }

    fn longest_turn_ms(&self) -> u64 {
        let agents = &self.sessions.plugins().agents;
        agents.iter().map(|a| a.turn_timeout.as_millis() as u64).max().unwrap_or(0)
    }

    /// Hold the lock that says task `id` runs in this process.
    async fn lock(&self, id: &str) -> Result<HeldLock, McpError> {
        let (sessions, task) = (self.sessions.clone(), id.to_string());
        let taken = tokio::task::spawn_blocking(move || sessions.turn_locks().lock_task(&task));
        taken.await.map_err(internal)?.map_err(|e| {
            let why = match e {
                NotLocked::Busy => "another process holds its lock".to_string(),
                NotLocked::Failed(why) => why,
                NotLocked::Cancelled => "the call was cancelled".to_string(),
            };
            McpError::internal_error(format!("cannot lock the new task: {why}"), None)
        })
    }

    /// Whether another process holds task `id`'s lock (runs its turn).
    async fn runs_elsewhere(&self, id: &str) -> Result<bool, McpError> {
        let (sessions, task) = (self.sessions.clone(), id.to_string());
        let known = tokio::task::spawn_blocking(move || sessions.turn_locks().task_runs_elsewhere(&task));
        known.await.map_err(internal)?.map_err(|why| {
            McpError::internal_error(
                format!("cannot tell whether the task's turn still runs: {why}; ask again"),
                None,
            )
        })
    }

    async fn save(&self, record: TaskRecord) -> Result<(), String> {
        let sessions = self.sessions.clone();
        tokio::task::spawn_blocking(move || {
            sessions
                .plugins()
                .storage
                .with(&CallOptions::default())
                .save_task(&record)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The stored document of task `id`, checked; `None` if there is none.
    async fn load(&self, id: &str) -> Result<Option<Document>, McpError> {
        if !well_formed(id) {
            return Ok(None);
        }
        let sessions = self.sessions.clone();
        let wanted = id.to_string();
        let loaded = tokio::task::spawn_blocking(move || {
            sessions.plugins().storage.with(&CallOptions::default()).load_task(&wanted, now_ms())
        })
        .await
        .map_err(internal)?;
        let plugin = &self.sessions.plugins().storage.info.name;
        let record = match loaded {
            Ok(record) => record,
            Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => return Ok(None),
            Err(e) => return Err(McpError::internal_error(format!("reading task {id}: {e}"), None)),
        };
        let document = (record.id == id)
            .then(|| serde_json::from_str::<Document>(&record.body).ok())
            .flatten()
            .filter(Document::coherent)
            .ok_or_else(|| {
                tracing::warn!(task = %id, plugin = %plugin, "the storage plugin returned a task record that is not Warden's");
                McpError::internal_error(
                    format!(
                        "storage plugin `{plugin}` returned a record for task {id} that is not one Warden wrote; \
                         the task cannot be shown"
                    ),
                    None,
                )
            })?;
        Ok(Some(document))
    }
}

/// A task id as Warden makes them (and as the contract bounds them).
fn well_formed(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn unknown(id: &str) -> McpError {
    McpError::invalid_params(format!("unknown task: {id}"), None)
}

fn internal(e: tokio::task::JoinError) -> McpError {
    McpError::internal_error(format!("worker thread failed: {e}"), None)
}

fn object(result: &CallToolResult) -> JsonObject {
    match serde_json::to_value(result) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => JsonObject::new(),
    }
}

fn error_object(message: &str, data: Option<serde_json::Value>) -> JsonObject {
    let mut error = json!({ "code": TURN_FAILED, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    match error {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

fn iso8601(ms: u64) -> String {
    epoch_time::format_rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(status: TaskStatus) -> Document {
        Document {
            owner: "alice".into(),
            tool: "codex".into(),
            status,
            status_message: None,
            created_ms: 1_000,
            updated_ms: 2_000,
            ttl_ms: 60_000,
            result: None,
            error: None,
        }
    }

    #[test]
    fn records_live_their_ttl_past_the_last_change_and_a_running_one_past_its_turn() {
        let working = document(TaskStatus::Working);
        assert_eq!(working.record("t", 30_000).expires_ms, 2_000 + 60_000 + 30_000);
        let mut done = document(TaskStatus::Completed);
        done.result = Some(JsonObject::new());
        assert_eq!(done.record("t", 30_000).expires_ms, 62_000);
        let back: Document = serde_json::from_str(&done.record("t", 0).body).unwrap();
        assert_eq!(back, done);
    }

    #[test]
    fn only_coherent_documents_are_accepted() {
        assert!(document(TaskStatus::Working).coherent());
        assert!(!document(TaskStatus::Completed).coherent(), "completed without a result");
        assert!(!document(TaskStatus::Failed).coherent(), "failed without an error");
        let mut both = document(TaskStatus::Working);
        both.result = Some(JsonObject::new());
        assert!(!both.coherent());
        assert!(serde_json::from_str::<Document>(r#"{"owner":"a"}"#).is_err());
    }

    #[test]
    fn task_ids_are_checked_before_they_reach_a_plugin() {
        assert!(well_formed("0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f"));
        for bad in ["", "../x", "a/b", "a b", &"x".repeat(129)] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }
}
