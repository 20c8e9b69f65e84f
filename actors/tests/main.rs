//! Integration tests of the online crate over real sockets on 127.0.0.1: a tiny random-weight
//! series built per test, synthetic frames, the edge and the device in one process (the root
//! package's tests run them as separate processes). Synchronisation is by waiting on published
//! state (`watch`), never by sleeping; timeouts are only a guard against hangs.

mod accounting;
mod adaptation;
mod bad_inputs;
mod common;
mod edge_faults;
mod fixtures;
mod http;
mod metrics;
mod pipeline;
mod preauth;
mod security;
