//! The engine and its prepared segments.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use burn::tensor::{Tensor, TensorData};
use ort::session::Session;
use tandem_models::zoo::Net;

use crate::error::EngineError;
use crate::onnx::{self, Metadata};
use crate::onnxruntime;

/// Which runtime executes segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// ONNX Runtime (CPU execution provider), through `ort`.
    OnnxRuntime,
    /// burn's flex backend, the network as trained (batch norm not folded).
    Burn,
}

impl EngineKind {
    /// Every kind, for metric labels.
    pub const ALL: [EngineKind; 2] = [EngineKind::OnnxRuntime, EngineKind::Burn];

    /// The label used in metrics, logs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::OnnxRuntime => "onnxruntime",
            EngineKind::Burn => "burn",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator asked for (`engine = "auto" | "onnxruntime" | "burn"` in the configs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// ONNX Runtime where its library loads, burn otherwise (one warning).
    #[default]
    Auto,
    /// ONNX Runtime or an error.
    OnnxRuntime,
    /// burn, always.
    Burn,
}

impl std::str::FromStr for Choice {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "auto" => Ok(Choice::Auto),
            "onnxruntime" | "ort" => Ok(Choice::OnnxRuntime),
            "burn" => Ok(Choice::Burn),
            other => Err(EngineError::Graph(format!("unknown engine {other:?} (expected auto, onnxruntime or burn)"))),
        }
    }
}

/// How to open the engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Which runtime.
    pub choice: Choice,
    /// Where to look for ONNX Runtime's library, in order ([`onnxruntime::default_candidates`]).
    pub library: Vec<PathBuf>,
    /// Intra-op threads of each ONNX Runtime session (burn uses its own rayon pool).
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { choice: Choice::Auto, library: onnxruntime::default_candidates(), threads: default_threads() }
    }
}

/// The machine's cores (at least 1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

/// The process's inference engine: cheap to clone, chosen once.
#[derive(Clone)]
pub struct Engine {
    kind: EngineKind,
    env: Option<ort::environment::Environment>,
    threads: usize,
    library: Option<PathBuf>,
    fallback: Option<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("kind", &self.kind)
            .field("threads", &self.threads)
            .field("library", &self.library)
            .field("fallback", &self.fallback)
            .finish()
    }
}

static FALLBACK_WARNING: Once = Once::new();

impl Engine {
    /// Open the engine. With [`Choice::Auto`] this never fails: when ONNX Runtime cannot be
    /// loaded it logs one warning (once per process) and runs on burn; [`Engine::fallback`]
    /// then says why. [`Choice::OnnxRuntime`] returns the load error instead.
    pub fn open(opts: &EngineOptions) -> Result<Engine, EngineError> {
        match opts.choice {
            Choice::Burn => Ok(Engine::burn()),
            Choice::OnnxRuntime => Engine::onnxruntime(opts),
            Choice::Auto => Ok(Engine::onnxruntime(opts).unwrap_or_else(|e| {
                let reason = e.to_string();
                FALLBACK_WARNING.call_once(|| {
                    tracing::warn!(error = %reason, "ONNX Runtime unavailable: inference runs on burn (several times slower)");
                });
                Engine { fallback: Some(reason), ..Engine::burn() }
            })),
        }
    }

    fn onnxruntime(opts: &EngineOptions) -> Result<Engine, EngineError> {
        let (env, path) = onnxruntime::load(&opts.library)?;
        tracing::debug!(library = %path.display(), "ONNX Runtime loaded");
        Ok(Engine {
            kind: EngineKind::OnnxRuntime,
            env: Some(env),
            threads: opts.threads.max(1),
            library: Some(path),
            fallback: None,
        })
    }

    /// burn only.
    pub fn burn() -> Engine {
        Engine { kind: EngineKind::Burn, env: None, threads: 1, library: None, fallback: None }
    }

    /// The runtime in use.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Why ONNX Runtime is not in use, when it was wanted ([`Choice::Auto`] fell back).
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The library loaded, for ONNX Runtime.
    pub fn library(&self) -> Option<&std::path::Path> {
        self.library.as_deref()
    }

    /// Intra-op threads per session.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Prepare the layers `from..to` of `net` for inference: build and optimise the graph, run it
    /// once on zeros (first-run allocations happen here, not on a frame). `replicas` is how many
    /// threads will run the segment at once (the edge's workers share one prepared tail).
    pub fn prepare(&self, net: &Net, from: usize, to: usize, replicas: usize) -> Result<Segment, EngineError> {
        let started = Instant::now();
        let spec = &net.spec;
        let end = spec.end();
        if from >= to || to > end {
            return Err(EngineError::Range { from, to, end });
        }
        let points = spec.points();
        let input = points[from].shape.clone();
        let output = if to == end { vec![spec.num_classes, 1, 1] } else { points[to].shape.clone() };
        let imp = match &self.env {
            Some(env) => {
                let meta = Metadata { member: "segment".into(), ..Metadata::default() };
                let bytes = onnx::segment_bytes(net, from, to, &meta)?;
                let sessions = (0..replicas.max(1))
                    .map(|_| onnxruntime::session(env, &bytes, self.threads).map(Mutex::new))
                    .collect::<Result<Vec<_>, _>>()?;
                Imp::Ort(Arc::new(sessions))
            }
            None => Imp::Burn(Box::new(net.clone())),
        };
        let mut seg = Segment { kind: self.kind, from, to, input, output, prepare: Duration::ZERO, imp };
        let [c, h, w] = seg.input_chw();
        let warm = seg.run(vec![0.0; c * h * w], [1, c, h, w])?;
        if warm.1[1..] != seg.output[..] {
            return Err(EngineError::Graph(format!(
                "segment {from}..{to} produced {:?}, expected [1, {:?}]",
                warm.1, seg.output
            )));
        }
        seg.prepare = started.elapsed();
        Ok(seg)
    }
}

/// Layers `from..to` of one series member, ready to run (the engine's unit of work).
/// Clones share the prepared runtime state.
#[derive(Clone)]
pub struct Segment {
    kind: EngineKind,
    from: usize,
    to: usize,
    input: Vec<usize>,
    output: Vec<usize>,
    prepare: Duration,
    imp: Imp,
}

#[derive(Clone)]
enum Imp {
    /// One session per concurrent caller: `ort`'s `Session::run` takes `&mut self`. A caller
    /// takes the first free one (`try_lock`), or waits for the first.
    Ort(Arc<Vec<Mutex<Session>>>),
    Burn(Box<Net>),
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("kind", &self.kind)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("prepare", &self.prepare)
            .finish()
    }
}

impl Segment {
    /// The runtime that runs it.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// First point.
    pub fn from(&self) -> usize {
        self.from
    }

    /// Last point.
    pub fn to(&self) -> usize {
        self.to
    }

    /// One example's input shape (`[C, H, W]`).
    pub fn input(&self) -> &[usize] {
        &self.input
    }

    /// One example's output shape (`[C, H, W]`; `[classes, 1, 1]` at `end`).
    pub fn output(&self) -> &[usize] {
        &self.output
    }

    /// How long preparing took (graph build, optimisation, a first run).
    pub fn prepare_time(&self) -> Duration {
        self.prepare
    }

    fn input_chw(&self) -> [usize; 3] {
        [self.input[0], self.input[1], self.input[2]]
    }

    /// Run on `x` of `shape` (NCHW, any N). Returns the output and its shape; at `end` the
    /// logits as `[N, classes, 1, 1]` (as [`Net::forward_range`]).
    pub fn run(&self, x: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, [usize; 4]), EngineError> {
        let n = shape[0];
        if shape[1..] != self.input[..] || n == 0 || x.len() != shape.iter().product::<usize>() {
            return Err(EngineError::Shape { expected: self.input.clone(), got: shape.to_vec() });
        }
        let out = [n, self.output[0], self.output[1], self.output[2]];
        match &self.imp {
            Imp::Ort(sessions) => {
                let mut guard = sessions
                    .iter()
                    .find_map(|s| s.try_lock().ok())
                    .map(Ok)
                    .unwrap_or_else(|| sessions.first().map(|s| s.lock().unwrap_or_else(|p| p.into_inner())).ok_or(()))
                    .map_err(|()| EngineError::Runtime("segment has no session".into()))?;
                let (y, dims) = onnxruntime::run(&mut guard, x, shape)?;
                if y.len() != out.iter().product::<usize>() || dims.first() != Some(&n) {
                    return Err(EngineError::Runtime(format!("output of shape {dims:?}, expected {out:?}")));
                }
                Ok((y, out))
            }
            Imp::Burn(net) => {
                let device = tandem_models::device::cpu();
                let t = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
                let y = net.forward_range(t, self.from, self.to);
                let dims = y.dims();
                let data = y
                    .into_data()
                    .try_into_vec::<f32>()
                    .map_err(|e| EngineError::Runtime(format!("reading burn's output tensor: {e:?}")))?;
                Ok((data, dims))
            }
        }
    }
}
