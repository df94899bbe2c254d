//! The dashboard's files (the built single-page app) for every path outside the API, with
//! headers that keep the page to its own origin. Without a built dashboard, `/` says how to
//! build one.

use std::convert::Infallible;
use std::path::Path;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{MethodRouter, get};
use tower::ServiceBuilder;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Scripts, styles and connections only from the hub itself; images from the hub
/// (evidence photos are served by the API) and the map's tile server; no framing, no
/// plugins.
fn content_security_policy(tile_origin: Option<&str>) -> HeaderValue {
    let tiles = tile_origin.map(|o| format!(" {o}")).unwrap_or_default();
    HeaderValue::from_str(&format!(
        "default-src 'self'; img-src 'self' data: blob:{tiles}; style-src 'self'; \
         script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    ))
    .expect("a checked tile URL makes a valid header")
}

pub fn service(web_root: Option<&Path>, tile_origin: Option<&str>) -> MethodRouter<(), Infallible> {
    let headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(tile_origin),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-cache"),
        ));
    match web_root {
        Some(root) => axum::routing::get_service(
            headers.service(ServeDir::new(root).append_index_html_on_directories(true)),
        ),
        None => get(not_built).layer(headers),
    }
}

async fn not_built() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!doctype html><meta charset=utf-8><title>县级中心 · County hub</title>\
             <p>仪表盘尚未构建。Dashboard not built: run <code>npm ci &amp;&amp; npm run build</code> \
             in <code>hub/web</code> and set <code>web_root</code> (HUB_WEB_ROOT) to its \
             <code>dist</code> folder. The API is served under <code>/api/v1</code>.</p>",
        ),
    )
}
