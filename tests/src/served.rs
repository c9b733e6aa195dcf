//! An engine and the HTTP service in front of it, on port 0, with API keys for the
//! tenants `acme` and `globex`, driven with a real HTTP client.

use mnemo_engine::http::{self, key_hash};
use mnemo_engine::{Config, Engine};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{within, Harness};

/// The key of tenant `acme`.
pub const ACME_KEY: &str = "acme-secret-key-for-tests";
/// The key of tenant `globex`.
pub const GLOBEX_KEY: &str = "globex-secret-key-for-tests";

/// An engine and the HTTP service in front of it.
pub struct Served {
    /// The engine's harness (its directory, clock, configuration).
    pub harness: Harness,
    /// The engine.
    pub engine: Engine,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An HTTP client.
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), http::ServeError>>>,
}

impl Served {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::on(crate::Backend::Embedded, tweak).await
    }

    /// Serves an engine on `backend` (see [`Harness::on`]).
    pub async fn on(backend: crate::Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::on(backend, |c| {
            c.auth.keys = vec![
                mnemo_engine::config::ApiKeyConfig {
                    tenant: "acme".into(),
                    sha256: key_hash(ACME_KEY),
                },
                mnemo_engine::config::ApiKeyConfig {
                    tenant: "globex".into(),
                    sha256: key_hash(GLOBEX_KEY),
                },
            ];
            c.server.workers = 1;
            tweak(c);
        })
        .await;
        let engine = harness.start().await;
        let listener = http::bind("127.0.0.1:0").expect("port 0 binds");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(http::run(
            listener,
            engine.clone(),
            harness.config.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            harness,
            engine,
            base,
            client: Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Sends and answers the status and the JSON body (Null when there is none).
    pub async fn send(&self, builder: RequestBuilder) -> (StatusCode, Value) {
        let response = within("an HTTP answer", builder.send())
            .await
            .expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::GET, path, Some(key))).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path, Some(key)).json(&body))
            .await
    }

    pub async fn post_raw(&self, path: &str, key: &str, body: Vec<u8>) -> (StatusCode, Value) {
        self.send(
            self.request(Method::POST, path, Some(key))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::DELETE, path, Some(key)))
            .await
    }

    pub async fn processed(&self) {
        within("the processors", self.engine.wait_processed())
            .await
            .expect("processing completes");
    }

    /// Stops the server (gracefully), then the engine; answers the harness, for restarts.
    pub async fn stop(mut self) -> Harness {
        self.signal_stop();
        if let Some(server) = self.server.take() {
            within("the server to stop", server)
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
        self.engine.shutdown().await.expect("the engine shuts down");
        self.harness
    }

    /// Completes the server's shutdown future.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
