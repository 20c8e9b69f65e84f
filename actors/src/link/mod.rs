//! The link: the device's TCP session with the edge.
//!
//! Connects (timeout), says `Hello` and waits for `HelloAck` (protocol version checked by the
//! edge), announces each plan epoch with `PlanSwitch` before its first frame, writes tensor
//! frames, reads `InferResult`/`FrameError`/`PlanAck`, keeps the session alive with `Ping`, and
//! enforces a per-frame deadline. When the connection fails, frames in flight are dropped as
//! `link_down`, the state goes `Down` (front inference falls back to the whole model locally)
//! and it reconnects with exponential backoff. Every frame gets its bytes and transfer time
//! recorded ([`TransferSample`]) for the controller's bandwidth estimator (frames queued behind
//! a probe give none), and [`LinkCommand::Probe`] sends an active probe (`Ping` + `Probe`
//! bursts, timed by their `Pong`/`ProbeReply`). [`shaper`] optionally puts a trace-driven
//! token bucket and one-way delays between the link and its socket.

mod actor;
mod msg;
pub mod shaper;

pub use actor::{Link, LinkSettings};
pub use msg::{LinkCommand, LinkError, LinkState, ProbeReport, TransferSample, command_queue, sample_queue};
pub use shaper::{Shaper, Trace};
