//! `POST /floor?0.92` / `POST /floor?loss=0.018`: the operator's control of the controller's
//! accuracy floor (an absolute top-1 accuracy, or a loss against the base model).

use hyper::StatusCode;

use super::server::{Reply, reply};
use crate::controller::FloorSetter;
use crate::controller::policy::parse_floor;

/// Parse the floor from the query and hand it to the controller.
pub(super) async fn set_floor(setter: &FloorSetter, query: Option<&str>) -> Reply {
    match query.and_then(parse_floor) {
        Some(f) if setter.set(f).await => reply(StatusCode::OK, "text/plain", format!("floor set to {f:?}\n")),
        Some(_) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "the controller is not running\n"),
        None => reply(StatusCode::BAD_REQUEST, "text/plain", "expected /floor?0.92 or /floor?loss=0.018\n"),
    }
}
