//! The device's and the edge's HTTP endpoint, on hyper 1: `GET /metrics` (Prometheus text
//! format, `http/metrics.rs`) and, on the device, `POST /floor?…` to change the controller's
//! accuracy floor (`http/control.rs`). Served by [`serve`] / [`serve_with_floor`]; the listener,
//! connection limits and routing are in `http/server.rs`.
//!
//! Control routes are guarded: with a device token, `POST /floor` needs `Authorization: Bearer
//! <token>` (401 otherwise, missing and wrong alike); `/metrics` is open. A bare port binds
//! loopback ([`listen_addr`]).
//!
//! Bad input gets a 4xx and the listener keeps serving: a request head over 8 KiB is answered
//! 431 and a malformed request 400 (both by hyper), a request that carries a body (nothing here
//! takes one) 413, a floor that does not parse (or is missing) 400, an unknown path or method 404.
//! A connection that sends nothing before closing gets no answer (there is no request to
//! answer). Each connection is bounded in time as a whole (15 s: head, answer and drain), so a
//! client that never reads cannot keep one of the 64 connection slots.

mod control;
mod metrics;
mod server;

pub use server::{HttpServer, listen_addr, serve, serve_with_floor};
