//! # tandem-profiler — what every split costs, measured
//!
//! The planner chooses among (series member, partition point, coding) by predicted latency and
//! accuracy; this crate produces the numbers it predicts from, on the machine it runs on, as a
//! [`tandem_planner::Profile`] (written as TOML by `tandem profile`).
//!
//! # Layout
//! - [`profile`]: [`profile_series`] / [`profile_series_on`] and their [`ProfileOptions`]. Per
//!   member and run, every head (`input → p`) and every tail (`p → end`) is timed as one call at
//!   batch 1 from host memory to host memory, as the runtime runs it (about as many forward
//!   passes per run as the model has points — 19 for VGG-16; summing per-segment times instead
//!   under-priced whole ranges by ~40 %). The activations of
//!   a few real test images at every point are coded with every configured coding for bytes on
//!   the wire and encode/decode time.
//! - [`accuracy`]: [`coding_accuracy`], the test accuracy with a lossy coding applied at a point
//!   (tail run on decoded tensors), batched for speed but coded image by image.
//! - [`dump`]: real intermediate tensors as `.f32` + `.shape` files for the codec benchmark.
//! - `exec`: activations at every point, timing one head or tail; medians; machine description.
//! - [`error`]: the [`ProfileError`] type.
//!
//! Nothing here parses command lines or prints: `tandem profile` does that.

pub mod accuracy;
pub mod dump;
pub mod error;
mod exec;
pub mod profile;

pub use accuracy::{CodingAccuracy, coding_accuracy};
pub use dump::{DumpOptions, DumpedTensor, dump_tensors, read_tensor, write_tensor};
pub use error::{ProfileError, Result};
pub use exec::{Activation, activations, compute_threads, machine_description};
pub use profile::{
    DEFAULT_ACCURACY_IMAGES, DEFAULT_IMAGES, DEFAULT_RUNS, DEFAULT_WARMUP, PROFILE_FRAME_ID, ProfileOptions,
    coding_class, default_codings, load_member, load_test_set, model_kind, profile_meta, profile_series,
    profile_series_on, raw_frame_bytes,
};
/// Re-exported so that callers name codings and profiles without depending on those crates.
pub use tandem_codec as codec;
pub use tandem_planner as planner;
