//! Series members by id, loaded once, and their segments prepared by the inference engine.
//!
//! The device's front thread keeps a [`ModelCache`] of heads; the edge's model store keeps one of
//! tails, prepares a tail when a plan is prepared (before the edge acks it), and hands clones of
//! prepared segments to its inference threads (clones share the prepared runtime state).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use tandem_models::checkpoint;
use tandem_models::series::Series;
use tandem_models::zoo::{Net, NetSpec};

use tandem_engine::{Engine, Segment};

use crate::error::ActorError;
use crate::metrics::EngineMetrics;

/// A loaded series member, ready for inference.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Model id.
    pub model_id: u32,
    /// The network (inference copy).
    pub net: Net,
    /// Its spec (widths of this member).
    pub spec: NetSpec,
    /// Per-point tensor shape of one example (`[C, H, W]`, `[classes]` at end).
    pub shapes: Vec<Vec<usize>>,
}

impl Loaded {
    /// Index of the `end` point.
    pub fn end(&self) -> usize {
        self.spec.end()
    }

    /// Run the layers `from..to` on `x` of `shape` (NCHW) with burn, unprepared: the reference
    /// the engine is checked against in tests. Returns the activation and its shape; at `end`
    /// the logits as `[N, classes, 1, 1]`.
    pub fn run(
        &self,
        x: Vec<f32>,
        shape: [usize; 4],
        from: usize,
        to: usize,
    ) -> Result<(Vec<f32>, [usize; 4]), String> {
        let device = tandem_models::device::cpu();
        let t = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
        let y = self.net.forward_range(t, from, to);
        let dims = y.dims();
        let data = y.into_data().try_into_vec::<f32>().map_err(|e| format!("reading the output tensor: {e:?}"))?;
        Ok((data, dims))
    }
}

/// Load member `model_id` of the series in `dir`.
pub fn load_member(series: &Series, dir: &Path, model_id: u32) -> Result<Loaded, ActorError> {
    let member = series.member(model_id).map_err(|source| ActorError::Model { model_id, source })?;
    let (net, card) = checkpoint::load(&series.dir_of(dir, member), &tandem_models::device::cpu())
        .map_err(|source| ActorError::Model { model_id, source })?;
    let spec = series.spec_of(member).map_err(|source| ActorError::Model { model_id, source })?;
    if card.spec != spec {
        return Err(ActorError::Model {
            model_id,
            source: tandem_models::ModelError::Config(format!(
                "checkpoint widths {:?} differ from the manifest's {:?}",
                card.spec.widths, spec.widths
            )),
        });
    }
    let shapes = spec.points().into_iter().map(|p| p.shape).collect();
    Ok(Loaded { model_id, net: net.valid(), spec, shapes })
}

/// Members loaded on first use, kept by id, and their prepared segments by `(id, from, to)`.
#[derive(Debug)]
pub struct ModelCache {
    series: Series,
    dir: PathBuf,
    models: HashMap<u32, Loaded>,
    engine: Engine,
    /// Threads that run one segment at once (the edge's workers).
    replicas: usize,
    segments: HashMap<(u32, usize, usize), Segment>,
    metrics: Option<EngineMetrics>,
}

impl ModelCache {
    /// Read the manifest of the series in `dir`; segments are prepared on `engine` for
    /// `replicas` concurrent callers.
    pub fn open(dir: &Path, engine: Engine, replicas: usize) -> Result<ModelCache, ActorError> {
        let series = Series::load(dir).map_err(|source| ActorError::Series { dir: dir.to_path_buf(), source })?;
        Ok(ModelCache {
            series,
            dir: dir.to_path_buf(),
            models: HashMap::new(),
            engine,
            replicas: replicas.max(1),
            segments: HashMap::new(),
            metrics: None,
        })
    }

    /// Report the engine in use and every preparation's time to `metrics`.
    pub fn with_metrics(mut self, metrics: EngineMetrics) -> ModelCache {
        metrics.in_use(self.engine.kind());
        self.metrics = Some(metrics);
        self
    }

    /// The manifest.
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// The engine segments are prepared on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The member, loading it on first use.
    pub fn get(&mut self, model_id: u32) -> Result<&Loaded, ActorError> {
        if !self.models.contains_key(&model_id) {
            let loaded = load_member(&self.series, &self.dir, model_id)?;
            self.models.insert(model_id, loaded);
        }
        self.models.get(&model_id).ok_or(ActorError::StageFailed("model cache"))
    }

    /// Whether layers `from..to` of member `model_id` are prepared already.
    pub fn is_prepared(&self, model_id: u32, from: usize, to: usize) -> bool {
        self.segments.contains_key(&(model_id, from, to))
    }

    /// Layers `from..to` of member `model_id`, prepared on first use (loading the member if
    /// needed). Preparing takes milliseconds: callers do it when a plan is prepared, not on a
    /// frame.
    pub fn segment(&mut self, model_id: u32, from: usize, to: usize) -> Result<&Segment, ActorError> {
        let key = (model_id, from, to);
        if !self.segments.contains_key(&key) {
            let engine = self.engine.clone();
            let replicas = self.replicas;
            let loaded = self.get(model_id)?;
            let seg = engine
                .prepare(&loaded.net, from, to, replicas)
                .map_err(|source| ActorError::Engine { model_id, source })?;
            tracing::debug!(model_id, from, to, engine = %seg.kind(), prepare_ms = seg.prepare_time().as_secs_f64() * 1e3, "segment prepared");
            if let Some(m) = &self.metrics {
                m.prepared(seg.prepare_time());
            }
            self.segments.insert(key, seg);
        }
        self.segments.get(&key).ok_or(ActorError::StageFailed("segment cache"))
    }

    /// Number of loaded members.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether nothing is loaded yet.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// Index of the largest logit and its softmax probability.
pub fn classify(logits: &[f32]) -> (usize, f32) {
    let class = tandem_models::train::argmax(logits);
    let max = logits.get(class).copied().unwrap_or(0.0);
    let denom: f32 = logits.iter().map(|&v| (v - max).exp()).sum();
    (class, if denom > 0.0 { 1.0 / denom } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_is_argmax_with_softmax_confidence() {
        let (c, p) = classify(&[0.0, 2.0, 0.0]);
        assert_eq!(c, 1);
        let e2 = 2f32.exp();
        assert!((p - e2 / (e2 + 2.0)).abs() < 1e-6);
    }
}
