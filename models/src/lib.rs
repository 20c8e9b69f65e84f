//! # tandem-models — the offline half of tandem
//!
//! Everything that happens before the pipeline runs: reading data sets, building CNNs from
//! runtime width plans, training them, and (in `prune`) the 2-step pruning that turns one
//! trained model into a series of smaller ones. No async, no networking: the online crates
//! depend on this one, never the reverse.
//!
//! # Layout
//! - [`data`]: Fashion-MNIST (gzipped IDX), CIFAR-10 binary, synthetic images; batching and
//!   augmentation.
//! - [`zoo`]: [`zoo::NetSpec`] (architecture as data: points, shapes, MACs) and [`zoo::Net`]
//!   (the burn module, runnable between any two partition points).
//! - [`params`]: a model's tensors as a plain name → array map — the form surgery works on.
//! - [`checkpoint`]: a model directory = `model.toml` + `weights.safetensors`.
//! - [`train`]: SGD training and evaluation.
//! - [`series`]: the manifest of a pruned-model series (the offline → online contract).
//! - [`device`]: which burn device runs the work.
//! - [`testkit`]: a tiny random-weight series on disk for tests and examples.

pub mod checkpoint;
pub mod data;
pub mod device;
pub mod error;
pub mod params;
pub mod prune;
pub mod series;
pub mod testkit;
pub mod train;
pub mod zoo;

pub use error::{ModelError, Result};
