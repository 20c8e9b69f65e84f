//! Encode/decode throughput (MB/s of f32 input) and size ratios of the standard codings; frame
//! check/parse/write times (group `frame`).
//!
//! Input: if `TANDEM_CODEC_TENSORS` names a directory, every `NAME.f32` there (raw little-endian
//! f32) with its `NAME.shape` (dims as text, e.g. `1 32 16 16`); otherwise a synthetic ReLU-like
//! tensor, labelled `synthetic-…`.
//!
//! Run: `cargo bench -p tandem-codec --bench codec -- --measurement-time 2 --warm-up-time 1`

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tandem_codec::frame::{self, FrameMeta, Limits};
use tandem_codec::{Codec, Coding, EncodedTensor, Granularity};

struct Input {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// ~60 % zeros (ReLU), per-channel scales spread over two decades, seeded.
fn synthetic(shape: [usize; 4], seed: u64) -> Input {
    let [n, c, h, w] = shape;
    let mut rng = StdRng::seed_from_u64(seed);
    let scales: Vec<f32> = (0..c).map(|_| 10f32.powf(rng.random_range(-1.0..1.0))).collect();
    let mut data = Vec::with_capacity(n * c * h * w);
    for _ in 0..n {
        for &s in &scales {
            for _ in 0..h * w {
                let u: f32 = rng.random();
                data.push(if u < 0.6 { 0.0 } else { s * (u - 0.6) * 2.5 * rng.random::<f32>() });
            }
        }
    }
    Input { name: format!("synthetic-{n}x{c}x{h}x{w}"), shape: shape.to_vec(), data }
}

fn load_dir(dir: &Path) -> Vec<Input> {
    let mut inputs = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("TANDEM_CODEC_TENSORS={} is not a readable directory", dir.display());
        return inputs;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "f32")) {
        let shape_path = path.with_extension("shape");
        let (Ok(bytes), Ok(shape_text)) = (std::fs::read(&path), std::fs::read_to_string(&shape_path)) else {
            eprintln!("skipping {}: missing or unreadable .f32/.shape", path.display());
            continue;
        };
        let shape: Result<Vec<usize>, _> = shape_text.split_whitespace().map(str::parse).collect();
        let data: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        match shape {
            Ok(shape) if shape.iter().product::<usize>() == data.len() => {
                let name = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                inputs.push(Input { name, shape, data });
            }
            _ => eprintln!("skipping {}: shape does not match the data", path.display()),
        }
    }
    inputs
}

fn inputs() -> Vec<Input> {
    match std::env::var_os("TANDEM_CODEC_TENSORS") {
        Some(dir) => load_dir(Path::new(&dir)),
        None => vec![synthetic([1, 64, 32, 32], 7)],
    }
}

/// RMS error over RMS of the input: what the size ratio costs in fidelity.
fn relative_rmse(x: &[f32], y: &[f32]) -> f64 {
    let err: f64 = x.iter().zip(y).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    let norm: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum();
    if norm == 0.0 { 0.0 } else { (err / norm).sqrt() }
}

fn codings() -> Vec<Coding> {
    let mut out: Vec<Coding> = Coding::all().into_iter().filter(|c| !c.is_lossless()).collect();
    out.push(Coding::F32_LZ4);
    out
}

fn bench(c: &mut Criterion) {
    let mut codec = Codec::new();
    for input in inputs() {
        let raw_bytes = input.data.len() * 4;
        let zeros = input.data.iter().filter(|x| **x == 0.0).count() as f64 / input.data.len().max(1) as f64;
        println!("input {} {:?}: {} B f32, {:.0} % zeros", input.name, input.shape, raw_bytes, zeros * 100.0);
        let mut group = c.benchmark_group(input.name.as_str());
        group.throughput(Throughput::Bytes(raw_bytes as u64));
        for coding in codings() {
            if coding.granularity() == Granularity::PerChannel && !(3..=4).contains(&input.shape.len()) {
                continue;
            }
            let mut enc = EncodedTensor::default();
            if let Err(e) = codec.encode_into(&input.data, &input.shape, coding, &mut enc) {
                eprintln!("{} {coding}: {e}", input.name);
                continue;
            }
            let mut decoded = Vec::new();
            if let Err(e) = codec.decode_into(&enc, &mut decoded) {
                eprintln!("{} {coding}: {e}", input.name);
                continue;
            }
            println!(
                "size {:<10} {:>9} B = {:.4} of f32 ({:.1}x smaller), relative RMSE {:.4}",
                coding.to_string(),
                enc.payload().len(),
                enc.payload().len() as f64 / raw_bytes as f64,
                raw_bytes as f64 / enc.payload().len().max(1) as f64,
                relative_rmse(&input.data, &decoded)
            );
            group.bench_function(BenchmarkId::new("encode", coding), |b| {
                b.iter(|| codec.encode_into(black_box(&input.data), &input.shape, coding, &mut enc))
            });
            let mut out = Vec::new();
            group.bench_function(BenchmarkId::new("decode", coding), |b| {
                b.iter(|| codec.decode_into(black_box(&enc), &mut out))
            });
        }
        group.finish();
    }
}

/// Frame header cost: `check` (header only) and `parse` (check + CRC + payload copy) of a
/// q8-lz4 frame of the ¼-width pool4 point ([1, 4, 2, 2] after step 2) and of the 32×32 grey
/// input, and `write_tensor`.
fn frames(c: &mut Criterion) {
    let meta = FrameMeta { frame_id: 10_000, plan_epoch: 1, model_id: 3, point: 14 };
    let limits = Limits::default();
    let mut group = c.benchmark_group("frame");
    for (name, input) in
        [("pool4-1x4x2x2", synthetic([1, 4, 2, 2], 5)), ("input-1x1x32x32", synthetic([1, 1, 32, 32], 6))]
    {
        let Ok(t) = tandem_codec::encode(&input.data, &input.shape, Coding::Q8_LZ4) else { continue };
        let mut buf = Vec::new();
        let n = frame::write_tensor(&meta, &t, &mut buf);
        println!("frame {name} q8-lz4: {n} B, header {} B", frame::tensor_header_len(&meta, &t));
        group.bench_function(BenchmarkId::new("check", name), |b| b.iter(|| frame::check(black_box(&buf), &limits)));
        group.bench_function(BenchmarkId::new("parse", name), |b| b.iter(|| frame::parse(black_box(&buf), &limits)));
        let mut out = Vec::with_capacity(buf.len());
        group.bench_function(BenchmarkId::new("write", name), |b| {
            b.iter(|| {
                out.clear();
                frame::write_tensor(&meta, black_box(&t), &mut out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, frames);
criterion_main!(benches);
