//! The camera: a data set played as a video at a fixed frame rate.
//!
//! It never blocks. Its output queue (to front inference) is a bounded crossbeam channel; when
//! it is full the camera drops a frame — the new one ([`WhenFull::DropNewest`]) or the oldest
//! queued one ([`WhenFull::DropOldest`], fresher frames for a live view) — and records it in the
//! ledger as `camera_overrun` without waiting ([`crate::ledger::LedgerHandle::try_drop`]).

mod actor;
mod msg;

pub use actor::{Camera, CameraSettings, front_queue};
pub use msg::{CameraCmd, CameraReport, CapturedFrame, WhenFull};
