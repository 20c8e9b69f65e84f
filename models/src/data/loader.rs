//! Batches of normalised f32 images, in a seeded random order, optionally augmented.

use super::Dataset;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

/// Training-time augmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Augment {
    /// Images as stored (evaluation).
    None,
    /// Random crop from the image zero-padded by 4 px, and a random horizontal flip.
    CropFlip,
}

/// One batch: `len × channels × size × size` normalised floats and labels.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Normalised pixels, NCHW.
    pub images: Vec<f32>,
    /// Labels.
    pub labels: Vec<i64>,
    /// Batch length.
    pub len: usize,
}

/// Iterates a dataset in batches; shuffled when seeded.
pub struct BatchIter<'a> {
    ds: &'a Dataset,
    order: Vec<usize>,
    pos: usize,
    batch: usize,
    augment: Augment,
    rng: StdRng,
}

impl<'a> BatchIter<'a> {
    /// Sequential order (evaluation).
    pub fn sequential(ds: &'a Dataset, batch: usize) -> Self {
        Self {
            ds,
            order: (0..ds.len()).collect(),
            pos: 0,
            batch: batch.max(1),
            augment: Augment::None,
            rng: StdRng::seed_from_u64(0),
        }
    }

    /// Shuffled order from `seed`, with augmentation.
    pub fn shuffled(ds: &'a Dataset, batch: usize, seed: u64, augment: Augment) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..ds.len()).collect();
        order.shuffle(&mut rng);
        Self { ds, order, pos: 0, batch: batch.max(1), augment, rng }
    }

    /// Number of batches this iterator yields in total.
    pub fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch)
    }

    fn augment_into(&mut self, src: &[u8], out: &mut [f32]) {
        let ds = self.ds;
        let s = ds.size;
        let mut tmp = vec![0.0f32; out.len()];
        ds.normalise_into(src, &mut tmp);
        // The padding value is a zero pixel, normalised.
        let (dy, dx) = (self.rng.random_range(0..=8i32) - 4, self.rng.random_range(0..=8i32) - 4);
        let flip = self.rng.random_bool(0.5);
        for c in 0..ds.channels {
            let zero = -ds.mean[c] / ds.std[c];
            let plane = &tmp[c * s * s..(c + 1) * s * s];
            let dst = &mut out[c * s * s..(c + 1) * s * s];
            for y in 0..s {
                let sy = y as i32 + dy;
                for x in 0..s {
                    let xx = if flip { s - 1 - x } else { x };
                    let sx = xx as i32 + dx;
                    dst[y * s + x] = if sy >= 0 && sy < s as i32 && sx >= 0 && sx < s as i32 {
                        plane[sy as usize * s + sx as usize]
                    } else {
                        zero
                    };
                }
            }
        }
    }
}

impl Iterator for BatchIter<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch).min(self.order.len());
        let idx: Vec<usize> = self.order[self.pos..end].to_vec();
        self.pos = end;
        let n = self.ds.image_len();
        let mut images = vec![0.0f32; idx.len() * n];
        let mut labels = Vec::with_capacity(idx.len());
        for (k, &i) in idx.iter().enumerate() {
            let out = &mut images[k * n..(k + 1) * n];
            match self.augment {
                Augment::None => self.ds.normalise_into(self.ds.image(i), out),
                Augment::CropFlip => self.augment_into(self.ds.image(i), out),
            }
            labels.push(self.ds.labels[i] as i64);
        }
        Some(Batch { len: idx.len(), images, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    #[test]
    fn covers_every_image_once_and_is_reproducible() {
        let s = synthetic(1, 10, 103, 10, 1);
        let a: Vec<i64> = BatchIter::shuffled(&s.train, 16, 5, Augment::CropFlip).flat_map(|b| b.labels).collect();
        let b: Vec<i64> = BatchIter::shuffled(&s.train, 16, 5, Augment::CropFlip).flat_map(|b| b.labels).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 103);
        let mut counts = [0; 10];
        for l in a {
            counts[l as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<i32>(), 103);
        assert_eq!(BatchIter::sequential(&s.train, 16).num_batches(), 7);
    }

    #[test]
    fn sequential_batches_are_the_normalised_images() {
        let s = synthetic(3, 4, 5, 5, 2);
        let b = BatchIter::sequential(&s.test, 8).next().expect("one batch");
        assert_eq!(b.len, 5);
        assert_eq!(&b.images[..s.test.image_len()], &s.test.image_f32(0)[..]);
    }
}
