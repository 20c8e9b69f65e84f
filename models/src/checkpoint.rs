//! A model on disk is a directory: `model.toml` (architecture, widths, training metadata,
//! accuracy) next to `weights.safetensors`. Loading builds the network from the toml and then
//! loads the weights with shape validation, so a tampered or mismatched file is a clear error
//! naming the tensor, never a panic. Writes go to a temporary name and are renamed into place.

use crate::error::{ModelError, Result};
use crate::params::ParamMap;
use crate::zoo::{Net, NetSpec};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the architecture and metadata.
pub const MODEL_TOML: &str = "model.toml";
/// File name of the weights.
pub const WEIGHTS: &str = "weights.safetensors";

/// How a checkpoint came to be.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `train`, `step1`, `step2`, …
    pub stage: String,
    /// Data set name.
    pub dataset: String,
    /// Epochs of training or fine-tuning that produced these weights (fractional allowed).
    pub epochs: f64,
    /// Wall-clock seconds spent producing them.
    pub wall_s: f64,
    /// RNG seed.
    pub seed: u64,
    /// Free-form detail (optimizer, schedule, parent model).
    #[serde(default)]
    pub detail: String,
}

/// The contents of `model.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Architecture and widths.
    pub spec: NetSpec,
    /// Test accuracy in [0, 1], evaluated in eval mode (running BN statistics).
    pub accuracy: Option<f64>,
    /// How these weights were produced.
    pub provenance: Provenance,
}

/// Write `contents` to `path` atomically (temporary file + rename in the same directory).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// Save a model directory.
pub fn save(dir: &Path, net: &Net, card: &ModelCard) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let weights = dir.join(WEIGHTS);
    let tmp: PathBuf = dir.join("weights.safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp).overwrite(true);
    net.save_into(&mut store).map_err(|e| ModelError::checkpoint(&tmp, format!("writing weights: {e}")))?;
    std::fs::rename(&tmp, &weights).map_err(|e| ModelError::io(&weights, e))?;
    let toml = toml::to_string_pretty(card)
        .map_err(|e| ModelError::checkpoint(dir, format!("serialising model.toml: {e}")))?;
    write_atomic(&dir.join(MODEL_TOML), toml.as_bytes())
}

/// Read and validate `model.toml`.
pub fn read_card(dir: &Path) -> Result<ModelCard> {
    let path = dir.join(MODEL_TOML);
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let card: ModelCard = toml::from_str(&text).map_err(|e| ModelError::checkpoint(&path, e.to_string()))?;
    card.spec.validate().map_err(|e| ModelError::checkpoint(&path, e.to_string()))?;
    Ok(card)
}

/// Load a model directory onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(Net, ModelCard)> {
    let card = read_card(dir)?;
    let path = dir.join(WEIGHTS);
    if !path.is_file() {
        return Err(ModelError::checkpoint(&path, "weights file is missing"));
    }
    let bytes = std::fs::read(&path).map_err(|e| ModelError::io(&path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(true).allow_partial(false);
    // Read the file into a map first: the store reports a mis-shaped tensor, but a plain map
    // lets us name it with the expected and found shapes.
    let mut probe = Net::new(&card.spec, device);
    match probe.load_from(&mut store) {
        Ok(_) => Ok((probe, card)),
        Err(e) => Err(ModelError::checkpoint(&path, explain_store_error(&e.to_string()))),
    }
}

fn explain_store_error(raw: &str) -> String {
    // The store's messages carry the tensor path and both shapes; keep them, bounded.
    let mut s = raw.replace('\n', " ");
    s.truncate(600);
    s
}

/// Load a model directory's weights as a [`ParamMap`] plus its card (for surgery).
pub fn load_params(dir: &Path, device: &Device) -> Result<(ParamMap, ModelCard)> {
    let (net, card) = load(dir, device)?;
    Ok((ParamMap::from_module(&net)?, card))
}
