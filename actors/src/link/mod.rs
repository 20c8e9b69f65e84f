//! The link: the device's TCP session with the edge.
//!
//! Connects (timeout), says `Hello` and waits for `HelloAck` (protocol version checked by the
//! edge), announces each plan epoch with `PlanSwitch` before its first frame, writes tensor
//! frames, reads `InferResult`/`FrameError`/`PlanAck`, keeps the session alive with `Ping`, and
//! enforces a per-frame deadline. When the connection fails, frames in flight are dropped as
//! `link_down`, the state goes `Down` (front inference falls back to the whole model locally)
//! and it reconnects with exponential backoff and jitter. Every frame gets its bytes and transfer time
//! recorded ([`TransferSample`]) for the controller's bandwidth estimator (frames queued behind
//! a probe give none), and [`LinkCommand::Probe`] sends an active probe (`Ping` + `Probe`
//! bursts, timed by their `Pong`/`ProbeReply`). [`shaper`] optionally puts a trace-driven
//! token bucket and one-way delays between the link and its socket.
//!
//! Security ([`crate::security`]): the `Hello` carries the shared token when one is configured,
//! and with TLS configured the session runs inside rustls (over the shaper, when there is one,
//! so the trace shapes the bytes TLS really sends). A refused session ([`ConnectError`]) is
//! counted by reason (`tandem_link_connect_failures_total`), published as
//! [`LinkState::Rejected`] and logged — at ERROR the first time when only an operator can fix
//! it (token, protocol version, certificate), and the link then retries at its longest backoff.
//!
//! # Layout
//!
//! - `actor` — [`Link`]: the reconnect loop (down: frames dropped as `link_down`, commands
//!   refused, waiting out the backoff) and the session loop (frames out, replies in, plan
//!   announcements, deadline sweep, keepalive), with the `link_send`/`link_recv`/
//!   `link_decode_reply` fail points beside the writes and reads they break.
//! - `connect` — dial, shaper, TLS, `Hello` → `HelloAck`; the reconnect delays (`Backoff`, on
//!   backon's exponential iterator with jitter: from `backoff_min`, doubling, never above
//!   `backoff_max`).
//! - `probe` — the active probe's state machine (`Prober`: queued → ping → bursts → report),
//!   pure: the session loop passes the clock in and does the writing.
//! - `msg` — the types other parts see: [`LinkState`], [`LinkCommand`], [`ProbeReport`],
//!   [`TransferSample`], [`ConnectError`]/[`ConnectFailure`], and the queues' constructors.
//! - [`shaper`] — the trace-driven token bucket and delay between the link and its socket.
//!
//! Every frame goes through [`crate::wire`]: a cancel-safe [`crate::wire::FrameReader`] and a
//! [`crate::wire::FrameWriter`] that encodes, writes under `write_timeout` and counts bytes.

mod actor;
mod connect;
mod msg;
mod probe;
pub mod shaper;

pub use actor::{Link, LinkSettings};
pub use msg::{
    Burst, ConnectError, ConnectFailure, LinkCommand, LinkError, LinkState, ProbeReport, TransferSample, command_queue,
    sample_queue,
};
pub use shaper::{Shaper, Trace};
