//! `GET /metrics`: the registry in the Prometheus text format.

use hyper::StatusCode;
use prometheus::{Encoder, Registry, TextEncoder};

use super::server::{Reply, reply};

/// Gather `registry` and encode it.
pub(super) fn render(registry: &Registry) -> Reply {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => reply(StatusCode::OK, prometheus::TEXT_FORMAT, body),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
    }
}
