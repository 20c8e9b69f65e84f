//! The fixtures the planner tests share, built with `tandem_planner::testkit`.

use tandem_planner::testkit::{CodingExt, coding, end, model, point, profile, same_machine, slowed_device};
use tandem_planner::{CodingClass, ModelKind, Profile, Profiles, Role};

/// A small series on an edge-like machine: the original, a step-1 model and a step-2 member whose
/// pool2 tensor is tiny. Times are the edge's; the device is derived by `slowed`.
pub fn edge_profile() -> Profile {
    let member = |model_id, name: &str, kind, accuracy: f64, scale: f64, pool2_bytes: f64| {
        model(
            model_id,
            name,
            kind,
            accuracy,
            vec![
                point(
                    0,
                    "input",
                    0.0,
                    6.0 * scale,
                    vec![coding("u8", CodingClass::Raw, 800.0), coding("png", CodingClass::Lossless, 600.0)],
                ),
                point(
                    1,
                    "pool1",
                    2.0 * scale,
                    4.0 * scale,
                    vec![
                        coding("f32", CodingClass::Raw, 65_536.0),
                        coding("q8-lz4", CodingClass::Lossy, 12_000.0).accuracy(accuracy - 0.002),
                    ],
                ),
                point(
                    2,
                    "pool2",
                    4.0 * scale,
                    2.0 * scale,
                    vec![
                        coding("f32", CodingClass::Raw, pool2_bytes * 4.0),
                        coding("q8-lz4", CodingClass::Lossy, pool2_bytes),
                    ],
                ),
                end(3, 6.0 * scale),
            ],
        )
    };
    let mut p = profile(
        Role::Edge,
        2,
        vec![
            member(0, "vgg16", ModelKind::Original, 0.9477, 1.0, 8_000.0),
            member(1, "step1", ModelKind::Step1 { iter: 9 }, 0.9305, 0.25, 4_000.0),
            member(2, "step2-c7-i5", ModelKind::Step2 { layer: 7, iter: 5 }, 0.9220, 0.2, 40.0),
        ],
    );
    p.provenance.machine = "xeon-test".into();
    p
}

/// [`edge_profile`] with a device `slowdown` times slower.
pub fn profiles(slowdown: f64) -> Profiles {
    slowed_device(&edge_profile(), slowdown)
}

/// Two choices whose latencies cross at exactly 10 Mbit/s (RTT 0): all-local, and offloading at
/// pool1.
pub fn crossover_profiles() -> Profiles {
    // Offload total at bandwidth B (bit/s), RTT 0: 10 + (12_452 + 48)·8·1000 / B = 10 + 1e8 / B ms
    // (48 B: the result message, `RESULT_MESSAGE_BYTES`).
    // Local: 20 ms. Equal at B = 1e7 = 10 Mbit/s.
    // device_ms 4 + encode 0.5 + decode 0.5 + edge 5 = 10 ms of compute.
    let mut pool1 = point(
        1,
        "pool1",
        4.0,
        5.0,
        vec![coding("q8-lz4", CodingClass::Lossy, 12_500.0 - tandem_planner::RESULT_MESSAGE_BYTES).times(0.5, 0.5)],
    );
    pool1.elements = 4096;
    let edge = profile(Role::Edge, 1, vec![model(0, "vgg16", ModelKind::Original, 0.9, vec![pool1, end(2, 20.0)])]);
    same_machine(&edge)
}
