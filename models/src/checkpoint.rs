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

/// The input a model was trained on: what every frame must be converted to before inference
/// (`[input]` of `model.toml`). Pixels are scaled to [0, 1] and normalised per channel,
/// `(p / 255 - mean[c]) / std[c]`, in CHW order — exactly what training did
/// ([`crate::data::Dataset::normalise_into`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// 1 (grey) or 3 (RGB, in that order).
    pub channels: usize,
    /// Height and width in pixels (inputs are square).
    pub size: usize,
    /// Per-channel mean of the [0, 1]-scaled training pixels (`channels` values).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of the [0, 1]-scaled training pixels (`channels` values, > 0).
    pub std: Vec<f32>,
    /// Class names, index = class (as many as the model has outputs).
    pub classes: Vec<String>,
}

impl InputSpec {
    /// The input of a model trained on `data` (data set `name`, for the class names).
    pub fn of_dataset(data: &crate::data::Dataset, name: &str) -> InputSpec {
        InputSpec {
            channels: data.channels,
            size: data.size,
            mean: data.mean.clone(),
            std: data.std.clone(),
            classes: crate::data::class_names(name, data.num_classes),
        }
    }

    /// The input of a card written before cards described it: the statistics the named data
    /// set's loader normalises with (Fashion-MNIST, CIFAR-10, synthetic), sized by `spec`.
    /// An unknown data set gets mean 0.5 / std 0.5 and numbered classes.
    pub fn assumed(dataset: &str, spec: &NetSpec) -> InputSpec {
        let (mean, std) = crate::data::normalisation(dataset, spec.in_channels)
            .unwrap_or_else(|| (vec![0.5; spec.in_channels], vec![0.5; spec.in_channels]));
        InputSpec {
            channels: spec.in_channels,
            size: spec.input_size,
            mean,
            std,
            classes: crate::data::class_names(dataset, spec.num_classes),
        }
    }

    /// Consistency with the network: channels 1 or 3 and equal to the spec's, size equal,
    /// one positive finite std and a finite mean per channel, one name per class.
    pub fn validate(&self, spec: &NetSpec) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(format!("model input: {m}")));
        if self.channels != 1 && self.channels != 3 {
            return bad(format!("{} channels (1 grey or 3 RGB)", self.channels));
        }
        if self.channels != spec.in_channels || self.size != spec.input_size {
            return bad(format!(
                "{}x{}x{} but the network takes {}x{}x{}",
                self.channels, self.size, self.size, spec.in_channels, spec.input_size, spec.input_size
            ));
        }
        if self.mean.len() != self.channels || self.std.len() != self.channels {
            return bad(format!(
                "{} means and {} stds for {} channels",
                self.mean.len(),
                self.std.len(),
                self.channels
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite()) || self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return bad("mean must be finite and std finite and > 0".into());
        }
        if self.classes.len() != spec.num_classes {
            return bad(format!("{} class names for {} classes", self.classes.len(), spec.num_classes));
        }
        Ok(())
    }

    /// Bytes of one converted frame, `channels * size * size` (CHW, u8).
    pub fn frame_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Normalise one CHW u8 frame (`frame_len` bytes) into f32, as training did.
    pub fn normalise(&self, src: &[u8]) -> Vec<f32> {
        let plane = self.size * self.size;
        let mut out = vec![0.0; self.frame_len()];
        for c in 0..self.channels {
            let scale = 1.0 / (255.0 * self.std[c]);
            let shift = self.mean[c] / self.std[c];
            let (o, s) = (&mut out[c * plane..(c + 1) * plane], src.get(c * plane..(c + 1) * plane).unwrap_or(&[]));
            for (o, &p) in o.iter_mut().zip(s) {
                *o = p as f32 * scale - shift;
            }
        }
        out
    }

    /// The name of class `i` (its number when the card names fewer classes).
    pub fn class_name(&self, i: usize) -> String {
        self.classes.get(i).cloned().unwrap_or_else(|| i.to_string())
    }
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
    /// The input it was trained on. Absent in cards written before cards described it; read
    /// it through [`ModelCard::input`], which supplies the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputSpec>,
}

impl ModelCard {
    /// The input this model takes: the card's `[input]`, or for an older card the one its
    /// data set implies ([`InputSpec::assumed`]).
    pub fn input(&self) -> InputSpec {
        self.input.clone().unwrap_or_else(|| InputSpec::assumed(&self.provenance.dataset, &self.spec))
    }
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
    card.input().validate(&card.spec).map_err(|e| ModelError::checkpoint(&path, e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo::Arch;

    #[test]
    fn a_card_without_input_gets_its_data_sets_input_and_new_cards_round_trip() {
        let spec = NetSpec::new(Arch::Vgg16, 1, 32, 10, Arch::Vgg16.base_widths()).expect("spec");
        let card = ModelCard {
            spec: spec.clone(),
            accuracy: None,
            provenance: Provenance { dataset: "fashion-mnist".into(), ..Default::default() },
            input: None,
        };
        let text = toml::to_string_pretty(&card).expect("toml");
        assert!(!text.contains("[input]"), "an unknown input is not written: {text}");
        let back: ModelCard = toml::from_str(&text).expect("an old card parses");
        let input = back.input();
        assert_eq!((input.channels, input.size), (1, 32));
        assert_eq!(input.mean, vec![0.2860]);
        assert_eq!(input.classes[0], "T-shirt/top");
        input.validate(&spec).expect("valid");
        let with = ModelCard { input: Some(InputSpec { classes: vec!["a".into(); 10], ..input }), ..card };
        let text = toml::to_string_pretty(&with).expect("toml");
        assert!(text.contains("[input]"), "{text}");
        assert_eq!(toml::from_str::<ModelCard>(&text).expect("parse"), with);
    }

    #[test]
    fn an_input_that_does_not_fit_the_network_is_refused_naming_both() {
        let spec = NetSpec::new(Arch::Vgg16, 1, 32, 10, Arch::Vgg16.base_widths()).expect("spec");
        let mut input = InputSpec::assumed("fashion-mnist", &spec);
        input.size = 28;
        let err = input.validate(&spec).expect_err("size mismatch").to_string();
        assert!(err.contains("1x28x28") && err.contains("1x32x32"), "{err}");
        let input = InputSpec { channels: 4, ..InputSpec::assumed("fashion-mnist", &spec) };
        assert!(input.validate(&spec).is_err());
        let input = InputSpec { std: vec![0.0], ..InputSpec::assumed("fashion-mnist", &spec) };
        assert!(input.validate(&spec).is_err());
    }

    #[test]
    fn normalise_matches_the_training_loader() {
        let ds = crate::data::synthetic(1, 10, 4, 4, 3).test;
        let input = InputSpec::of_dataset(&ds, "synthetic");
        assert_eq!(input.normalise(ds.image(1)), ds.image_f32(1));
    }
}
