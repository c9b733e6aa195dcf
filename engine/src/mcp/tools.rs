//! The MCP tools: `remember`, `recall`, `search_memory`, `forget_user`, `forget_turn`.
//!
//! Each tool's arguments are a struct whose JSON schema (derived) is its input schema, so
//! the schema a client sees is what the tool parses. Arguments that do not parse, and
//! every refused request, come back as a tool error (`isError: true`) whose text and
//! `structuredContent.error` carry the same code and message as the HTTP API's errors.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use mnemo_storage::clock::SharedClock;
use mnemo_storage::limits::InputLimits;
use mnemo_storage::model::{Scope, TenantId, UserId};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::ServerConfig as HttpLimits;
use crate::http::api::{ContextIn, ContextOut, HitOut, RoleDto, SearchParams, TurnIn};
use crate::http::error::ApiError;
use crate::http::{body, context, forget, search, turns};
use crate::Engine;

/// The names of the tools, in the order `tools/list` gives them.
pub const TOOL_NAMES: [&str; 5] = [
    "remember",
    "recall",
    "search_memory",
    "forget_user",
    "forget_turn",
];

/// The deadline of a `recall` that names none, in milliseconds. Longer than HTTP's
/// default (`[actors.context] default_deadline_ms`, 50): an agent's tool call has seconds
/// to spare, and a complete answer is worth more to it than 50 ms; a healthy engine
/// answers in a few milliseconds either way.
const RECALL_DEADLINE_MS: u64 = 1000;

/// Arguments of `remember`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RememberArgs {
    /// The user this memory belongs to (your application's id for them).
    user_id: String,
    /// What was said: one conversation turn.
    content: String,
    /// The conversation session (default: the UTC date of `event_time`, or of now, as
    /// YYYY-MM-DD).
    #[serde(default)]
    session_id: Option<String>,
    /// Who spoke: `user` (the default), `assistant` or `system`.
    #[serde(default)]
    role: Option<RoleDto>,
    /// The speaker's name, when the conversation has several people.
    #[serde(default)]
    speaker: Option<String>,
    /// When it was said, RFC 3339 (default: now). Resolves "yesterday" and the like.
    #[serde(default)]
    event_time: Option<DateTime<Utc>>,
    /// Any JSON object to keep with the turn.
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
    /// An idempotency key: remembering the same external id again stores nothing new.
    #[serde(default)]
    external_id: Option<String>,
}

/// Arguments of `recall`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RecallArgs {
    /// The user whose memories to recall.
    user_id: String,
    /// What the next prompt is about: the user's message, or a question.
    query: String,
    /// The current session: its latest turns come first in the context.
    #[serde(default)]
    session_id: Option<String>,
    /// Most relevant memories to include.
    #[serde(default)]
    max_items: Option<usize>,
    /// Most recent turns of the session to include.
    #[serde(default)]
    max_recent: Option<usize>,
    /// Most tokens the rendered context may take.
    #[serde(default)]
    token_budget: Option<usize>,
    /// Milliseconds to wait for the slower memory tiers (default 1000; a healthy engine
    /// answers in a few).
    #[serde(default)]
    deadline_ms: Option<u64>,
}

/// Arguments of `search_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchMemoryArgs {
    /// The user whose memories to search.
    user_id: String,
    /// Words to search for (full-text, BM25).
    query: String,
    /// Most hits to return (default 10).
    #[serde(default)]
    limit: Option<usize>,
    /// Hits to skip, for paging.
    #[serde(default)]
    offset: Option<usize>,
    /// Only memories from this time on, RFC 3339.
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    /// Only memories before this time, RFC 3339.
    #[serde(default)]
    to: Option<DateTime<Utc>>,
}

/// Arguments of `forget_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ForgetUserArgs {
    /// The user to forget, in every memory tier.
    user_id: String,
}

/// Arguments of `forget_turn`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ForgetTurnArgs {
    /// The user the turn belongs to.
    user_id: String,
    /// The turn's id, as `remember` or `search_memory` gave it.
    turn_id: i64,
}

/// What a tool answers: text for the model, and the same answer as JSON.
struct Answer {
    text: String,
    structured: Value,
}

impl Answer {
    fn new(text: impl Into<String>, structured: impl Serialize) -> Result<Self, ApiError> {
        let structured = serde_json::to_value(structured).map_err(|e| {
            tracing::error!(error = %e, "cannot encode an MCP tool's answer");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred; the server's log has the details",
            )
        })?;
        Ok(Self {
            text: text.into(),
            structured,
        })
    }
}

/// The limits a request is checked against, as over HTTP.
#[derive(Debug)]
struct Limits {
    /// `[server]`: query size, page sizes, deadlines.
    server: HttpLimits,
    /// `[storage.limits]`: ids, content, metadata.
    input: InputLimits,
}

/// The memory tools of one tenant, on one engine.
#[derive(Debug, Clone)]
pub struct MemoryTools {
    engine: Engine,
    tenant: TenantId,
    limits: Arc<Limits>,
    clock: SharedClock,
}

impl MemoryTools {
    /// Tools acting for `tenant` on `engine`, with the request limits of the engine's
    /// `[server]` and `[storage.limits]` configuration; `clock` dates a `remember`
    /// without session or event time.
    pub fn new(engine: Engine, tenant: TenantId, clock: SharedClock) -> Self {
        let config = engine.config();
        let limits = Arc::new(Limits {
            server: config.server.clone(),
            input: config.storage.limits.clone(),
        });
        Self {
            engine,
            tenant,
            limits,
            clock,
        }
    }

    /// Every tool with its description, input schema and hints.
    pub fn tools() -> Vec<Tool> {
        let hints = |read_only, destructive, idempotent| {
            ToolAnnotations::from_raw(
                None,
                Some(read_only),
                Some(destructive),
                Some(idempotent),
                Some(false),
            )
        };
        vec![
            Tool::new(
                "remember",
                "Store one conversation turn in a user's long-term memory. It is durable when \
                 this returns, and searchable and recallable a few milliseconds later.",
                schema_for_type::<RememberArgs>(),
            )
            .with_annotations(hints(false, false, false)),
            Tool::new(
                "recall",
                "Assemble what to remember about a user for the next prompt: the session's \
                 recent turns, the most relevant memories, people and things they mentioned, \
                 and their mood. Returns the rendered context as text and the structured answer.",
                schema_for_type::<RecallArgs>(),
            )
            .with_annotations(hints(true, false, true)),
            Tool::new(
                "search_memory",
                "Full-text search over a user's remembered turns and session summaries, best \
                 match first, with ids, sessions and times.",
                schema_for_type::<SearchMemoryArgs>(),
            )
            .with_annotations(hints(true, false, true)),
            Tool::new(
                "forget_user",
                "Forget everything remembered about a user, in every memory tier.",
                schema_for_type::<ForgetUserArgs>(),
            )
            .with_annotations(hints(false, true, true)),
            Tool::new(
                "forget_turn",
                "Forget one remembered turn of a user, by its id.",
                schema_for_type::<ForgetTurnArgs>(),
            )
            .with_annotations(hints(false, true, true)),
        ]
    }

    /// Runs tool `name` with `arguments`; `None` for a tool that does not exist.
    async fn call(&self, name: &str, arguments: JsonObject) -> Option<Result<Answer, ApiError>> {
        let answer = match name {
            "remember" => self.remember(arguments).await,
            "recall" => self.recall(arguments).await,
            "search_memory" => self.search_memory(arguments).await,
            "forget_user" => self.forget_user(arguments).await,
            "forget_turn" => self.forget_turn(arguments).await,
            _ => return None,
        };
        Some(answer)
    }

    fn scope(&self, user_id: String) -> Result<Scope, ApiError> {
        Ok(Scope::new(self.tenant.clone(), UserId::new(user_id)?))
    }

    async fn remember(&self, arguments: JsonObject) -> Result<Answer, ApiError> {
        let args: RememberArgs = parse(arguments)?;
        let session_id = args.session_id.unwrap_or_else(|| {
            let when = args.event_time.unwrap_or_else(|| self.clock.now());
            when.format("%Y-%m-%d").to_string()
        });
        let turn = TurnIn {
            user_id: args.user_id,
            session_id,
            role: args.role.unwrap_or(RoleDto::User),
            content: args.content,
            speaker: args.speaker,
            event_time: args.event_time,
            metadata: args.metadata,
            external_id: args.external_id,
        };
        let new = turns::new_turn(&self.tenant, turn, &self.limits.input)?;
        let stored = self.engine.store(new).await?;
        let turn = &stored.turn;
        let text = if stored.created {
            format!(
                "Remembered as turn {} of user {} (session {}).",
                turn.id.0,
                turn.scope.user.as_str(),
                turn.session_id.as_str()
            )
        } else {
            format!(
                "Already remembered as turn {} (external id {}); nothing new stored.",
                turn.id.0,
                turn.external_id.as_str()
            )
        };
        Answer::new(
            text,
            json!({
                "id": turn.id.0,
                "external_id": turn.external_id.as_str(),
                "session_id": turn.session_id.as_str(),
                "created": stored.created,
            }),
        )
    }

    async fn recall(&self, arguments: JsonObject) -> Result<Answer, ApiError> {
        let args: RecallArgs = parse(arguments)?;
        let body = ContextIn {
            user_id: args.user_id,
            session_id: args.session_id,
            query: args.query,
            max_recent: args.max_recent,
            max_items: args.max_items,
            token_budget: args.token_budget,
            deadline_ms: Some(
                args.deadline_ms
                    .unwrap_or(RECALL_DEADLINE_MS.min(self.limits.server.max_deadline_ms)),
            ),
        };
        let request = context::context_request(self.tenant.clone(), body, &self.limits.server)?;
        let answer: ContextOut = self.engine.context(request).await?.into();
        let text = if answer.prompt.trim().is_empty() {
            "Nothing is remembered about this user that bears on the query.".to_owned()
        } else {
            answer.prompt.clone()
        };
        Answer::new(text, answer)
    }

    async fn search_memory(&self, arguments: JsonObject) -> Result<Answer, ApiError> {
        let args: SearchMemoryArgs = parse(arguments)?;
        let params = SearchParams {
            user_id: args.user_id,
            q: args.query,
            limit: args.limit,
            offset: args.offset,
            from: args.from,
            to: args.to,
        };
        let (scope, query) =
            search::search_query(self.tenant.clone(), params, &self.limits.server)?;
        let hits: Vec<HitOut> = self
            .engine
            .search(&scope, query)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        let text = if hits.is_empty() {
            "No memory matches.".to_owned()
        } else {
            hits.iter()
                .map(|h| {
                    format!(
                        "[{} {}] session {}, {}: {}",
                        h.kind,
                        h.id,
                        h.session_id,
                        h.event_time.to_rfc3339(),
                        h.text
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        Answer::new(text, json!({ "hits": hits }))
    }

    async fn forget_user(&self, arguments: JsonObject) -> Result<Answer, ApiError> {
        let args: ForgetUserArgs = parse(arguments)?;
        let scope = self.scope(args.user_id)?;
        let report = crate::http::api::ForgetOut::from(self.engine.forget_user(&scope).await?);
        let text = format!(
            "Forgot user {}: {} turns and {} summaries removed.",
            scope.user.as_str(),
            report.turns,
            report.summaries
        );
        Answer::new(text, report)
    }

    async fn forget_turn(&self, arguments: JsonObject) -> Result<Answer, ApiError> {
        let args: ForgetTurnArgs = parse(arguments)?;
        let scope = self.scope(args.user_id)?;
        let report = forget::forget_one_turn(&self.engine, &scope, args.turn_id).await?;
        let text = format!(
            "Forgot turn {} of user {}.",
            args.turn_id,
            scope.user.as_str()
        );
        Answer::new(text, report)
    }
}

/// A tool's arguments, or the error that says what is wrong with them.
fn parse<T: DeserializeOwned>(arguments: JsonObject) -> Result<T, ApiError> {
    body::from_value(Value::Object(arguments))
        .map_err(|e| ApiError::invalid_request(format!("invalid arguments: {}", e.message)))
}

/// The MCP result of a tool's answer or error.
fn tool_result(answer: Result<Answer, ApiError>) -> CallToolResult {
    match answer {
        Ok(answer) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(answer.text)]);
            result.structured_content = Some(answer.structured);
            result
        }
        Err(e) => {
            let mut result = CallToolResult::error(vec![ContentBlock::text(format!(
                "{}: {}",
                e.code, e.message
            ))]);
            result.structured_content = Some(json!({
                "error": { "code": e.code, "message": e.message, "status": e.status.as_u16() }
            }));
            result
        }
    }
}

impl ServerHandler for MemoryTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("mnemo", env!("CARGO_PKG_VERSION")).with_title("Mnemo memory"),
            )
            .with_instructions(
                "Long-term memory of conversations, per user. Call `remember` with each turn \
                 worth keeping (the user's messages, your answers); call `recall` with the \
                 user's new message to get what you should know about them before answering; \
                 `search_memory` finds specific past turns; `forget_user` and `forget_turn` \
                 erase on request.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        Self::tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.clone();
        let arguments = request.arguments.unwrap_or_default();
        tracing::debug!(tool = %name, "MCP tool call");
        match self.call(&name, arguments).await {
            Some(answer) => Ok(tool_result(answer).into()),
            None => Err(ErrorData::invalid_params(
                Cow::Owned(format!(
                    "no tool `{name}`; the tools are {}",
                    TOOL_NAMES.join(", ")
                )),
                None,
            )),
        }
    }
}
