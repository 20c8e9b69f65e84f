//! `images:DIR`: the PNG, JPEG and BMP files of a directory in name order, decoded with the
//! `image` crate (on a blocking thread: a large JPEG takes milliseconds) and converted to the
//! model's input — grey or RGB, resized to `size × size` (centre-crop or letterbox, [`Fit`])
//! when they are another size. A file that fails to decode ends the source with an error naming
//! it.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use tandem_models::checkpoint::InputSpec;

use super::{Fit, RawFrame, SourceError, SourceOptions};

/// The image files of a directory.
#[derive(Debug)]
pub struct ImageFrames {
    files: Vec<PathBuf>,
    next: usize,
    looped: bool,
    fit: Fit,
    input: InputSpec,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg", "bmp"].contains(&e.to_ascii_lowercase().as_str()))
}

impl ImageFrames {
    pub(super) fn open(dir: &Path, opts: &SourceOptions, input: &InputSpec) -> Result<ImageFrames, SourceError> {
        let io = |error| SourceError::Io { path: dir.to_path_buf(), error };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() && is_image(&path) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(SourceError::NoImages { dir: dir.to_path_buf() });
        }
        files.sort();
        Ok(ImageFrames { files, next: 0, looped: opts.looped, fit: opts.fit, input: input.clone() })
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub(super) async fn next(&mut self) -> Result<Option<RawFrame>, SourceError> {
        if self.next >= self.files.len() {
            if !self.looped {
                return Ok(None);
            }
            self.next = 0;
        }
        let path = self.files[self.next].clone();
        self.next += 1;
        let (input, fit) = (self.input.clone(), self.fit);
        let p = path.clone();
        let pixels = tokio::task::spawn_blocking(move || decode(&p, &input, fit))
            .await
            .map_err(|e| SourceError::Image { path, why: format!("decoder thread failed: {e}") })??;
        Ok(Some(RawFrame { pixels, pts: None, label: None }))
    }
}

/// Decode `path` and convert it to `input` (CHW bytes).
pub fn decode(path: &Path, input: &InputSpec, fit: Fit) -> Result<Vec<u8>, SourceError> {
    let img = image::open(path).map_err(|e| SourceError::Image { path: path.to_path_buf(), why: e.to_string() })?;
    Ok(convert(img, input, fit))
}

/// Convert a decoded image to `input`: fit to `size × size`, then grey or RGB, CHW.
pub fn convert(img: DynamicImage, input: &InputSpec, fit: Fit) -> Vec<u8> {
    let s = input.size as u32;
    let img = if img.dimensions() == (s, s) {
        img
    } else {
        match fit {
            Fit::Crop => img.resize_to_fill(s, s, FilterType::Triangle),
            Fit::Letterbox => {
                let inner = img.resize(s, s, FilterType::Triangle);
                let mut canvas = DynamicImage::new_rgb8(s, s);
                let (w, h) = inner.dimensions();
                image::imageops::overlay(&mut canvas, &inner, i64::from((s - w) / 2), i64::from((s - h) / 2));
                canvas
            }
        }
    };
    if input.channels == 1 {
        return img.to_luma8().into_raw();
    }
    // RGB: interleaved HWC from the decoder → planar CHW for the model.
    let rgb = img.to_rgb8();
    let plane = (s * s) as usize;
    let mut out = vec![0u8; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px.0[c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(channels: usize, size: usize) -> InputSpec {
        InputSpec { channels, size, mean: vec![0.5; channels], std: vec![0.5; channels], classes: vec![] }
    }

    #[test]
    fn same_size_grey_is_lossless_and_rgb_becomes_planar() {
        let grey = image::GrayImage::from_fn(4, 4, |x, y| image::Luma([(x * 10 + y) as u8]));
        let raw = grey.clone().into_raw();
        assert_eq!(convert(DynamicImage::ImageLuma8(grey), &input(1, 4), Fit::Crop), raw);
        let rgb = image::RgbImage::from_fn(2, 2, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let chw = convert(DynamicImage::ImageRgb8(rgb), &input(3, 2), Fit::Crop);
        assert_eq!(chw, vec![0, 1, 0, 1, 0, 0, 1, 1, 9, 9, 9, 9]);
    }

    #[test]
    fn other_sizes_are_cropped_or_letterboxed_to_the_input() {
        let wide = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(8, 4, image::Luma([200])));
        let crop = convert(wide.clone(), &input(1, 4), Fit::Crop);
        assert_eq!(crop.len(), 16);
        assert!(crop.iter().all(|&p| p == 200), "{crop:?}");
        let boxed = convert(wide, &input(1, 4), Fit::Letterbox);
        // 8×4 → 4×2 in the middle rows; black above and below.
        assert_eq!(&boxed[..4], &[0, 0, 0, 0]);
        assert_eq!(&boxed[4..12], &[200; 8]);
        assert_eq!(&boxed[12..], &[0, 0, 0, 0]);
    }

    #[test]
    fn a_directory_without_images_and_a_corrupt_file_are_errors_naming_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let err = ImageFrames::open(dir.path(), &SourceOptions::default(), &input(1, 4)).expect_err("empty");
        assert!(err.to_string().contains("no .png"), "{err}");
        let bad = dir.path().join("a.png");
        std::fs::write(&bad, b"not a png").expect("write");
        let err = decode(&bad, &input(1, 4), Fit::Crop).expect_err("corrupt").to_string();
        assert!(err.contains("a.png"), "{err}");
    }
}
