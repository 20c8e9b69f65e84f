//! `profile_series`: every member × every partition point × every coding, on this machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use tandem_codec::{Codec, Coding, Compression, EncodedTensor, FrameMeta};
use tandem_models::checkpoint;
use tandem_models::data::{self, DataSource, Dataset};
use tandem_models::series::{Member, MemberKind, Series};
use tandem_models::zoo::Net;
use tandem_planner::{CodingClass, CodingCost, ModelKind, ModelProfile, PointProfile, Profile, Provenance, Role};

use crate::accuracy::coding_accuracy;
use crate::error::{ProfileError, Result};
use crate::exec::{activations, compute_threads, image_tensor, machine_description, median, range_ms};
use tandem_engine::{Choice, Engine, EngineOptions};

/// Default [`ProfileOptions::warmup`].
pub const DEFAULT_WARMUP: usize = 2;
/// Default [`ProfileOptions::runs`].
pub const DEFAULT_RUNS: usize = 7;
/// Default [`ProfileOptions::images`]: frames vary in coded size from image to image (4 images
/// under-estimated the wire bytes of the input by 13 %), and coding a few dozen small tensors costs
/// well under a second per model.
pub const DEFAULT_IMAGES: usize = 32;
/// Default [`ProfileOptions::accuracy_images`]: 200 (0.5-point resolution; the difference is
/// paired, so its noise is lower than that of either accuracy). It dominates the cost — one tail
/// per point per lossy coding per image, ≈ 6 s per quarter-width VGG-16 member on 2 cores — and
/// only the edge's profile needs it: [`tandem_planner::combine`] takes accuracies from the edge.
pub const DEFAULT_ACCURACY_IMAGES: usize = 200;

/// The codings profiled by default: raw f32 (the paper's baseline), lossless lz4, and 8-/4-bit
/// quantisation per tensor and per channel with lz4.
pub fn default_codings() -> Vec<Coding> {
    let mut codings = vec![
        Coding::F32,
        Coding::F32_LZ4,
        Coding::Q8_LZ4,
        Coding::Q8C_LZ4,
        Coding::Q4_LZ4,
        Coding::Q4C_LZ4,
        Coding::PNG,
    ];
    // The camera's codings (measured only where a point's shape is an image: the input).
    // 50, 75 and 90 are in JPEG's 1..=100, so none is dropped.
    codings.extend([50, 75, 90].into_iter().filter_map(|q| Coding::jpeg(q).ok()));
    codings
}

/// What to measure and how hard.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileOptions {
    /// Untimed passes before timing (caches, allocator, thread pool). Default 2.
    pub warmup: usize,
    /// Timed runs of every head and tail; each time is the median over them. Also the repetitions of every
    /// encode and decode. Default 7.
    pub runs: usize,
    /// Test images whose real intermediate tensors are coded to measure bytes and coding time
    /// (averaged over them; quantised + lz4 sizes depend on the content). Default 4.
    pub images: usize,
    /// Test images for the accuracy of each lossy coding at each point; 0 skips it (lossy codings
    /// then carry no accuracy, which the planner reads as "same as the model"). Default 200.
    pub accuracy_images: usize,
    /// Codings to measure. `f32` is always measured (the uncoded baseline needs it) and put first.
    pub codings: Vec<Coding>,
    /// Data set of the test images; `None` = the one named in the series manifest.
    pub data: Option<DataSource>,
    /// Data directory for `data` (see `tandem_models::data::load`).
    pub data_dir: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// The inference engine whose segments are timed: the one the runtime uses
    /// (`Choice::Auto`: ONNX Runtime where its library loads, burn otherwise).
    pub engine: Choice,
    /// Its intra-op threads; `None` = every core (what the runtime uses unless its config sets
    /// `engine_threads`).
    pub threads: Option<usize>,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            warmup: DEFAULT_WARMUP,
            runs: DEFAULT_RUNS,
            images: DEFAULT_IMAGES,
            accuracy_images: DEFAULT_ACCURACY_IMAGES,
            codings: default_codings(),
            data: None,
            data_dir: None,
            progress: false,
            engine: Choice::Auto,
            threads: None,
        }
    }
}

impl ProfileOptions {
    /// Reject settings that cannot produce a profile.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ProfileError::Options(m));
        if self.runs == 0 || self.runs > 1000 {
            return bad(format!("runs must be in 1..=1000, got {}", self.runs));
        }
        if self.threads.is_some_and(|t| !(1..=256).contains(&t)) {
            return bad(format!("threads must be in 1..=256, got {:?}", self.threads));
        }
        if self.warmup > 1000 {
            return bad(format!("warmup must be at most 1000, got {}", self.warmup));
        }
        // Every image's activations at every point are held at once (a few MB per image at
        // full width).
        if self.images == 0 || self.images > 256 {
            return bad(format!("images must be in 1..=256, got {}", self.images));
        }
        if let Some(c) = self.codings.iter().find(|c| !c.compression().is_available()) {
            return bad(format!(
                "coding {c} needs compression this build lacks (enable the codec's `{}` feature)",
                c.compression()
            ));
        }
        Ok(())
    }

    /// The codings actually measured: `f32` first, then the configured ones, without duplicates.
    pub fn effective_codings(&self) -> Vec<Coding> {
        let mut out = vec![Coding::F32];
        for &c in &self.codings {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

/// How the planner classes a coding.
pub fn coding_class(coding: Coding) -> CodingClass {
    match (coding.is_lossless(), coding.compression()) {
        (false, _) => CodingClass::Lossy,
        (true, Compression::None) => CodingClass::Raw,
        (true, _) => CodingClass::Lossless,
    }
}

/// Load the test split named by `data` (or by the manifest when `None`).
pub fn load_test_set(series: &Series, data: Option<&DataSource>, dir: Option<&Path>) -> Result<Dataset> {
    let source = match data {
        Some(s) => s.clone(),
        None => series.dataset.parse::<DataSource>()?,
    };
    Ok(data::load_test(&source, dir)?)
}

/// Profile every member of the series in `series_dir` on this machine, with test images from
/// `opts.data` (default: the manifest's data set).
pub fn profile_series(series_dir: &Path, role: Role, opts: &ProfileOptions) -> Result<Profile> {
    let series = Series::load(series_dir)?;
    let test = load_test_set(&series, opts.data.as_ref(), opts.data_dir.as_deref())?;
    profile_series_on(series_dir, role, opts, &test)
}

/// [`profile_series`] with a given test set.
///
/// For each member: load it; time every head (`device_ms`) and tail (`edge_ms`) as one call each
/// (`warmup` untimed whole passes, then `runs` timed runs at batch 1, median per point); code the real tensors at every point of `images` test images with every
/// coding (`runs` repetitions each, median) for bytes on the wire (frame header included) and
/// encode/decode times; optionally measure the accuracy of each lossy coding at each point.
///
/// A lossy coding's accuracy is the member's manifest accuracy plus the paired difference
/// measured on `accuracy_images` images (coded minus uncoded, same images), clamped to `0..=1`:
/// the manifest's number is on the full test set, and the difference is what the coding adds.
pub fn profile_series_on(series_dir: &Path, role: Role, opts: &ProfileOptions, test: &Dataset) -> Result<Profile> {
    opts.validate()?;
    let series = Series::load(series_dir)?;
    check_test_set(&series, test)?;
    let device = tandem_models::device::cpu();
    let defaults = EngineOptions::default();
    let threads = opts.threads.unwrap_or(defaults.threads);
    let engine = Engine::open(&EngineOptions { choice: opts.engine, threads, ..defaults })?;
    tracing::info!(engine = %engine.kind(), threads = engine.threads(), "profiling the engine's segments");
    let bar = if opts.progress { ProgressBar::new(series.members.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} models, eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("profile");
    let mut models = Vec::with_capacity(series.members.len());
    for member in &series.members {
        bar.set_message(member.name.clone());
        let started = Instant::now();
        models.push(profile_member(&series, series_dir, member, test, opts, &device, &engine)?);
        tracing::debug!(model = %member.name, wall_s = started.elapsed().as_secs_f64(), "profiled");
        bar.inc(1);
    }
    bar.finish_and_clear();
    // The threads the timed segments ran on: the session's for ONNX Runtime, rayon's for burn.
    let used = if engine.kind() == tandem_engine::EngineKind::Burn { compute_threads() } else { engine.threads() };
    let threads = u32::try_from(used).unwrap_or(u32::MAX).max(1);
    let profile = Profile {
        provenance: Provenance { role, machine: machine_description(), threads, emulated_slowdown: None },
        models,
    };
    profile.validate()?;
    Ok(profile)
}

fn check_test_set(series: &Series, test: &Dataset) -> Result<()> {
    let b = &series.base;
    if test.channels != b.in_channels || test.size != b.input_size || test.num_classes != b.num_classes {
        return Err(ProfileError::DataMismatch(format!(
            "models take {}x{}x{} images into {} classes, test set has {}x{}x{} into {}",
            b.in_channels,
            b.input_size,
            b.input_size,
            b.num_classes,
            test.channels,
            test.size,
            test.size,
            test.num_classes
        )));
    }
    if test.is_empty() {
        return Err(ProfileError::DataMismatch("the test set is empty".into()));
    }
    Ok(())
}

/// The planner's name for a manifest member kind.
pub fn model_kind(member: &Member) -> Result<ModelKind> {
    Ok(match member.kind {
        MemberKind::Original => ModelKind::Original,
        MemberKind::Step1 { iter } => ModelKind::Step1 { iter },
        MemberKind::Step2 { conv, iter } => ModelKind::Step2 {
            layer: u16::try_from(conv).map_err(|_| ProfileError::Inconsistent {
                model: member.name.clone(),
                problem: format!("conv index {conv} exceeds u16"),
            })?,
            iter,
        },
    })
}

/// Load a member's checkpoint in eval mode and check it is the model the manifest describes.
pub fn load_member(series: &Series, series_dir: &Path, member: &Member, device: &Device) -> Result<Net> {
    let (net, _card) = checkpoint::load(&series.dir_of(series_dir, member), device)?;
    let want = series.spec_of(member)?;
    if net.spec != want {
        return Err(ProfileError::Inconsistent {
            model: member.name.clone(),
            problem: format!("checkpoint widths {:?} differ from the manifest's {:?}", net.spec.widths, want.widths),
        });
    }
    Ok(net.valid())
}

/// Coding costs summed over images, before averaging.
#[derive(Default, Clone)]
struct CodingSums {
    bytes: f64,
    encode_ms: f64,
    decode_ms: f64,
}

fn profile_member(
    series: &Series,
    series_dir: &Path,
    member: &Member,
    test: &Dataset,
    opts: &ProfileOptions,
    device: &Device,
    engine: &Engine,
) -> Result<ModelProfile> {
    let codings = &opts.effective_codings()[..];
    let net = load_member(series, series_dir, member, device)?;
    let spec = net.spec.clone();
    let points = spec.points();
    let end = spec.end();
    let n_images = opts.images.min(test.len());

    // The tensor at every point of every profiled image: the inputs of the timed tails and of
    // the coding measurements.
    let acts = (0..n_images).map(|i| activations(&net, image_tensor(test, i, device))).collect::<Result<Vec<_>>>()?;

    // 1. Compute: the median time of every head (input → p) and every tail (p → end), each a
    //    segment prepared by the engine the runtime uses and run as one call, the way the
    //    runtime runs it. Runs are interleaved over points so that a noisy spell of the machine
    //    touches every point alike.
    let prepare = |from: usize, to: usize| {
        engine
            .prepare(&net, from, to, 1)
            .map_err(|e| ProfileError::Backend(format!("{}: preparing {from}..{to}: {e}", member.name)))
    };
    let head_segs = (1..=end).map(|p| prepare(0, p)).collect::<Result<Vec<_>>>()?;
    let tail_segs = (0..end).map(|p| prepare(p, end)).collect::<Result<Vec<_>>>()?;
    let whole = &tail_segs[0];
    for w in 0..opts.warmup {
        range_ms(whole, &acts[w % n_images][0])?;
    }
    let mut heads = vec![Vec::with_capacity(opts.runs); end + 1];
    let mut tails = vec![Vec::with_capacity(opts.runs); end + 1];
    for r in 0..opts.runs {
        let image = &acts[r % n_images];
        for (p, head) in heads.iter_mut().enumerate().skip(1) {
            head.push(range_ms(&head_segs[p - 1], &image[0])?);
        }
        for (p, act) in image.iter().enumerate() {
            tails[p].push(range_ms(&tail_segs[p], act)?);
        }
    }
    // An empty median is 0.0: the head at `input` and the tail at `end` run nothing.
    let mut head_ms: Vec<f64> = heads.iter().map(|v| median(v)).collect();
    let mut tail_ms: Vec<f64> = tails.iter().map(|v| median(v)).collect();
    // A longer head (tail) runs a superset of the layers, so it never costs less; independent
    // medians can say otherwise by noise, which would let the planner prefer a split for it.
    for p in 1..=end {
        head_ms[p] = head_ms[p].max(head_ms[p - 1]);
    }
    for p in (0..end).rev() {
        tail_ms[p] = tail_ms[p].max(tail_ms[p + 1]);
    }
    let head_ms = |p: usize| head_ms[p];
    let tail_ms = |p: usize| tail_ms[p];

    // 2. Coding on real tensors: bytes and encode/decode time per (point, coding), mean over images.
    let mut sums = vec![vec![CodingSums::default(); codings.len()]; end];
    let mut codec = Codec::new();
    let mut encoded = EncodedTensor::default();
    let mut decoded = Vec::new();
    let mut times = Vec::with_capacity(opts.runs);
    for image in &acts {
        for act in image {
            for (k, &coding) in codings.iter().enumerate() {
                // A point whose shape cannot take the coding (an image coding past the input)
                // simply has no such coding.
                if !coding.applies_to(&act.shape) {
                    continue;
                }
                let ctx = |source| ProfileError::Codec {
                    model: member.name.clone(),
                    point: points[act.point].name.clone(),
                    coding: coding.to_string(),
                    source,
                };
                codec.encode_into(&act.data, &act.shape, coding, &mut encoded).map_err(ctx)?;
                times.clear();
                for _ in 0..opts.runs {
                    let t = Instant::now();
                    codec.encode_into(&act.data, &act.shape, coding, &mut encoded).map_err(ctx)?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let encode_ms = median(&times);
                codec.decode_into(&encoded, &mut decoded).map_err(ctx)?;
                times.clear();
                for _ in 0..opts.runs {
                    let t = Instant::now();
                    codec.decode_into(&encoded, &mut decoded).map_err(ctx)?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let decode_ms = median(&times);
                let s = &mut sums[act.point][k];
                s.bytes += encoded.wire_len(&profile_meta(member.id, act.point)) as f64;
                s.encode_ms += encode_ms;
                s.decode_ms += decode_ms;
            }
        }
    }

    // 3. Accuracy of lossy codings (optional).
    let mut coded_accuracy: HashMap<(usize, Coding), f64> = HashMap::new();
    if opts.accuracy_images > 0 && codings.iter().any(|c| !c.is_lossless()) {
        let inner: Vec<usize> = (0..end).collect();
        for a in coding_accuracy(&net, test, &inner, codings, opts.accuracy_images)? {
            if !a.coding.is_lossless() {
                coded_accuracy.insert((a.point, a.coding), (member.accuracy - a.loss()).clamp(0.0, 1.0));
            }
        }
    }

    let n = n_images as f64;
    let point_profiles = points
        .iter()
        .map(|pt| {
            let p = pt.index;
            let codings = if p == end {
                Vec::new()
            } else {
                let shape: Vec<usize> = [1].iter().chain(&pt.shape).copied().collect();
                codings
                    .iter()
                    .zip(&sums[p])
                    .filter(|(coding, _)| coding.applies_to(&shape))
                    .map(|(&coding, s)| CodingCost {
                        coding: coding.to_string(),
                        class: coding_class(coding),
                        bytes: s.bytes / n,
                        encode_ms: s.encode_ms / n,
                        decode_ms: s.decode_ms / n,
                        accuracy: coded_accuracy.get(&(p, coding)).copied(),
                    })
                    .collect()
            };
            Ok(PointProfile {
                point: u16::try_from(p).map_err(|_| ProfileError::Inconsistent {
                    model: member.name.clone(),
                    problem: format!("point {p} exceeds u16"),
                })?,
                name: pt.name.clone(),
                device_ms: head_ms(p),
                edge_ms: tail_ms(p),
                elements: pt.elements() as u64,
                codings,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ModelProfile {
        model_id: member.id,
        name: member.name.clone(),
        kind: model_kind(member)?,
        accuracy: member.accuracy,
        points: point_profiles,
    })
}

/// Frame id at which frame sizes are measured: a steady-state run's (the header's varints
/// make the size depend on it; ids 128..16 383 take two bytes, ~9 minutes at 30 frames/s).
pub const PROFILE_FRAME_ID: u64 = 10_000;

/// The provenance the profiler measures frame sizes with: [`PROFILE_FRAME_ID`], plan epoch 1.
pub fn profile_meta(model_id: u32, point: usize) -> FrameMeta {
    FrameMeta { frame_id: PROFILE_FRAME_ID, plan_epoch: 1, model_id, point: u16::try_from(point).unwrap_or(u16::MAX) }
}

/// Bytes of a raw (`f32`) frame of a `[1, C, H, W]` tensor at `point` of model `model_id`,
/// with [`profile_meta`]: what the uncoded baseline sends.
pub fn raw_frame_bytes(model_id: u32, point: usize, shape: &[usize]) -> Result<usize, tandem_codec::CodecError> {
    let zeros = vec![0.0f32; shape.iter().product()];
    Ok(tandem_codec::encode(&zeros, shape, tandem_codec::Coding::F32)?.wire_len(&profile_meta(model_id, point)))
}
