//! Accounting: where every frame ends.
//!
//! Each captured frame is owned by exactly one stage at a time, and the stage that ends it
//! reports one [`Outcome`] — a [`FrameResult`] or a drop with a [`DropReason`] — to the ledger.
//! Camera overruns are counted by the camera itself (it never blocks, not even on the ledger)
//! and added to the [`Summary`] at the end, so `captured == results + drops` is an invariant the
//! summary checks ([`Summary::balanced`]), not a subtraction.

mod actor;
mod msg;

pub use actor::{Ledger, Percentiles, Snapshot, Summary, SummaryStats};
pub use msg::{DropReason, FrameResult, FrameTiming, LedgerHandle, Outcome, Timeline, timing_queue};
