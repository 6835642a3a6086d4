//! The rmcp `ServerHandler`: advertises the tools and dispatches calls.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::plugins::PluginSet;

/// The MCP face of Warden.
#[derive(Clone)]
pub struct WardenServer {
    plugins: Arc<PluginSet>,
    tools: Arc<Vec<Tool>>,
}

impl WardenServer {
    pub fn new(plugins: Arc<PluginSet>) -> Self {
        Self { plugins, tools: Arc::new(tools()) }
    }
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("tool schemas are JSON objects"),
    }
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "ping",
            "Check that Warden is running; reports the plugin in effect for each role.",
            schema(json!({ "type": "object", "properties": {}, "additionalProperties": false })),
        )
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": {
                "status": { "type": "string" },
                "plugins": { "type": "object", "additionalProperties": { "type": "string" } }
            },
            "required": ["status", "plugins"]
        }))),
    ]
}

impl ServerHandler for WardenServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions("Warden runs coding-agent turns in durable, resumable sessions.")
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
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match request.name.as_ref() {
            "ping" => {
                let p = &self.plugins;
                let plugins: serde_json::Map<String, Value> = [
                    (&p.storage.info, "storage-backend"),
                    (&p.policy.info, "session-policy"),
                    (&p.context.info, "context-builder"),
                    (&p.agent.info, "agent-driver"),
                ]
                .into_iter()
                .map(|(info, role)| (role.to_string(), Value::String(info.name.clone())))
                .collect();
                let structured = json!({ "status": "pong", "plugins": plugins });
                let mut result = CallToolResult::success(vec![ContentBlock::text("pong")]);
                result.structured_content = Some(structured);
                Ok(result.into())
            }
            other => Err(McpError::invalid_params(
                format!("unknown tool `{other}`; call tools/list for the available tools"),
                Some(json!({ "tool": other })),
            )),
        }
    }
}

/// Serve MCP on stdin/stdout until the client disconnects.
pub async fn serve_stdio(server: WardenServer) -> anyhow::Result<()> {
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
