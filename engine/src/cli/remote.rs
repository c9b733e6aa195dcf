//! `mnemo context` and `mnemo search` against a running server (`--url` and `--key`)
//! instead of the local data directory. Plain HTTP: put TLS in front of the server with
//! a proxy, as its endpoint is meant for a private network.

use std::io::Write;

use serde_json::{json, Value};

use super::error::CliError;
use super::query::{ContextArgs, SearchArgs};

/// Where the server is and the key to use (the key decides the tenant).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Base URL of a running `mnemo serve` (e.g. http://127.0.0.1:8080); without it the
    /// local data directory is used.
    #[arg(long)]
    pub url: Option<String>,
    /// API key for `--url` (its tenant is used; `--tenant` is ignored).
    #[arg(long, requires = "url")]
    pub key: Option<String>,
}

fn remote_error(what: &str, err: impl std::fmt::Display) -> CliError {
    CliError::Format {
        format: "server answer",
        message: format!("{what}: {err}"),
    }
}

async fn answer(response: reqwest::Result<reqwest::Response>) -> Result<Value, CliError> {
    let response = response.map_err(|e| remote_error("the server could not be reached", e))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| remote_error("the answer is not JSON", e))?;
    if !status.is_success() {
        let code = body["error"]["code"].as_str().unwrap_or("error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        return Err(remote_error(
            "the server refused the request",
            format!("{status} {code}: {message}"),
        ));
    }
    Ok(body)
}

fn write_json(out: &mut impl Write, value: &Value) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(CliError::io("cannot write the answer"))
}

fn client(key: Option<&str>) -> Result<(reqwest::Client, String), CliError> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| remote_error("cannot build an HTTP client", e))?;
    Ok((client, key.unwrap_or_default().to_owned()))
}

/// Asks the server at `url` for context and prints it like the local command.
pub async fn context(
    url: &str,
    key: Option<&str>,
    args: &ContextArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let (client, key) = client(key)?;
    let mut request = json!({ "user_id": args.user, "query": args.query });
    if let Some(session) = &args.session {
        request["session_id"] = json!(session);
    }
    if let Some(max_items) = args.max_items {
        request["max_items"] = json!(max_items);
    }
    if let Some(budget) = args.token_budget {
        request["token_budget"] = json!(budget);
    }
    let body = answer(
        client
            .post(format!("{}/v1/context", url.trim_end_matches('/')))
            .bearer_auth(key)
            .json(&request)
            .send()
            .await,
    )
    .await?;
    if args.json {
        return write_json(out, &body);
    }
    let mut write = || -> std::io::Result<()> {
        if let Some(degraded) = body["degraded"].as_array().filter(|d| !d.is_empty()) {
            let names: Vec<&str> = degraded.iter().filter_map(Value::as_str).collect();
            writeln!(out, "degraded: {}", names.join(", "))?;
        }
        let items = body["items"].as_array().cloned().unwrap_or_default();
        writeln!(
            out,
            "{} recent turns, {} items, {} tokens",
            body["recent"].as_array().map_or(0, Vec::len),
            items.len(),
            body["tokens"]
        )?;
        for item in &items {
            writeln!(
                out,
                "  {:.3}  {} {}  {}  {}",
                item["score"].as_f64().unwrap_or_default(),
                item["kind"].as_str().unwrap_or_default(),
                item["id"],
                item["event_time"].as_str().unwrap_or_default(),
                item["text"].as_str().unwrap_or_default()
            )?;
        }
        writeln!(out, "\n{}", body["prompt"].as_str().unwrap_or_default())?;
        out.flush()
    };
    write().map_err(CliError::io("cannot write the answer"))
}

/// Searches through the server at `url` and prints the hits like the local command.
pub async fn search(
    url: &str,
    key: Option<&str>,
    args: &SearchArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let (client, key) = client(key)?;
    let limit = args.limit.to_string();
    let body = answer(
        client
            .get(format!("{}/v1/search", url.trim_end_matches('/')))
            .bearer_auth(key)
            .query(&[
                ("user_id", args.user.as_str()),
                ("q", args.query.as_str()),
                ("limit", limit.as_str()),
            ])
            .send()
            .await,
    )
    .await?;
    if args.json {
        return write_json(out, &body);
    }
    let hits = body["hits"].as_array().cloned().unwrap_or_default();
    let mut write = || -> std::io::Result<()> {
        for hit in &hits {
            writeln!(
                out,
                "{:.3}  {} {}  {}  {}  {}",
                hit["score"].as_f64().unwrap_or_default(),
                hit["kind"].as_str().unwrap_or_default(),
                hit["id"],
                hit["session_id"].as_str().unwrap_or_default(),
                hit["event_time"].as_str().unwrap_or_default(),
                hit["text"].as_str().unwrap_or_default()
            )?;
        }
        writeln!(out, "{} hits", hits.len())?;
        out.flush()
    };
    write().map_err(CliError::io("cannot write the hits"))
}
