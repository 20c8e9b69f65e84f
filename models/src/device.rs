//! Device selection. The flex backend (pure-Rust CPU, rayon + SIMD) is the default and the only
//! one built without extra features.

use burn::tensor::Device;

/// The CPU device used for inference.
pub fn cpu() -> Device {
    Device::flex()
}

/// The same device with autodiff, for training and Taylor ranking.
pub fn cpu_autodiff() -> Device {
    Device::flex().autodiff()
}
