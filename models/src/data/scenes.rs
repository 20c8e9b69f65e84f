//! `scenes`: a camera-like colour data set generated deterministically from Fashion-MNIST.
//!
//! Each frame is `3 × size × size` (default 64) and imitates what a fixed camera sees: a
//! background lit unevenly (a base colour under a linear lighting gradient in a random
//! direction and a lens vignette), covered by low-frequency texture (two octaves of smoothly
//! interpolated value noise, slightly coloured, like a wall or floor out of focus), partial crops
//! of 2–4 *other* Fashion-MNIST items of the same split as clutter (a random rectangle of each
//! item, at a random scale and position, possibly cut by the frame edge, drawn at 25–50 %
//! opacity in a random colour so it stays fainter than the subject), then the subject: one item
//! scaled to 45–85 % of the frame, placed at a random position wholly inside it, tinted a random
//! colour whose brightness is on the other side of mid-grey from the background under it (so
//! the subject is visible, as a camera's subject is), its own grey levels shading the tint; last,
//! per-pixel Gaussian sensor noise with a per-frame σ of 2–6 grey levels, independent per
//! channel. The label is the subject's class. The construction was fixed before any planner
//! measurement and is not tuned to them.
//!
//! Frame `i` of a split is drawn from its own RNG seeded by `(seed, split, i)`, so any prefix of
//! a split is the same bytes whatever the count, frames can be generated in parallel, and the
//! same seed gives the same bytes (with this build's `rand`). Frame `i`'s subject is item
//! `i mod n` of the Fashion-MNIST split it comes from, and its clutter is drawn from the same
//! split: the scenes test split reads only Fashion-MNIST test items, so train and test are
//! disjoint by construction. Generated on the fly at load time (`--dataset scenes[:…]`), never
//! stored; `tandem data scenes` writes frames as PNG to look at.

use super::{Dataset, Splits};
use crate::error::{ModelError, Result};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rayon::prelude::*;

/// Default frame size (pixels, square).
pub const DEFAULT_SIZE: usize = 64;
/// Default seed.
pub const DEFAULT_SEED: u64 = 1;
/// Smallest and largest accepted frame size.
pub const SIZE_RANGE: std::ops::RangeInclusive<usize> = 16..=512;
/// Per-channel mean of scenes pixels scaled to [0, 1]: measured once on 10 000 frames of the
/// default train split (`tandem data entropy` prints it) and fixed, so that every split, count
/// and seed normalises alike.
pub const MEAN: [f32; 3] = [0.4413, 0.4421, 0.4408];
/// Per-channel standard deviation, measured like [`MEAN`].
pub const STD: [f32; 3] = [0.1818, 0.1811, 0.1820];

/// Which scenes to generate: the parameters of `--dataset scenes[:size=N,seed=S,train=N,test=N]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenesConfig {
    /// Frame height and width.
    pub size: usize,
    /// Seed of every frame's RNG.
    pub seed: u64,
    /// Frames in the train split; `None` = one per Fashion-MNIST train item (60 000, 737 MB at
    /// 64×64: pass fewer on small machines).
    pub train: Option<usize>,
    /// Frames in the test split; `None` = one per Fashion-MNIST test item (10 000).
    pub test: Option<usize>,
}

impl Default for ScenesConfig {
    fn default() -> Self {
        Self { size: DEFAULT_SIZE, seed: DEFAULT_SEED, train: None, test: None }
    }
}

impl ScenesConfig {
    /// Check the size range.
    pub fn validate(&self) -> Result<()> {
        if !SIZE_RANGE.contains(&self.size) {
            return Err(ModelError::Config(format!(
                "scenes size {} out of range {}..={}",
                self.size,
                SIZE_RANGE.start(),
                SIZE_RANGE.end()
            )));
        }
        Ok(())
    }

    /// Parse the part after `scenes:` — comma-separated `key=value` with keys `size`, `seed`,
    /// `train`, `test`, each at most once; empty = defaults.
    pub fn parse_params(s: &str) -> Result<Self> {
        let mut cfg = Self::default();
        let mut seen = Vec::new();
        for kv in s.split(',').filter(|p| !p.is_empty()) {
            let bad = |why: &str| ModelError::Config(format!("scenes parameter {kv:?}: {why}"));
            let (k, v) = kv.split_once('=').ok_or_else(|| bad("expected key=value"))?;
            if seen.contains(&k) {
                return Err(bad("given twice"));
            }
            seen.push(k);
            let n: u64 = v.parse().map_err(|_| bad("value is not a non-negative integer"))?;
            let count = || usize::try_from(n).map_err(|_| bad("too large"));
            match k {
                "size" => cfg.size = count()?,
                "seed" => cfg.seed = n,
                "train" => cfg.train = Some(count()?),
                "test" => cfg.test = Some(count()?),
                _ => return Err(bad("unknown key (expected size, seed, train or test)")),
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl std::fmt::Display for ScenesConfig {
    /// `scenes` for the defaults, else `scenes:` and the parameters that differ, in a fixed
    /// order: the canonical name, which parses back to the same config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.size != DEFAULT_SIZE {
            parts.push(format!("size={}", self.size));
        }
        if self.seed != DEFAULT_SEED {
            parts.push(format!("seed={}", self.seed));
        }
        if let Some(n) = self.train {
            parts.push(format!("train={n}"));
        }
        if let Some(n) = self.test {
            parts.push(format!("test={n}"));
        }
        if parts.is_empty() { f.write_str("scenes") } else { write!(f, "scenes:{}", parts.join(",")) }
    }
}

/// Which split a frame belongs to; part of its RNG seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SceneSplit {
    /// Drawn from Fashion-MNIST's train items.
    Train,
    /// Drawn from Fashion-MNIST's test items.
    Test,
}

/// Generate both splits from Fashion-MNIST's (grey, square, as [`super::load_fashion_mnist`]
/// returns them): the train split from `fmnist.train` only, the test split from `fmnist.test`.
pub fn scenes(fmnist: &Splits, cfg: &ScenesConfig) -> Result<Splits> {
    cfg.validate()?;
    Ok(Splits {
        train: generate(&fmnist.train, cfg, SceneSplit::Train, cfg.train.unwrap_or(fmnist.train.len()))?,
        test: generate(&fmnist.test, cfg, SceneSplit::Test, cfg.test.unwrap_or(fmnist.test.len()))?,
        name: cfg.to_string(),
    })
}

/// `count` frames of `split` with subjects and clutter from `items` (grey, square). Frame `i`
/// does not depend on `count`.
pub fn generate(items: &Dataset, cfg: &ScenesConfig, split: SceneSplit, count: usize) -> Result<Dataset> {
    cfg.validate()?;
    if items.channels != 1 || items.is_empty() {
        return Err(ModelError::Config(format!(
            "scenes are drawn from a grey item set; got {} images of {} channels",
            items.len(),
            items.channels
        )));
    }
    let s = cfg.size;
    let frame = 3 * s * s;
    let mut pixels = vec![0u8; count * frame];
    let mut labels = vec![0u8; count];
    pixels.par_chunks_mut(frame.max(1)).zip(labels.par_iter_mut()).enumerate().for_each(|(i, (px, label))| {
        *label = render(items, cfg, split, i, px);
    });
    let ds = Dataset {
        pixels,
        labels,
        channels: 3,
        size: s,
        num_classes: items.num_classes,
        mean: MEAN.to_vec(),
        std: STD.to_vec(),
    };
    ds.validate(std::path::Path::new("scenes"))?;
    Ok(ds)
}

fn frame_rng(cfg: &ScenesConfig, split: SceneSplit, i: usize) -> StdRng {
    // SplitMix64's finaliser over (seed, split, index): nearby indices get unrelated streams.
    let tag = match split {
        SceneSplit::Train => 0x5452_4149_4e00_0000u64,
        SceneSplit::Test => 0x5445_5354_0000_0000u64,
    };
    let mut z = cfg.seed ^ tag ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// A smooth random field: a `(cells+1)²` lattice of values in [-1, 1], interpolated with
/// smoothstep weights.
struct ValueNoise {
    cells: usize,
    lattice: Vec<f32>,
}

impl ValueNoise {
    fn new(rng: &mut StdRng, cells: usize) -> Self {
        let lattice = (0..(cells + 1) * (cells + 1)).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Self { cells, lattice }
    }

    /// Value at `(u, v)` in [0, 1]².
    fn at(&self, u: f32, v: f32) -> f32 {
        let n = self.cells;
        let (x, y) = (u * n as f32, v * n as f32);
        let (x0, y0) = ((x.floor() as usize).min(n - 1), (y.floor() as usize).min(n - 1));
        let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
        let (tx, ty) = (smooth(x - x0 as f32), smooth(y - y0 as f32));
        let l = |a: usize, b: usize| self.lattice[b * (n + 1) + a];
        let top = l(x0, y0) * (1.0 - tx) + l(x0 + 1, y0) * tx;
        let bottom = l(x0, y0 + 1) * (1.0 - tx) + l(x0 + 1, y0 + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }
}

/// Bilinear sample of a grey item at item coordinates `(x, y)` (pixel centres at integers),
/// zero outside.
fn sample(item: &[u8], side: usize, x: f32, y: f32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = (x - fx, y - fy);
    let px = |xx: f32, yy: f32| {
        if xx < 0.0 || yy < 0.0 || xx >= side as f32 || yy >= side as f32 {
            0.0
        } else {
            item[yy as usize * side + xx as usize] as f32
        }
    };
    let top = px(fx, fy) * (1.0 - tx) + px(fx + 1.0, fy) * tx;
    let bottom = px(fx, fy + 1.0) * (1.0 - tx) + px(fx + 1.0, fy + 1.0) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// Where an item (or a crop of one) lands: the item rectangle `[ix, ix + iw) × [iy, iy + ih)`
/// (item pixels) drawn at frame position `(fx, fy)` scaled by `k` frame pixels per item pixel.
struct Placement {
    ix: f32,
    iy: f32,
    iw: f32,
    ih: f32,
    fx: f32,
    fy: f32,
    k: f32,
}

/// Composite `item` over `img` (`[3][s][s]` floats): coverage = `opacity · min(1, grey / 40)`
/// (the garment's silhouette), colour = `tint · (0.35 + 0.65 · grey / 255)` (its own shading).
fn composite(img: &mut [f32], s: usize, item: &[u8], side: usize, p: &Placement, tint: [f32; 3], opacity: f32) {
    let x_lo = p.fx.floor().max(0.0) as usize;
    let y_lo = p.fy.floor().max(0.0) as usize;
    let x_hi = ((p.fx + p.iw * p.k).ceil().max(0.0) as usize).min(s);
    let y_hi = ((p.fy + p.ih * p.k).ceil().max(0.0) as usize).min(s);
    for y in y_lo..y_hi {
        let iy = p.iy + (y as f32 + 0.5 - p.fy) / p.k;
        if iy < p.iy || iy >= p.iy + p.ih {
            continue;
        }
        for x in x_lo..x_hi {
            let ix = p.ix + (x as f32 + 0.5 - p.fx) / p.k;
            if ix < p.ix || ix >= p.ix + p.iw {
                continue;
            }
            let g = sample(item, side, ix - 0.5, iy - 0.5);
            let cover = opacity * (g / 40.0).min(1.0);
            if cover <= 0.0 {
                continue;
            }
            let shade = 0.35 + 0.65 * g / 255.0;
            for (c, t) in tint.iter().enumerate() {
                let v = &mut img[c * s * s + y * s + x];
                *v = *v * (1.0 - cover) + t * shade * cover;
            }
        }
    }
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
    let (u, v): (f32, f32) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// Draw frame `i` into `out` (`3 × s × s` bytes) and return its label.
fn render(items: &Dataset, cfg: &ScenesConfig, split: SceneSplit, i: usize, out: &mut [u8]) -> u8 {
    let s = cfg.size;
    let sf = s as f32;
    let side = items.size;
    // The item's content square: Fashion-MNIST's 28×28 inside its zero padding.
    let pad = side.saturating_sub(28) as f32 / 2.0;
    let content = side as f32 - 2.0 * pad;
    let mut rng = frame_rng(cfg, split, i);
    let n = items.len();
    let subject = i % n;

    // Background: base colour × lighting gradient × vignette, plus coloured texture.
    let base: [f32; 3] = std::array::from_fn(|_| rng.random_range(60.0..190.0));
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let (gx, gy) = (angle.cos(), angle.sin());
    let gradient = rng.random_range(0.0f32..0.6);
    let vignette = rng.random_range(0.1f32..0.35);
    let coarse = ValueNoise::new(&mut rng, 4);
    let fine = ValueNoise::new(&mut rng, 8);
    let (a_coarse, a_fine) = (rng.random_range(10.0f32..30.0), rng.random_range(4.0f32..12.0));
    let tex_tint: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.7f32..1.3));
    let mut img = vec![0f32; 3 * s * s];
    for y in 0..s {
        for x in 0..s {
            let (u, v) = ((x as f32 + 0.5) / sf, (y as f32 + 0.5) / sf);
            let (du, dv) = (u - 0.5, v - 0.5);
            let light = (1.0 + gradient * (du * gx + dv * gy) * 2.0) * (1.0 - vignette * (du * du + dv * dv) * 2.0);
            let tex = a_coarse * coarse.at(u, v) + a_fine * fine.at(u, v);
            for c in 0..3 {
                img[c * s * s + y * s + x] = base[c] * light + tex * tex_tint[c];
            }
        }
    }

    // Clutter: crops of other items of the same split, fainter than the subject.
    for _ in 0..rng.random_range(2..=4) {
        let mut other = rng.random_range(0..n);
        if other == subject && n > 1 {
            other = (other + 1) % n;
        }
        let (iw, ih) = (content * rng.random_range(0.4f32..0.75), content * rng.random_range(0.4f32..0.75));
        let ix = pad + rng.random_range(0.0..=content - iw);
        let iy = pad + rng.random_range(0.0..=content - ih);
        let k = sf * rng.random_range(0.35f32..0.7) / content;
        let fx = rng.random_range(-iw * k / 2.0..=sf - iw * k / 2.0);
        let fy = rng.random_range(-ih * k / 2.0..=sf - ih * k / 2.0);
        let tint: [f32; 3] = std::array::from_fn(|_| rng.random_range(30.0..230.0));
        let opacity = rng.random_range(0.25f32..0.5);
        let p = Placement { ix, iy, iw, ih, fx, fy, k };
        composite(&mut img, s, items.image(other), side, &p, tint, opacity);
    }

    // The subject: wholly inside the frame, tinted to stand out from the background under it.
    let d = sf * rng.random_range(0.45f32..0.85);
    let fx = rng.random_range(0.0..=sf - d);
    let fy = rng.random_range(0.0..=sf - d);
    let (x0, x1) = (fx as usize, ((fx + d) as usize).min(s));
    let (y0, y1) = (fy as usize, ((fy + d) as usize).min(s));
    let mut luma = 0.0f32;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = |c: usize| img[c * s * s + y * s + x];
            luma += 0.299 * p(0) + 0.587 * p(1) + 0.114 * p(2);
        }
    }
    luma /= ((x1 - x0) * (y1 - y0)).max(1) as f32;
    let range = if luma > 128.0 { 20.0..110.0 } else { 150.0..250.0 };
    let tint: [f32; 3] = std::array::from_fn(|_| rng.random_range(range.clone()));
    let p = Placement { ix: pad, iy: pad, iw: content, ih: content, fx, fy, k: d / content };
    composite(&mut img, s, items.image(subject), side, &p, tint, 1.0);

    // Sensor noise, then quantise.
    let sigma = rng.random_range(2.0f32..6.0);
    for (o, v) in out.iter_mut().zip(&img) {
        *o = (v + sigma * gaussian(&mut rng)).round().clamp(0.0, 255.0) as u8;
    }
    items.labels[subject]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small grey item set: item `j` is a bright square whose side depends on `j`, label `j % 10`.
    fn items(n: usize, fill: u8) -> Dataset {
        let side = 32;
        let mut pixels = vec![0u8; n * side * side];
        for j in 0..n {
            let w = 8 + j % 16;
            for y in 4..4 + w {
                for x in 4..4 + w {
                    pixels[j * side * side + y * side + x] = fill;
                }
            }
        }
        Dataset {
            pixels,
            labels: (0..n).map(|j| (j % 10) as u8).collect(),
            channels: 1,
            size: side,
            num_classes: 10,
            mean: vec![0.3],
            std: vec![0.3],
        }
    }

    #[test]
    fn params_parse_and_print_canonically() {
        assert_eq!(ScenesConfig::parse_params("").expect("defaults"), ScenesConfig::default());
        let c = ScenesConfig::parse_params("test=50,size=32,seed=9").expect("valid");
        assert_eq!(c, ScenesConfig { size: 32, seed: 9, train: None, test: Some(50) });
        assert_eq!(c.to_string(), "scenes:size=32,seed=9,test=50");
        assert_eq!(ScenesConfig::default().to_string(), "scenes");
        for bad in ["size", "size=x", "size=8", "size=1000", "colour=3", "seed=1,seed=2", "train=-1"] {
            assert!(ScenesConfig::parse_params(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_frame_does_not_depend_on_the_count_and_labels_are_the_subjects() {
        let it = items(30, 200);
        let cfg = ScenesConfig { size: 40, ..ScenesConfig::default() };
        let a = generate(&it, &cfg, SceneSplit::Test, 5).expect("generate");
        let b = generate(&it, &cfg, SceneSplit::Test, 12).expect("generate");
        assert_eq!(a.pixels[..], b.pixels[..a.pixels.len()]);
        assert_eq!(b.labels, (0..12).map(|i| (i % 10) as u8).collect::<Vec<_>>());
        assert_eq!((b.channels, b.size), (3, 40));
        let train = generate(&it, &cfg, SceneSplit::Train, 5).expect("generate");
        assert_ne!(train.pixels, a.pixels, "the split is part of the seed");
    }

    #[test]
    fn the_subject_shows_in_the_frame() {
        // The same frame with a blank subject set differs from it, and most where the subject is.
        // Items filling their 28×28 content: the subject covers at least 0.45² of the frame.
        let solid = |fill: u8| {
            let mut d = items(10, 0);
            for (k, p) in d.pixels.iter_mut().enumerate() {
                let (y, x) = ((k % 1024) / 32, k % 32);
                if (2..30).contains(&y) && (2..30).contains(&x) {
                    *p = fill;
                }
            }
            d
        };
        let cfg = ScenesConfig { size: 48, ..ScenesConfig::default() };
        let with = generate(&solid(255), &cfg, SceneSplit::Train, 8).expect("generate");
        let without = generate(&solid(0), &cfg, SceneSplit::Train, 8).expect("generate");
        for i in 0..8 {
            let diff: u64 = with.image(i).iter().zip(without.image(i)).map(|(a, b)| a.abs_diff(*b) as u64).sum();
            assert!(diff > 48 * 48 * 3 * 5, "frame {i}: mean difference under 5 levels ({diff})");
        }
    }

    #[test]
    fn bad_item_sets_are_errors() {
        let cfg = ScenesConfig::default();
        assert!(generate(&items(0, 1), &cfg, SceneSplit::Test, 1).is_err());
        let rgb = Dataset { channels: 3, pixels: vec![0; 3 * 32 * 32], ..items(1, 1) };
        assert!(generate(&rgb, &cfg, SceneSplit::Test, 1).is_err());
    }
}
