//! What the load runner drives: an engine in this process, or a `mnemo serve` at a URL
//! through its HTTP API. Both take the same operations, so a run's figures compare.

use std::time::Duration;

use mnemo_engine::storage::model::SessionId;
use mnemo_engine::{ContextRequest, Engine};
use serde_json::{json, Value};

use crate::error::{BenchError, Result};
use crate::workload::GeneratedTurn;

/// The answer of one context request, as the runner counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextOutcome {
    /// The tiers that were late or down and left out (none: a complete answer).
    pub degraded: Vec<String>,
    /// Answered from the per-user cache.
    pub cached: bool,
    /// Milliseconds each tier took (or until it was given up on), by tier; `total` is
    /// the whole assembly.
    pub timings_ms: Vec<(String, f64)>,
}

/// An engine to drive.
#[derive(Debug, Clone)]
pub enum Target {
    /// In this process.
    Local(Engine),
    /// A server, over HTTP.
    Remote(Remote),
}

/// A server's address and key.
#[derive(Debug, Clone)]
pub struct Remote {
    client: reqwest::Client,
    base: String,
    authorization: String,
}

impl Remote {
    /// The server at `base` (e.g. `http://127.0.0.1:8080`), using `key`.
    pub fn new(base: &str, key: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BenchError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {key}"),
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request
            .header("authorization", &self.authorization)
            .send()
            .await
            .map_err(|e| BenchError::Transport(e.to_string()))?;
        let status = response.status();
        let retry_after_secs = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body: Value = response
            .json()
            .await
            .map_err(|e| BenchError::Transport(format!("the answer is not JSON: {e}")))?;
        if !status.is_success() {
            let text = |key: &str| body["error"][key].as_str().unwrap_or_default().to_owned();
            return Err(BenchError::Refused {
                status: status.as_u16(),
                code: text("code"),
                message: text("message"),
                retry_after_secs,
            });
        }
        Ok(body)
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base)).json(body)
    }
}

fn turn_json(turn: &GeneratedTurn) -> Value {
    json!({
        "user_id": turn.user_id,
        "session_id": turn.session_id,
        "role": turn.role.as_str(),
        "speaker": turn.speaker,
        "content": turn.content,
        "event_time": turn.event_time,
        "external_id": turn.external_id,
    })
}

impl Target {
    /// Stores one turn (acknowledged once durable).
    pub async fn store(&self, turn: &GeneratedTurn) -> Result<()> {
        match self {
            Target::Local(engine) => {
                engine.store(turn.to_new_turn()?).await?;
            }
            Target::Remote(remote) => {
                remote
                    .call(remote.post("/v1/turns", &turn_json(turn)))
                    .await?;
            }
        }
        Ok(())
    }

    /// Stores turns all or nothing.
    pub async fn store_batch(&self, turns: &[GeneratedTurn]) -> Result<()> {
        match self {
            Target::Local(engine) => {
                let turns = turns
                    .iter()
                    .map(GeneratedTurn::to_new_turn)
                    .collect::<mnemo_engine::storage::Result<Vec<_>>>()?;
                engine.store_batch_paced(turns).await?;
            }
            Target::Remote(remote) => {
                let body = json!({ "turns": turns.iter().map(turn_json).collect::<Vec<_>>() });
                remote.call(remote.post("/v1/turns", &body)).await?;
            }
        }
        Ok(())
    }

    /// Asks for context for `user`'s next prompt in `session` (the user's tenant is the
    /// workload's locally, the key's on a server).
    pub async fn context(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        query: &str,
    ) -> Result<ContextOutcome> {
        match self {
            Target::Local(engine) => {
                let scope = mnemo_engine::storage::model::Scope::parse(tenant, user)?;
                let session = SessionId::new(session)?;
                let answer = engine
                    .context(ContextRequest::new(scope, Some(session), query))
                    .await?;
                Ok(ContextOutcome {
                    degraded: answer.degraded,
                    cached: answer.cached,
                    timings_ms: answer.timings_ms.into_iter().collect(),
                })
            }
            Target::Remote(remote) => {
                let body = json!({ "user_id": user, "session_id": session, "query": query });
                let answer = remote.call(remote.post("/v1/context", &body)).await?;
                Ok(ContextOutcome {
                    degraded: answer["degraded"]
                        .as_array()
                        .map(|tiers| {
                            tiers
                                .iter()
                                .filter_map(|t| t.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    cached: answer["cached"].as_bool().unwrap_or(false),
                    timings_ms: answer["timings_ms"]
                        .as_object()
                        .map(|tiers| {
                            tiers
                                .iter()
                                .filter_map(|(tier, ms)| Some((tier.clone(), ms.as_f64()?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
        }
    }

    /// Each processor's lag (turns stored but not yet processed), by name.
    pub async fn processor_lag(&self) -> Result<Vec<(String, i64)>> {
        match self {
            Target::Local(engine) => Ok(engine
                .health()
                .processors
                .into_iter()
                .map(|p| (p.name, p.lag))
                .collect()),
            Target::Remote(remote) => {
                let url = format!("{}/readyz", remote.base);
                let ready = remote.call(remote.client.get(url)).await?;
                Ok(ready["processors"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .map(|p| {
                                (
                                    p["name"].as_str().unwrap_or_default().to_owned(),
                                    p["lag"].as_i64().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default())
            }
        }
    }
}
