//! # tandem-actors — the online half of tandem
//!
//! The device pipeline and the edge server that together run one CNN split in two: the device
//! captures frames, runs the head of the current plan's model up to a partition point, codes the
//! tensor and sends it over TCP; the edge decodes it, runs the tail and answers with the class.
//!
//! # Layout
//!
//! ```text
//!  camera ──crossbeam(1, drop newest|oldest)──▶ front ──crossbeam(N, block)──▶ encoder ──mpsc(N, block)──▶ link ══TCP══▶ edge
//!  (tokio task)                                 (thread)                       (thread)                    (tokio task)
//!                                                  │ local results / drops          │ drops                    │ results / drops
//!                                                  └───────────────────────▶ ledger ◀┴──────────────────────────┘
//!                                                                        (tokio task, mpsc(1024, block))
//! ```
//!
//! - [`camera`]: plays a [`tandem_models::data::Dataset`] as a video at a fixed FPS; never
//!   blocks — when front inference is busy it drops (newest or oldest) and counts `camera_overrun`.
//! - [`front`]: the head of the current plan's model on its own thread, or the whole model when
//!   the plan says `end` or the link is down (local fallback).
//! - [`encoder`]: quantise + compress ([`tandem_codec::Codec`]) and frame the tensor.
//! - [`link`]: the TCP session with the edge — connect/TLS/handshake (`connect`), plan
//!   announcements, frames out, results back, per-frame bytes and transfer time, deadline, the
//!   active probe's state machine (`probe`), reconnect with jittered exponential backoff.
//! - [`ledger`]: where every frame ends — a result or a drop with a reason — plus latency
//!   accounting and the final [`ledger::Summary`].
//! - [`edge`]: the edge server — connection limit, handshake, `check → parse`, a model store
//!   that loads tails by id, inference threads behind a bounded queue, error replies.
//! - [`controller`]: adapts the plan to the link — bandwidth estimate, active probes, planner
//!   with hysteresis, and the swap protocol (prepare on the edge, then publish).
//! - [`plan`]: the control plane — the [`plan::PlanHandle`] stages read between frames.
//! - [`device`]: wires the device actors together and owns their shutdown (a
//!   `tokio_util::sync::CancellationToken` cancelled past the drain deadline).
//! - [`emulation`]: stretches device-side stages to emulate a device R times slower.
//! - [`types`]: the shared vocabulary — [`types::Origin`], [`types::Stage`], [`types::DropReason`],
//!   [`types::ConnectFailure`], [`types::RejectReason`], [`types::ActivePlan`] — depending on
//!   nothing else in the crate.
//! - [`metrics`]: Prometheus metric definitions registered into a caller's `Registry`; depends on
//!   [`types`] only (`types` ← `metrics` ← the actors).
//! - [`http`]: `GET /metrics` and the control endpoint `POST /floor` on hyper.
//! - [`wire`]: frames over a byte stream for both sides — a cancel-safe reader and a writer that
//!   owns encode + timed write + byte count; header fields only through codec's `peek_meta`.
//! - [`security`]: the shared token and TLS of the device–edge link.
//! - [`supervise`]: panics caught at the job boundary of the blocking threads, restarts with a
//!   budget and backoff (`tandem_restarts_total{stage}`).
//! - [`faults`]: fail points (fail-rs, `failpoints` feature) for the fault-injection tests.
//! - [`report`]: the typed files one process writes for another — the device's
//!   [`report::RunReport`] (`--summary-out`) and the edge's [`report::EdgeReady`] (`--ready-file`).
//! - [`config`]: the TOML configs of both roles; [`millis`]: their `*_ms` durations (`2000` or `"2s"`).
//! - [`models`]: loading series members by id and running segments of them.
//! - [`testkit`]: a tiny random-weight series for tests and smoke runs.
//!
//! # Queues
//! Every queue is bounded and says what happens when it is full; see each actor's `msg.rs`.
//! Actors are tokio tasks or OS threads that own their state and read one typed inbox
//! (Alice Ryhl's "actors with Tokio" shape rather than actix: the whole data path is tokio I/O
//! and crossbeam-fed inference threads, and plain bounded channels make every full-policy explicit).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod camera;
pub mod config;
pub mod controller;
pub mod device;
pub mod edge;
pub mod emulation;
pub mod encoder;
pub mod error;
pub mod faults;
pub mod front;
pub mod http;
pub mod ledger;
pub mod link;
pub mod metrics;
pub mod millis;
pub mod models;
pub mod plan;
pub mod predictions;
pub mod report;
pub mod security;
pub mod source;
pub mod supervise;
pub mod testkit;
pub mod types;
pub mod wire;

pub use error::ActorError;
