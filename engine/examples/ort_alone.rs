//! ONNX Runtime through tandem-engine's session/run functions on ONNX files, with nothing else
//! running in the process — the counterpart of `scripts/ort-python-bench.py` (same interleaving of
//! 1 and 2 threads, same input pattern), to separate the wrapper's cost from the bench's
//! interleaving with other engines.
//!
//! `cargo run --release --example ort_alone -- DIR [RUNS]`

use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `[1, C, H, W]` of the graph's first input (the batch dimension is dynamic).
fn input_shape(bytes: &[u8]) -> Result<[usize; 4], Box<dyn std::error::Error>> {
    use prost::Message;
    use tandem_engine::pb::{tensor_shape_proto::dimension::Value as Dim, type_proto::Value};
    let model = tandem_engine::pb::ModelProto::decode(bytes)?;
    let input = model.graph.as_ref().and_then(|g| g.input.first()).ok_or("no graph input")?;
    let Some(Value::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err("input is not a tensor".into());
    };
    let dims: Vec<usize> = t
        .shape
        .as_ref()
        .ok_or("input has no shape")?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(v)) => usize::try_from(v).unwrap_or(1),
            _ => 1,
        })
        .collect();
    let [n, c, h, w] = dims[..] else { return Err(format!("input rank {} is not 4", dims.len()).into()) };
    Ok([n, c, h, w])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: ort_alone DIR [RUNS]")?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(30);
    let (env, lib) = tandem_engine::onnxruntime::load(&tandem_engine::onnxruntime::default_candidates())?;
    println!("onnxruntime from {} (Rust, tandem-engine), batch 1, median of {runs} runs (ms)", lib.display());
    println!("| file | ort-rust 1t | ort-rust 2t |");
    println!("|---|---|---|");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "onnx"));
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path)?;
        let mut s1 = tandem_engine::onnxruntime::session(&env, &bytes, 1)?;
        let mut s2 = tandem_engine::onnxruntime::session(&env, &bytes, 2)?;
        let shape = input_shape(&bytes)?;
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
        let (mut t1, mut t2) = (Vec::new(), Vec::new());
        for r in 0..runs + 3 {
            for (s, t) in [(&mut s1, &mut t1), (&mut s2, &mut t2)] {
                let started = Instant::now();
                tandem_engine::onnxruntime::run(s, x.clone(), shape)?;
                if r >= 3 {
                    t.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        println!("| {name} | {:.3} | {:.3} |", median(t1), median(t2));
    }
    Ok(())
}
