//! The device's and the edge's HTTP endpoint, on hyper 1: `GET /metrics` (Prometheus text
//! format, [`metrics`]) and, on the device, `POST /floor?…` to change the controller's accuracy
//! floor ([`control`]). Served by [`serve`] / [`serve_with_floor`]; routing in [`server`].
//!
//! Bad input gets a 4xx and the listener keeps serving: a request head over 8 KiB is answered
//! 431 and a malformed request 400 (both by hyper), a request that carries a body (nothing here
//! takes one) 413, a floor that does not parse 400, an unknown path or method 404.

mod control;
mod metrics;
mod server;

pub use server::{HttpServer, serve, serve_with_floor};
