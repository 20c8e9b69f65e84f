//! Device selection.
//!
//! The flex backend (pure-Rust CPU, rayon + SIMD) is the default and the only one built without
//! extra features; [`cpu`] and [`cpu_autodiff`] name it directly for the code that always runs
//! on the CPU (the online runtime, the profiler, tests). The offline commands (train, prune, eval,
//! bench) take a [`DeviceKind`] from `--device` and build their device with [`device`]:
//!
//! - `cuda`: burn's CUDA backend (cubecl), with the `cuda` cargo feature. The driver library is
//!   loaded when the device is first used, so the binary starts on a machine without one.
//! - `wgpu`: burn's wgpu backend on Vulkan (SPIR-V kernels), with the `wgpu` cargo feature. The
//!   Vulkan loader is likewise loaded at run time.
//!
//! A GPU device is checked once, when it is built: a tiny computation runs on it and is read
//! back, so a missing driver is a [`ModelError::Device`] naming the cause, not a panic in the
//! middle of a training run. GPU work is asynchronous: timing code calls [`sync`] before it
//! reads the clock.

use crate::error::{ModelError, Result};
use burn::tensor::Device;
use std::fmt;
use std::str::FromStr;

/// The CPU device used for inference.
pub fn cpu() -> Device {
    Device::flex()
}

/// The same device with autodiff, for training and Taylor ranking.
pub fn cpu_autodiff() -> Device {
    Device::flex().autodiff()
}

/// Which compute backend runs the offline work (`--device cpu|cuda|wgpu`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// burn's flex backend on the CPU; always built.
    #[default]
    Cpu,
    /// burn's CUDA backend on GPU 0 (`CUDA_VISIBLE_DEVICES` picks another); `cuda` feature.
    Cuda,
    /// burn's wgpu backend on the best Vulkan adapter (`CUBECL_WGPU_DEFAULT_DEVICE` picks
    /// another); `wgpu` feature.
    Wgpu,
    /// burn's LibTorch backend on the CPU (PyTorch's own kernels through tch); `libtorch`
    /// feature, built against an installed PyTorch (`LIBTORCH_USE_PYTORCH=1`). For comparing
    /// training speed with PyTorch (docs/RESULTS.md §1b); burn 0.22 marks it deprecated.
    Libtorch,
}

impl DeviceKind {
    /// Every kind, in `--device` order.
    pub const ALL: [DeviceKind; 4] = [DeviceKind::Cpu, DeviceKind::Cuda, DeviceKind::Wgpu, DeviceKind::Libtorch];
    /// The names `--device` accepts, in the order of [`DeviceKind::ALL`].
    pub const NAMES: [&'static str; 4] = ["cpu", "cuda", "wgpu", "libtorch"];

    /// The `--device` name.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Libtorch => "libtorch",
        }
    }

    /// Whether this binary was built with the backend (the cargo feature of the same name).
    pub fn is_built(self) -> bool {
        match self {
            DeviceKind::Cpu => true,
            DeviceKind::Cuda => cfg!(feature = "cuda"),
            DeviceKind::Wgpu => cfg!(feature = "wgpu"),
            DeviceKind::Libtorch => cfg!(feature = "libtorch"),
        }
    }

    /// Whether the backend runs asynchronously on an accelerator.
    pub fn is_gpu(self) -> bool {
        matches!(self, DeviceKind::Cuda | DeviceKind::Wgpu)
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        DeviceKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| ModelError::Device {
            device: s.to_string(),
            problem: format!("unknown device; expected one of {}", DeviceKind::NAMES.join(", ")),
        })
    }
}

/// The device for `kind`, with autodiff when `autodiff` (training, ranking) or plain (inference).
///
/// Fails with [`ModelError::Device`] when the binary was built without the backend, or when the
/// backend cannot run here (no driver, no adapter): a GPU device runs a small self-test before
/// it is returned.
pub fn device(kind: DeviceKind, autodiff: bool) -> Result<Device> {
    let plain = match kind {
        DeviceKind::Cpu => cpu(),
        DeviceKind::Cuda => cuda()?,
        DeviceKind::Wgpu => wgpu()?,
        DeviceKind::Libtorch => libtorch()?,
    };
    Ok(if autodiff { plain.autodiff() } else { plain })
}

/// Wait until the work queued on `device` has finished, so that a clock read next measures it.
/// A no-op on the CPU backend, which runs each operation as it is called.
pub fn sync(device: &Device) -> Result<()> {
    device.sync().map_err(|e| ModelError::Device { device: format!("{device:?}"), problem: e.to_string() })
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    self_test(DeviceKind::Cuda, Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    Err(not_built(DeviceKind::Cuda))
}

/// Pinned to Vulkan: wgpu's automatic choice would fall back to OpenGL, and so to a software
/// rasteriser (llvmpipe) on a machine without a GPU, hundreds of times slower and silently so.
/// Brought up through the fallible initialiser, so a missing loader or adapter is an error value
/// (a second call in the same process finds the runtime registered and reuses it).
#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device> {
    use burn::tensor::wgpu::{WgpuBackend, WgpuInitError};
    match Device::wgpu_options().graphics_api(WgpuBackend::Vulkan).init() {
        Ok(device) => self_test(DeviceKind::Wgpu, device),
        Err(WgpuInitError::Registration { .. }) => {
            self_test(DeviceKind::Wgpu, Device::vulkan(burn::tensor::DeviceKind::DefaultDevice))
        }
        Err(e) => Err(unusable(DeviceKind::Wgpu, &e.to_string())),
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device> {
    Err(not_built(DeviceKind::Wgpu))
}

#[cfg(feature = "libtorch")]
#[allow(deprecated)] // burn 0.22 deprecates burn-tch; kept as the measured PyTorch-kernel comparison.
fn libtorch() -> Result<Device> {
    Ok(Device::libtorch())
}

#[cfg(not(feature = "libtorch"))]
fn libtorch() -> Result<Device> {
    Err(not_built(DeviceKind::Libtorch))
}

#[allow(dead_code)] // Unused in a binary built with every backend.
fn not_built(kind: DeviceKind) -> ModelError {
    ModelError::Device {
        device: kind.name().to_string(),
        problem: format!(
            "this binary was built without the `{kind}` feature; rebuild with `cargo build --release --features {kind}`"
        ),
    }
}

#[allow(dead_code)] // Unused in a binary built without a GPU backend.
fn unusable(kind: DeviceKind, cause: &str) -> ModelError {
    let hint = match kind {
        DeviceKind::Cuda => "is an NVIDIA driver installed (libcuda.so.1)?",
        _ => "are a Vulkan loader (libvulkan.so.1) and a GPU's Vulkan driver installed?",
    };
    ModelError::Device { device: kind.name().to_string(), problem: format!("cannot be used here: {cause} ({hint})") }
}

/// Run `2 · [1, 2, 3]`, summed, on `device` and read it back.
///
/// The GPU backends bring their runtime up on first use and panic when they cannot (cudarc when
/// `libcuda.so` does not load, wgpu when no adapter is found), often on a runner thread of their
/// own, which leaves the caller with a bare `RecvError`. So the panic is caught here and turned
/// into an error, and meanwhile a hook records the message of every thread's panic instead of
/// printing a backtrace; the first one is the cause. The hook is process-wide: this runs at
/// start-up, before the command's own threads.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn self_test(kind: DeviceKind, device: Device) -> Result<Device> {
    use burn::tensor::Tensor;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::{Arc, Mutex};

    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&messages);
    let hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Ok(mut m) = sink.lock() {
            m.push(info.payload_as_str().unwrap_or("a panic without a message").to_string());
        }
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        let sum = (x * 2.0).sum().into_scalar::<f32>();
        device.sync().map(|()| sum)
    }));
    panic::set_hook(hook);
    match outcome {
        Ok(Ok(sum)) if (sum - 12.0).abs() < 1e-4 => Ok(device),
        Ok(Ok(sum)) => Err(unusable(kind, &format!("self-test computed {sum}, expected 12"))),
        Ok(Err(e)) => Err(unusable(kind, &e.to_string())),
        Err(_) => {
            let first = messages.lock().ok().and_then(|m| m.first().cloned());
            Err(unusable(kind, first.as_deref().unwrap_or("the backend panicked while starting")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in DeviceKind::ALL {
            assert_eq!(k.name().parse::<DeviceKind>().expect("known name"), k);
        }
        assert_eq!(DeviceKind::NAMES.to_vec(), DeviceKind::ALL.map(DeviceKind::name).to_vec());
        let err = "tpu".parse::<DeviceKind>().expect_err("unknown name").to_string();
        assert!(err.contains("expected one of cpu, cuda, wgpu"), "{err}");
    }

    #[test]
    fn cpu_is_always_built_and_honours_autodiff() {
        assert!(DeviceKind::Cpu.is_built());
        assert!(device(DeviceKind::Cpu, true).expect("cpu").is_autodiff());
        assert!(!device(DeviceKind::Cpu, false).expect("cpu").is_autodiff());
        sync(&cpu()).expect("sync on the cpu is a no-op");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_rebuild() {
        let err = device(DeviceKind::Cuda, true).expect_err("cuda is not built").to_string();
        assert!(err.contains("built without the `cuda` feature"), "{err}");
        assert!(err.contains("cargo build --release --features cuda"), "{err}");
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_says_how_to_rebuild() {
        let err = device(DeviceKind::Wgpu, false).expect_err("wgpu is not built").to_string();
        assert!(err.contains("cargo build --release --features wgpu"), "{err}");
    }
}
