//! The link: the device's TCP session with the edge.
//!
//! Connects (timeout), says `Hello` and waits for `HelloAck` (protocol version checked by the
//! edge), announces each plan epoch with `PlanSwitch` before its first frame, writes tensor
//! frames, reads `InferResult`/`FrameError`/`PlanAck`, keeps the session alive with `Ping`, and
//! enforces a per-frame deadline. When the connection fails, frames in flight are dropped as
//! `link_down`, the state goes `Down` (front inference falls back to the whole model locally)
//! and it reconnects with exponential backoff. Every frame gets its bytes and transfer time
//! recorded ([`TransferSample`]) for the bandwidth estimator of the adaptation issue.

mod actor;
mod msg;

pub use actor::{Link, LinkSettings};
pub use msg::{LinkCommand, LinkError, LinkState, TransferSample, command_queue, sample_queue};
