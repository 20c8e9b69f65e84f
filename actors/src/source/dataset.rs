//! A data set played as a video: its images in order, looped, labels known.

use std::path::Path;
use tandem_models::checkpoint::InputSpec;
use tandem_models::data::{self, DataSource, Dataset, SceneSplit, ScenesConfig};

use super::{DataSet, RawFrame, SourceError, SourceOptions, SourceSpec, Split, format_of};

/// Most frames a `scenes` source generates (the first of its split).
pub const SCENES_FRAMES: usize = 10_000;

/// The frames of a data set split, looped.
#[derive(Debug)]
pub struct DatasetFrames {
    images: Dataset,
    next: usize,
}

impl DatasetFrames {
    /// Load `set`'s `split`; its images must be what the model takes (no conversion: a data
    /// set is what models are trained on).
    pub(super) fn open(
        spec: &SourceSpec,
        set: DataSet,
        split: Split,
        opts: &SourceOptions,
        input: &InputSpec,
    ) -> Result<DatasetFrames, SourceError> {
        let fmnist_dir = || opts.data_dir.as_deref().unwrap_or(Path::new(data::DEFAULT_FASHION_MNIST_DIR));
        let pick = |splits: data::Splits| match split {
            Split::Test => splits.test,
            Split::Train => splits.train,
        };
        let images = match set {
            DataSet::FashionMnist => data::load(&DataSource::FashionMnist, opts.data_dir.as_deref()).map(pick),
            DataSet::Cifar10 => data::load(&DataSource::Cifar10, opts.data_dir.as_deref()).map(pick),
            // As many classes as the model has, so every label is one it can predict.
            DataSet::Synthetic => {
                Ok(pick(data::synthetic(input.channels, input.classes.len().clamp(1, 12), 0, 512, 7)))
            }
            // Generated at the model's size (default seed), only the split played and at most
            // SCENES_FRAMES of it: a device holds 123 MB for 10 000 64×64 frames.
            DataSet::Scenes => data::load_fashion_mnist(fmnist_dir()).and_then(|fm| {
                let cfg = ScenesConfig { size: input.size, ..ScenesConfig::default() };
                let (items, which) = match split {
                    Split::Test => (&fm.test, SceneSplit::Test),
                    Split::Train => (&fm.train, SceneSplit::Train),
                };
                data::scenes::generate(items, &cfg, which, items.len().min(SCENES_FRAMES))
            }),
        }
        .map_err(|error| SourceError::Data { source_uri: spec.to_string(), error })?;
        if images.channels != input.channels || images.size != input.size {
            let got = InputSpec { channels: images.channels, size: images.size, ..input.clone() };
            return Err(SourceError::Format {
                source_uri: spec.to_string(),
                got: format!("{} images", format_of(&got)),
                want: format_of(input),
            });
        }
        if images.is_empty() {
            return Err(SourceError::Format {
                source_uri: spec.to_string(),
                got: "no image".into(),
                want: format_of(input),
            });
        }
        Ok(DatasetFrames { images, next: 0 })
    }

    /// Play `images` as they are (tests and callers that hold a data set already).
    pub fn new(images: Dataset) -> DatasetFrames {
        DatasetFrames { images, next: 0 }
    }

    /// The input the images are: their shape and normalisation, numbered classes.
    pub fn input(&self) -> InputSpec {
        InputSpec::of_dataset(&self.images, "")
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The next image (never ends: the set loops).
    pub fn next_frame(&mut self) -> Option<RawFrame> {
        if self.images.is_empty() {
            return None;
        }
        let i = self.next % self.images.len().max(1);
        self.next = self.next.wrapping_add(1);
        Some(RawFrame { pixels: self.images.image(i).to_vec(), pts: None, label: self.images.labels.get(i).copied() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(channels: usize, size: usize) -> InputSpec {
        InputSpec { channels, size, mean: vec![0.5; channels], std: vec![0.5; channels], classes: vec!["c".into(); 10] }
    }

    /// `scenes` plays generated frames at the model's size, labelled with their subjects'
    /// classes (the Fashion-MNIST test items, in order); a grey model is refused, naming both.
    #[test]
    fn scenes_play_at_the_models_size_with_labels() {
        let spec: SourceSpec = "scenes".parse().expect("uri");
        let opts = SourceOptions::default();
        let mut frames = DatasetFrames::open(&spec, DataSet::Scenes, Split::Test, &opts, &input(3, 32)).expect("open");
        let fm = data::load(&DataSource::FashionMnist, None).expect("Fashion-MNIST (dataset-fashion-mnist package)");
        for i in 0..3 {
            let f = frames.next_frame().expect("a frame");
            assert_eq!(f.pixels.len(), 3 * 32 * 32);
            assert_eq!(f.label, Some(fm.test.labels[i]));
        }
        let err = DatasetFrames::open(&spec, DataSet::Scenes, Split::Test, &opts, &input(1, 32)).expect_err("grey");
        assert!(err.to_string().contains("RGB 32x32") && err.to_string().contains("grey 32x32"), "{err}");
    }
}
