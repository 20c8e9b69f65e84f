//! Series members by id, loaded once and run between partition points.
//!
//! The device's front thread keeps a [`ModelCache`]; the edge's model store keeps one too and
//! hands clones of loaded nets to its inference threads (a burn module clone shares the
//! weights).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use tandem_models::checkpoint;
use tandem_models::series::Series;
use tandem_models::zoo::{Net, NetSpec};

use crate::error::ActorError;

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

    /// Run the layers `from..to` on `x` of `shape` (NCHW). Returns the activation and its
    /// shape; at `end` the logits as `[N, classes, 1, 1]`.
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

/// Members loaded on first use, kept by id.
#[derive(Debug)]
pub struct ModelCache {
    series: Series,
    dir: PathBuf,
    models: HashMap<u32, Loaded>,
}

impl ModelCache {
    /// Read the manifest of the series in `dir`.
    pub fn open(dir: &Path) -> Result<ModelCache, ActorError> {
        let series = Series::load(dir).map_err(|source| ActorError::Series { dir: dir.to_path_buf(), source })?;
        Ok(ModelCache { series, dir: dir.to_path_buf(), models: HashMap::new() })
    }

    /// The manifest.
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// The member, loading it on first use.
    pub fn get(&mut self, model_id: u32) -> Result<&Loaded, ActorError> {
        if !self.models.contains_key(&model_id) {
            let loaded = load_member(&self.series, &self.dir, model_id)?;
            self.models.insert(model_id, loaded);
        }
        self.models.get(&model_id).ok_or(ActorError::StageFailed("model cache"))
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
