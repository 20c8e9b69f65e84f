//! Front inference: the head of the current plan's model, on its own thread.
//!
//! Reads the camera queue (crossbeam, bounded; the camera never blocks on it), reads the plan
//! and the link state between frames, and either runs layers `0..point` and passes the tensor
//! to the encoder, or — when the plan's point is `end` or the link is not up — runs the whole
//! model and reports a local result (the fallback that keeps frames flowing while the edge is
//! unreachable).

mod actor;
mod msg;

pub use actor::Front;
pub use msg::{HeadFrame, encoder_queue};
