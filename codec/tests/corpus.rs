//! The fuzz targets' seed corpus (`codec/fuzz/corpus/`) is generated here and must match the
//! current wire format: this test fails when the format changes and the seeds were not
//! regenerated. Regenerate with
//! `TANDEM_WRITE_FUZZ_CORPUS=1 cargo test --release --workspace --locked --test codec corpus`.

use std::path::{Path, PathBuf};

use tandem_codec::frame;
use tandem_codec::{ClassProb, Coding, Control, ErrorCode, FrameMeta, PlanResult, RejectCode, ResultSpec};

use crate::common::relu_like;

fn seed_meta() -> FrameMeta {
    FrameMeta { frame_id: 1, plan_epoch: 2, model_id: 3, point: 4 }
}

fn control_seeds() -> Vec<(&'static str, Control)> {
    vec![
        ("bye", Control::Bye),
        ("frame-error", Control::FrameError { frame_id: 9, code: ErrorCode::StalePlan }),
        (
            "hello",
            Control::Hello {
                protocol_version: 2,
                device_id: "pi-1".into(),
                token: Some("secret".into()),
                results: ResultSpec { top_k: 3, logits: true },
            },
        ),
        ("hello-ack", Control::HelloAck { protocol_version: 2, session_id: 42 }),
        (
            "infer-result",
            Control::InferResult {
                frame_id: 9,
                epoch: 3,
                top: vec![
                    ClassProb { class: 4, p: 0.9 },
                    ClassProb { class: 2, p: 0.06 },
                    ClassProb { class: 0, p: 0.03 },
                ],
                logits: vec![0.1, -2.0, 3.5],
                edge_decode_us: 120,
                edge_infer_us: 900,
            },
        ),
        ("ping", Control::Ping { nonce: 5 }),
        ("plan-ack", Control::PlanAck { epoch: 3, result: PlanResult::Applied }),
        ("plan-switch", Control::PlanSwitch { epoch: 3, model_id: 1, point: 7, coding: Coding::Q8C_LZ4 }),
        ("probe", Control::Probe { seq: 1, sent_at_us: 1000, padding_len: 16 }),
        ("probe-reply", Control::ProbeReply { seq: 1, sent_at_us: 1000, received_len: 120 }),
        ("reject", Control::Reject { code: RejectCode::BadToken, reason: "bad token".into() }),
    ]
}

fn frame_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, coding, shape) in [
        ("tensor-f32", Coding::F32, &[1usize, 1, 2, 3][..]),
        ("tensor-q4-lz4", Coding::Q4_LZ4, &[1, 2, 4, 4]),
        ("tensor-q4c-none", "q4c-none".parse().unwrap(), &[1, 3, 4, 4]),
        ("tensor-q8-lz4", Coding::Q8_LZ4, &[1, 4, 6, 6]),
        ("tensor-q8c-lz4-chw", Coding::Q8C_LZ4, &[3, 4, 4]),
    ] {
        let t = tandem_codec::encode(&relu_like(shape, 7), shape, coding).unwrap();
        let mut buf = Vec::new();
        frame::write_tensor(&seed_meta(), &t, &mut buf);
        out.push((name.to_string(), buf));
    }
    for (name, msg) in control_seeds() {
        if matches!(name, "infer-result" | "plan-switch" | "probe") {
            let mut buf = Vec::new();
            frame::write_control(&seed_meta(), &msg, &mut buf).unwrap();
            out.push((format!("control-{name}"), buf));
        }
    }
    out
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn the_fuzz_seed_corpus_is_in_the_current_format() {
    let dir = corpus_dir();
    let mut seeds: Vec<(PathBuf, Vec<u8>)> =
        frame_seeds().into_iter().map(|(name, bytes)| (dir.join("frame").join(name), bytes)).collect();
    for (name, msg) in control_seeds() {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes).unwrap();
        seeds.push((dir.join("control").join(name), bytes));
    }
    if std::env::var_os("TANDEM_WRITE_FUZZ_CORPUS").is_some() {
        for (path, bytes) in &seeds {
            std::fs::write(path, bytes).unwrap();
        }
    }
    for (path, bytes) in &seeds {
        let on_disk = std::fs::read(path).unwrap_or_default();
        assert_eq!(&on_disk, bytes, "{} is stale: regenerate it (see the module docs)", path.display());
    }
    // Every seed of the frame target is a valid frame.
    for (_, bytes) in frame_seeds() {
        assert_eq!(frame::check(&bytes, &tandem_codec::Limits::default()).unwrap(), bytes.len());
    }
}
