//! ONNX Runtime through the `ort` crate, loaded at run time (`load-dynamic`).
//!
//! The shared library is not linked: the process `dlopen`s it on first use, so a binary runs
//! (on burn) where it is missing. Where it is looked for, first hit wins:
//! 1. `$ORT_DYLIB_PATH` if set (and only there: an explicit choice is not second-guessed);
//! 2. `libonnxruntime.so` next to the executable;
//! 3. `${XDG_DATA_HOME:-$HOME/.local/share}/tandem/onnxruntime/libonnxruntime.so`, where
//!    `scripts/setup.sh` unpacks it from the `onnxruntime` wheel on PyPI.
//!
//! `ort` 2.0.0-rc.15 with `api-31` needs ONNX Runtime ≥ 1.31 (it checks the version when it
//! loads the library and refuses an older one with an error, which we report). No `unsafe` here:
//! `ort::init_from` wraps the `dlopen`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::GlobalThreadPoolOptions;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::error::EngineError;

/// The library's file name on this platform.
pub const LIBRARY: &str = "libonnxruntime.so";

/// The ONNX Runtime version `scripts/setup.sh` installs (matches the `ort` crate's API level).
pub const VERSION: &str = "1.31.1";

/// Where to look for the library, in order (see the module docs). Pure: the environment is
/// passed in.
pub fn candidates(override_path: Option<PathBuf>, exe_dir: Option<&Path>, data_home: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(p) = override_path {
        return vec![p];
    }
    let mut v = Vec::new();
    if let Some(d) = exe_dir {
        v.push(d.join(LIBRARY));
    }
    if let Some(d) = data_home {
        v.push(d.join("tandem").join("onnxruntime").join(LIBRARY));
    }
    v
}

/// [`candidates`] for this process's environment.
pub fn default_candidates() -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")));
    candidates(
        std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()).map(PathBuf::from),
        exe.as_deref().and_then(Path::parent),
        data_home,
    )
}

/// The process-wide ONNX Runtime environment and the size of its shared intra-op pool. `ort` loads
/// one library per process, so the first successful load fixes it; later calls return the same.
static ENV: OnceLock<(ort::environment::Environment, usize)> = OnceLock::new();

/// Load ONNX Runtime from the first existing candidate.
///
/// The environment owns one intra-op thread pool for the whole process, of
/// [`crate::default_threads`] threads, whose idle threads spin for a moment after a run (ONNX
/// Runtime's default): every session at that thread count runs on it ([`session`]).
pub fn load(candidates: &[PathBuf]) -> Result<(ort::environment::Environment, PathBuf), EngineError> {
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        let tried = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        return Err(EngineError::Library {
            path: candidates.first().cloned().unwrap_or_else(|| PathBuf::from(LIBRARY)),
            problem: format!("not found (tried {tried}; `bash scripts/setup.sh` installs it)"),
        });
    };
    if let Some((env, _)) = ENV.get() {
        return Ok((env.clone(), path.clone()));
    }
    let lib = |problem: String| EngineError::Library { path: path.clone(), problem };
    let builder = ort::init_from(path).map_err(|e| lib(e.to_string()))?;
    // After `init_from` the library is loaded and its version checked, so the threading options
    // (whose `Default` would panic on a failed allocation inside ONNX Runtime) can be created.
    let threads = crate::default_threads();
    let pool = GlobalThreadPoolOptions::default()
        .with_intra_threads(threads)
        .and_then(|o| o.with_inter_threads(1))
        .and_then(|o| o.with_spin_control(true))
        .map_err(|e| lib(format!("configuring the thread pool: {e}")))?;
    let env = builder
        .with_name("tandem")
        .with_global_thread_pool(pool)
        .build()
        .map_err(|e| lib(format!("creating the environment: {e}")))?;
    Ok((ENV.get_or_init(|| (env, threads)).0.clone(), path.clone()))
}

/// The size of the process's shared intra-op pool, once ONNX Runtime is loaded.
pub fn pool_threads() -> Option<usize> {
    ENV.get().map(|(_, n)| *n)
}

/// A session for `model` (ONNX bytes) with `threads` intra-op threads, fully optimised.
///
/// At the shared pool's size the session runs on the process's one pool ([`load`]), whose threads
/// spin briefly when idle, so back-to-back runs find them awake. At any other count (one thread,
/// as the edge's workers and the device's `engine_threads = 1` use) it gets its own pool with
/// spinning off. Spinning per-session pools were the bug of docs/RESULTS.md §9b: a process holds
/// many sessions (a profile 38 per member, a device its head and whole model, an edge a tail per
/// plan and worker), and the pools of sessions that had just run spun on the two cores while the
/// next one ran, making some segments 10–60× slower than alone. One shared pool has no other pool
/// to steal from.
pub fn session(env: &ort::environment::Environment, model: &[u8], threads: usize) -> Result<Session, EngineError> {
    let rt = |e: String| EngineError::Runtime(e);
    let threads = threads.max(1);
    let builder = Session::builder(env)
        .map_err(|e| rt(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| rt(e.to_string()))?;
    let mut builder = if pool_threads() == Some(threads) {
        builder
    } else {
        builder
            .with_independent_thread_pool()
            .map_err(|e| rt(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| rt(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| rt(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| rt(e.to_string()))?
            .with_inter_op_spinning(false)
            .map_err(|e| rt(e.to_string()))?
    };
    builder.commit_from_memory(model).map_err(|e| rt(e.to_string()))
}

/// Run `session` on one `[N, C, H, W]` input; the output and its shape.
pub fn run(session: &mut Session, x: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, Vec<usize>), EngineError> {
    let rt = |e: ort::Error| EngineError::Runtime(e.to_string());
    let input = ort::value::Tensor::from_array((shape, x)).map_err(rt)?;
    let outputs = session.run(ort::inputs![input]).map_err(rt)?;
    let (out_shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(rt)?;
    let dims = out_shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
    Ok((data.to_vec(), dims))
}
