//! Image classification data held as bytes in memory, plus the batching that turns it into
//! normalised f32 tensors.
//!
//! Images are stored as `u8` (61 MB for Fashion-MNIST's 60 000 padded 32×32 images rather than
//! 245 MB as f32) and normalised per channel when a batch is built; augmentation (random crop
//! with 4-px zero padding and horizontal flip) happens at that point too, from a seeded RNG, so
//! an epoch is reproducible from `(seed, epoch)`.

mod cifar;
mod idx;
mod loader;
pub mod scenes;
mod synthetic;

pub use cifar::{MEAN as CIFAR10_MEAN, STD as CIFAR10_STD, load_cifar10};
pub use idx::{
    DEFAULT_FASHION_MNIST_DIR, FMNIST_MEAN, FMNIST_STD, load_fashion_mnist, read_idx_images, read_idx_labels,
};
pub use loader::{Augment, Batch, BatchIter};
pub use scenes::{SceneSplit, ScenesConfig};
pub use synthetic::{synthetic, synthetic_sized};

use crate::error::{ModelError, Result};
use std::path::Path;

/// A labelled image set: `len` images of `channels × size × size` bytes, row-major, CHW.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Pixels, `len * channels * size * size` bytes.
    pub pixels: Vec<u8>,
    /// One label per image, each `< num_classes`.
    pub labels: Vec<u8>,
    /// Channels per image (1 for Fashion-MNIST, 3 for CIFAR-10).
    pub channels: usize,
    /// Height and width (images are square; Fashion-MNIST is padded 28 → 32).
    pub size: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Per-channel mean of the pixels scaled to [0, 1], used for normalisation.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of the pixels scaled to [0, 1].
    pub std: Vec<f32>,
}

/// The train and test splits of one data set.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training split.
    pub train: Dataset,
    /// Test split.
    pub test: Dataset,
    /// Human-readable name (`fashion-mnist`, `cifar10`, `synthetic`).
    pub name: String,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// The raw bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Image `i` normalised to f32, CHW.
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.image_len()];
        self.normalise_into(self.image(i), &mut out);
        out
    }

    /// Normalise one image's bytes into `out` (same length).
    pub fn normalise_into(&self, src: &[u8], out: &mut [f32]) {
        let plane = self.size * self.size;
        for c in 0..self.channels {
            let scale = 1.0 / (255.0 * self.std[c]);
            let shift = self.mean[c] / self.std[c];
            for (o, &p) in out[c * plane..(c + 1) * plane].iter_mut().zip(&src[c * plane..(c + 1) * plane]) {
                *o = p as f32 * scale - shift;
            }
        }
    }

    /// The first `n` images (or all when fewer), e.g. a quick evaluation subset.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            ..self.clone_meta()
        }
    }

    fn clone_meta(&self) -> Dataset {
        Dataset {
            pixels: Vec::new(),
            labels: Vec::new(),
            channels: self.channels,
            size: self.size,
            num_classes: self.num_classes,
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }

    /// Check internal consistency; used by every reader before returning.
    pub(crate) fn validate(&self, origin: &Path) -> Result<()> {
        if self.pixels.len() != self.len() * self.image_len() {
            return Err(ModelError::bad_data(
                origin,
                format!(
                    "{} pixel bytes for {} labels of {} bytes each",
                    self.pixels.len(),
                    self.len(),
                    self.image_len()
                ),
            ));
        }
        if let Some(bad) = self.labels.iter().find(|&&l| l as usize >= self.num_classes) {
            return Err(ModelError::bad_data(origin, format!("label {bad} out of range 0..{}", self.num_classes)));
        }
        Ok(())
    }
}

/// Fashion-MNIST's class names, index = label.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
/// CIFAR-10's class names, index = label.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The class names of data set `name` (`fashion-mnist`, `cifar10`, `scenes[:…]`, which has
/// Fashion-MNIST's); other sets, or a count that does not match, get their numbers (`"0"`, `"1"`, …).
pub fn class_names(name: &str, num_classes: usize) -> Vec<String> {
    let known: &[&str] = match name.parse::<DataSource>() {
        Ok(DataSource::FashionMnist | DataSource::Scenes(_)) => &FASHION_MNIST_CLASSES,
        Ok(DataSource::Cifar10) => &CIFAR10_CLASSES,
        _ => &[],
    };
    if known.len() == num_classes {
        known.iter().map(|s| s.to_string()).collect()
    } else {
        (0..num_classes).map(|i| i.to_string()).collect()
    }
}

/// The per-channel mean and std data set `name`'s loader normalises with, for `channels`
/// channels; `None` for an unknown set or channel count.
pub fn normalisation(name: &str, channels: usize) -> Option<(Vec<f32>, Vec<f32>)> {
    match (name.parse::<DataSource>().ok()?, channels) {
        (DataSource::FashionMnist, 1) => Some((vec![idx::FMNIST_MEAN], vec![idx::FMNIST_STD])),
        (DataSource::Cifar10, 3) => Some((cifar::MEAN.to_vec(), cifar::STD.to_vec())),
        (DataSource::Scenes(_), 3) => Some((scenes::MEAN.to_vec(), scenes::STD.to_vec())),
        (DataSource::Synthetic, c) => Some((vec![0.3; c], vec![0.35; c])),
        _ => None,
    }
}

/// Which data set to load. Written and read as its name (`fashion-mnist`, `cifar10`,
/// `synthetic`, `scenes[:size=N,seed=S,train=N,test=N]`), which is also the [`Splits::name`]
/// its loader returns, so a card's or series' data set parses back to the same images.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataSource {
    /// Fashion-MNIST as gzipped IDX files in a directory.
    FashionMnist,
    /// CIFAR-10 binary batches in a directory.
    Cifar10,
    /// Deterministic synthetic images (tests, smoke runs).
    Synthetic,
    /// Camera-like colour frames generated from Fashion-MNIST ([`scenes`]).
    Scenes(ScenesConfig),
}

impl std::str::FromStr for DataSource {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fashion-mnist" | "fmnist" => Ok(Self::FashionMnist),
            "cifar10" | "cifar-10" => Ok(Self::Cifar10),
            "synthetic" => Ok(Self::Synthetic),
            "scenes" => Ok(Self::Scenes(ScenesConfig::default())),
            other => match other.strip_prefix("scenes:") {
                Some(params) => Ok(Self::Scenes(ScenesConfig::parse_params(params)?)),
                None => Err(ModelError::Config(format!(
                    "unknown data set {other:?} (expected fashion-mnist, cifar10, synthetic or scenes[:size=N,seed=S,train=N,test=N])"
                ))),
            },
        }
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FashionMnist => f.write_str("fashion-mnist"),
            Self::Cifar10 => f.write_str("cifar10"),
            Self::Synthetic => f.write_str("synthetic"),
            Self::Scenes(cfg) => cfg.fmt(f),
        }
    }
}

impl TryFrom<String> for DataSource {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<DataSource> for String {
    fn from(d: DataSource) -> String {
        d.to_string()
    }
}

/// Load a data set's train and test splits. `dir` defaults to the Debian package location for
/// Fashion-MNIST (and scenes, which are generated from it); it is required for CIFAR-10 and
/// ignored for synthetic data.
pub fn load(source: &DataSource, dir: Option<&Path>) -> Result<Splits> {
    match source {
        DataSource::FashionMnist => load_fashion_mnist(dir.unwrap_or(Path::new(DEFAULT_FASHION_MNIST_DIR))),
        DataSource::Scenes(cfg) => {
            scenes::scenes(&load_fashion_mnist(dir.unwrap_or(Path::new(DEFAULT_FASHION_MNIST_DIR)))?, cfg)
        }
        DataSource::Cifar10 => {
            let dir = dir.ok_or_else(|| ModelError::Config("cifar10 needs --data DIR".into()))?;
            load_cifar10(dir)
        }
        DataSource::Synthetic => Ok(synthetic(1, 10, 2048, 512, 7)),
    }
}

/// Load only a data set's test split: for scenes this generates no training frame (the full
/// train split is 737 MB at 64×64); for the others it is [`load`]'s test split.
pub fn load_test(source: &DataSource, dir: Option<&Path>) -> Result<Dataset> {
    match source {
        DataSource::Scenes(cfg) => {
            let fm = load_fashion_mnist(dir.unwrap_or(Path::new(DEFAULT_FASHION_MNIST_DIR)))?;
            scenes::generate(&fm.test, cfg, SceneSplit::Test, cfg.test.unwrap_or(fm.test.len()))
        }
        other => Ok(load(other, dir)?.test),
    }
}
