//! A data set played as a video: its images in order, looped, labels known.

use tandem_models::checkpoint::InputSpec;
use tandem_models::data::{self, DataSource, Dataset};

use super::{DataSet, RawFrame, SourceError, SourceOptions, SourceSpec, Split, format_of};

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
        let splits = match set {
            DataSet::FashionMnist => data::load(&DataSource::FashionMnist, opts.data_dir.as_deref()),
            DataSet::Cifar10 => data::load(&DataSource::Cifar10, opts.data_dir.as_deref()),
            // As many classes as the model has, so every label is one it can predict.
            DataSet::Synthetic => Ok(data::synthetic(input.channels, input.classes.len().clamp(1, 12), 0, 512, 7)),
        }
        .map_err(|error| SourceError::Data { source_uri: spec.to_string(), error })?;
        let images = match split {
            Split::Test => splits.test,
            Split::Train => splits.train,
        };
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
