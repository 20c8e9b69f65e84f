//! The encoder: quantise + compress the head tensor with the plan's coding and frame it
//! (compact header carrying frame id, plan epoch, model id and point), on its own thread.
//! Output goes to the link's bounded inbox with `blocking_send` (Block: the backpressure path).

mod actor;
mod msg;

pub use actor::Encoder;
pub use msg::{WireFrame, link_queue};
