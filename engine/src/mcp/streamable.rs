//! The MCP tools over the protocol's streamable-HTTP transport, for `mnemo serve`'s
//! `/mcp` route: one rmcp service per tenant, made at the tenant's first request, its
//! sessions kept in memory. The HTTP route authenticates the API key first, so a tenant
//! only ever reaches its own service; another tenant's session id is unknown there.

use std::collections::HashMap;
use std::sync::Arc;

use mnemo_storage::clock::SharedClock;
use mnemo_storage::model::TenantId;
use parking_lot::Mutex;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::MemoryTools;
use crate::Engine;

/// A tenant's MCP service over HTTP.
pub type TenantService = StreamableHttpService<MemoryTools, LocalSessionManager>;

/// The MCP services of `mnemo serve`, per tenant.
pub struct McpOverHttp {
    engine: Engine,
    clock: SharedClock,
    max_body_bytes: usize,
    /// Ends open event streams when the server stops.
    closing: CancellationToken,
    services: Mutex<HashMap<TenantId, Arc<TenantService>>>,
}

impl std::fmt::Debug for McpOverHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenants: Vec<String> = self.services.lock().keys().map(|t| t.to_string()).collect();
        f.debug_struct("McpOverHttp")
            .field("tenants", &tenants)
            .finish_non_exhaustive()
    }
}

impl McpOverHttp {
    /// Services on `engine`, taking bodies up to `max_body_bytes`; cancelling `closing`
    /// ends their sessions and event streams (the server is stopping).
    pub fn new(
        engine: Engine,
        clock: SharedClock,
        max_body_bytes: usize,
        closing: CancellationToken,
    ) -> Self {
        Self {
            engine,
            clock,
            max_body_bytes,
            closing,
            services: Mutex::new(HashMap::new()),
        }
    }

    /// The service of `tenant`, made at its first request.
    pub fn for_tenant(&self, tenant: &TenantId) -> Arc<TenantService> {
        let mut services = self.services.lock();
        if let Some(service) = services.get(tenant) {
            return service.clone();
        }
        let (engine, clock, owner) = (self.engine.clone(), self.clock.clone(), tenant.clone());
        let config = StreamableHttpServerConfig::default()
            // Plain JSON answers to POSTs: the tools send no server-initiated messages.
            .with_json_response(true)
            // Every request carries the tenant's API key, checked before this service
            // sees it: the Host check against DNS rebinding (which relies on ambient
            // credentials a key does not have) would only refuse proxies and real names.
            .disable_allowed_hosts()
            .with_max_request_body_bytes(self.max_body_bytes)
            .with_cancellation_token(self.closing.child_token());
        let service = Arc::new(StreamableHttpService::new(
            move || {
                Ok(MemoryTools::new(
                    engine.clone(),
                    owner.clone(),
                    clock.clone(),
                ))
            },
            Arc::new(LocalSessionManager::default()),
            config,
        ));
        services.insert(tenant.clone(), service.clone());
        service
    }
}
