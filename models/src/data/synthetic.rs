//! A deterministic synthetic image set for tests and smoke runs: class `k` draws a bright
//! square at a class-specific position plus seeded noise, so a tiny network learns it in a few
//! steps and every run sees the same bytes.

use super::{Dataset, Splits};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn make(channels: usize, size: usize, classes: usize, n: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pixels = vec![0u8; n * channels * size * size];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = (i % classes) as u8;
        labels.push(label);
        let img = &mut pixels[i * channels * size * size..(i + 1) * channels * size * size];
        for p in img.iter_mut() {
            *p = rng.random_range(0..64);
        }
        // A 10×10 square on a 3×4 grid of positions, picked by the class.
        let (gy, gx) = ((label as usize / 4) % 3, label as usize % 4);
        let (y0, x0) = (2 + gy * 10, 1 + gx * 7);
        for c in 0..channels {
            for y in y0..(y0 + 10).min(size) {
                for x in x0..(x0 + 10).min(size) {
                    img[c * size * size + y * size + x] = 200 + rng.random_range(0..56);
                }
            }
        }
    }
    Dataset {
        pixels,
        labels,
        channels,
        size,
        num_classes: classes,
        mean: vec![0.3; channels],
        std: vec![0.35; channels],
    }
}

/// A synthetic 32×32 train/test pair with `channels` channels and `classes` (≤ 12) classes.
pub fn synthetic(channels: usize, classes: usize, n_train: usize, n_test: usize, seed: u64) -> Splits {
    synthetic_sized(channels, 32, classes, n_train, n_test, seed)
}

/// Like [`synthetic`], at `size × size` (the squares keep their 32×32 layout, cut by a smaller frame).
pub fn synthetic_sized(
    channels: usize,
    size: usize,
    classes: usize,
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> Splits {
    Splits {
        train: make(channels, size, classes, n_train, seed),
        test: make(channels, size, classes, n_test, seed.wrapping_add(1)),
        name: "synthetic".into(),
    }
}
