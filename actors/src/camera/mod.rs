//! The camera: frames from a [`crate::source`] (a data set, image files, a video or a webcam
//! through ffmpeg) at a fixed frame rate, normalised to the model card's input.
//!
//! It never blocks. Its output queue (to front inference) is a bounded crossbeam channel; when
//! it is full the camera drops a frame — the new one ([`WhenFull::DropNewest`]) or the oldest
//! queued one ([`WhenFull::DropOldest`], fresher frames for a live view) — and records it in the
//! ledger as `camera_overrun` without waiting ([`crate::ledger::LedgerHandle::try_drop`]).

mod actor;
mod msg;

pub use actor::{Camera, CameraSettings, CameraSource, front_queue};
pub use msg::{CameraCmd, CameraReport, CapturedFrame, WhenFull};
