//! The OpenAPI 3 document of the service, generated from the handlers and the API types
//! and served at `/openapi.json`.

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::{api, context, forget, graph, health, history, mcp, search, turns, State};

/// The API description: every route, body and error.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mnemo",
        description = "Memory engine for conversational AI. Every /v1 request needs \
                       `Authorization: Bearer <key>`; the key decides the tenant.",
    ),
    paths(
        turns::store,
        context::context,
        search::search,
        history::history,
        graph::graph,
        forget::forget_user,
        forget::forget_turn,
        health::healthz,
        health::readyz,
        health::metrics,
        mcp::post,
        mcp::get,
        mcp::delete,
        serve,
    ),
    components(schemas(
        api::StoreIn,
        api::TurnIn,
        api::TurnsIn,
        api::ErrorBody,
        api::ErrorDetail,
    )),
    modifiers(&BearerKey)
)]
pub struct ApiDoc;

/// Adds the bearer API key scheme.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document, as JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
pub(crate) async fn serve(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}
