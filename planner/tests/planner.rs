//! Planner behaviour: selection equals brute force, monotonicity, floors, baselines, hysteresis,
//! profile serialisation and combination.

use proptest::prelude::*;
use tandem_planner::{
    ACCURACY_TOLERANCE, AccuracyFloor, Baseline, CodingClass, CodingCost, Decision, Hysteresis, LinkState, ModelKind,
    ModelProfile, PlanError, Planner, PointProfile, Profile, Profiles, Provenance, Role, baseline, combine, evaluate,
    latency, pareto_frontier, select_plan, select_sustainable,
};

// ---------------------------------------------------------------------------------------------
// Fixtures

fn coding(name: &str, class: CodingClass, bytes: f64, accuracy: Option<f64>) -> CodingCost {
    CodingCost { coding: name.into(), class, bytes, encode_ms: 0.2, decode_ms: 0.1, accuracy }
}

fn point(point: u16, name: &str, device_ms: f64, edge_ms: f64, codings: Vec<CodingCost>) -> PointProfile {
    PointProfile { point, name: name.into(), device_ms, edge_ms, elements: 1024, codings }
}

/// A small series on an edge-like machine: the original, a step-1 model and a step-2 member whose
/// pool2 tensor is tiny. Times are the edge's; the device is derived by `slowed`.
fn edge_profile() -> Profile {
    let model = |model_id, name: &str, kind, accuracy, scale: f64, pool2_bytes: f64| ModelProfile {
        model_id,
        name: name.into(),
        kind,
        accuracy,
        points: vec![
            point(
                0,
                "input",
                0.0,
                6.0 * scale,
                vec![coding("u8", CodingClass::Raw, 800.0, None), coding("png", CodingClass::Lossless, 600.0, None)],
            ),
            point(
                1,
                "pool1",
                2.0 * scale,
                4.0 * scale,
                vec![
                    coding("f32", CodingClass::Raw, 65_536.0, None),
                    coding("q8-lz4", CodingClass::Lossy, 12_000.0, Some(accuracy - 0.002)),
                ],
            ),
            point(
                2,
                "pool2",
                4.0 * scale,
                2.0 * scale,
                vec![
                    coding("f32", CodingClass::Raw, pool2_bytes * 4.0, None),
                    coding("q8-lz4", CodingClass::Lossy, pool2_bytes, None),
                ],
            ),
            point(3, "end", 6.0 * scale, 0.0, vec![]),
        ],
    };
    Profile {
        provenance: Provenance { role: Role::Edge, machine: "xeon-test".into(), threads: 2, emulated_slowdown: None },
        models: vec![
            model(0, "vgg16", ModelKind::Original, 0.9477, 1.0, 8_000.0),
            model(1, "step1", ModelKind::Step1 { iter: 9 }, 0.9305, 0.25, 4_000.0),
            model(2, "step2-c7-i5", ModelKind::Step2 { layer: 7, iter: 5 }, 0.9220, 0.2, 40.0),
        ],
    }
}

fn profiles(slowdown: f64) -> Profiles {
    let edge = edge_profile();
    let device = edge.slowed(slowdown).expect("valid factor");
    combine(&device, &edge).expect("consistent profiles")
}

// ---------------------------------------------------------------------------------------------
// Profiles: TOML, validation, combine, slowed

#[test]
fn profile_toml_round_trip() {
    let mut original = edge_profile().slowed(10.0).expect("valid factor");
    // Values whose decimal form is long or extreme must survive exactly.
    original.models[1].points[1].device_ms = 0.1 + 0.2;
    original.models[1].points[1].codings[0].bytes = 1e-300;
    original.models[1].points[1].elements = i64::MAX as u64;
    let text = original.to_toml_string().expect("serialisable");
    let back = Profile::from_toml_str(&text).expect("parses and validates");
    assert_eq!(back, original);
    assert!(text.contains("emulated_slowdown = 10.0"), "{text}");
}

#[test]
fn profile_toml_rejects_unknown_fields() {
    let text = edge_profile().to_toml_string().expect("serialisable");
    let bad = text.replacen("threads = 2", "threads = 2\ncores = 4", 1);
    assert!(matches!(Profile::from_toml_str(&bad), Err(PlanError::ParseToml(_))));
}

#[test]
fn profile_rejects_percent_accuracy() {
    let mut p = edge_profile();
    p.models[1].accuracy = 93.05;
    let err = p.validate().expect_err("percent is not a fraction");
    assert!(err.to_string().contains("not percent"), "{err}");
}

#[test]
fn profile_rejects_structural_defects() {
    let mut no_original = edge_profile();
    no_original.models[0].kind = ModelKind::Step1 { iter: 0 };
    let mut end_not_last = edge_profile();
    end_not_last.models[0].points.swap(2, 3);
    let mut end_with_coding = edge_profile();
    end_with_coding.models[0].points[3].codings.push(coding("f32", CodingClass::Raw, 1.0, None));
    let mut split_without_coding = edge_profile();
    split_without_coding.models[2].points[1].codings.clear();
    let mut negative_time = edge_profile();
    negative_time.models[1].points[2].edge_ms = -1.0;
    let mut nan_bytes = edge_profile();
    nan_bytes.models[1].points[2].codings[0].bytes = f64::NAN;
    let mut duplicate_id = edge_profile();
    duplicate_id.models[2].model_id = 1;
    for (what, p) in [
        ("no original", no_original),
        ("end not last", end_not_last),
        ("end with coding", end_with_coding),
        ("split without coding", split_without_coding),
        ("negative time", negative_time),
        ("NaN bytes", nan_bytes),
        ("duplicate id", duplicate_id),
    ] {
        assert!(matches!(p.validate(), Err(PlanError::InvalidProfile { .. })), "{what} must be rejected");
    }
}

#[test]
fn slowed_labels_the_profile_emulated() {
    let edge = edge_profile();
    let device = edge.slowed(10.0).expect("valid factor");
    assert_eq!(device.provenance.role, Role::Device);
    assert_eq!(device.provenance.emulated_slowdown, Some(10.0));
    assert_eq!(device.provenance.machine, edge.provenance.machine);
    assert_eq!(device.models[0].points[3].device_ms, 60.0);
    assert_eq!(device.models[0].points[1].codings[1].encode_ms, 2.0);
    // Slowing an emulated profile again compounds the label.
    let twice = device.slowed(2.0).expect("valid factor");
    assert_eq!(twice.provenance.emulated_slowdown, Some(20.0));
    for factor in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(edge.slowed(factor), Err(PlanError::InvalidSlowdown { .. })));
    }
}

#[test]
fn combine_takes_each_side_from_its_profile() {
    let edge = edge_profile();
    let mut device = edge.slowed(10.0).expect("valid factor");
    device.models[0].accuracy = 0.5; // accuracy comes from the edge profile
    device.models[0].points[1].codings[1].bytes = 11_000.0; // bytes come from the device
    let p = combine(&device, &edge).expect("consistent");
    let pool1 = &p.original().points[1];
    assert_eq!(pool1.device_ms, 20.0);
    assert_eq!(pool1.edge_ms, 4.0);
    assert_eq!(pool1.codings[1].encode_ms, 2.0);
    assert_eq!(pool1.codings[1].decode_ms, 0.1);
    assert_eq!(pool1.codings[1].bytes, 11_000.0);
    assert_eq!(p.original().accuracy, 0.9477);
    assert_eq!(p.device().emulated_slowdown, Some(10.0));
    assert_eq!(p.edge().emulated_slowdown, None);
}

#[test]
fn combine_errors_on_mismatched_profiles() {
    let edge = edge_profile();
    let device = edge.slowed(10.0).expect("valid factor");

    let mut missing_model = device.clone();
    missing_model.models.pop();
    let mut renamed_point = device.clone();
    renamed_point.models[1].points[1].name = "conv2_1".into();
    let mut other_elements = device.clone();
    other_elements.models[2].points[2].elements = 7;
    let mut other_coding = device.clone();
    other_coding.models[0].points[1].codings[1].coding = "q4-lz4".into();
    let mut other_kind = device.clone();
    other_kind.models[2].kind = ModelKind::Step2 { layer: 6, iter: 5 };
    for (what, d) in [
        ("missing model", missing_model),
        ("renamed point", renamed_point),
        ("other elements", other_elements),
        ("other coding", other_coding),
        ("other kind", other_kind),
    ] {
        assert!(matches!(combine(&d, &edge), Err(PlanError::Mismatch { .. })), "{what}");
    }
    assert!(matches!(combine(&edge, &edge), Err(PlanError::WrongRole { expected: Role::Device, .. })));
    assert!(matches!(combine(&device, &device), Err(PlanError::WrongRole { expected: Role::Edge, .. })));
}

// ---------------------------------------------------------------------------------------------
// Selection and baselines on the fixture

#[test]
fn infeasible_floor_gives_no_plan() {
    let p = profiles(10.0);
    let link = LinkState::mbps(10.0, 5.0);
    assert_eq!(select_plan(&p, &link, AccuracyFloor::Absolute(0.99)), None);
    assert_eq!(baseline(&p, &link, AccuracyFloor::Absolute(0.99), Baseline::LocalOnly), None);
    let mut planner = Planner::new(p, Hysteresis::default()).expect("valid hysteresis");
    assert_eq!(planner.decide(&link, AccuracyFloor::Absolute(0.99)), Decision::Infeasible);
    assert_eq!(planner.current(), None);
}

#[test]
fn slow_link_runs_locally_and_fast_link_offloads_the_pruned_split() {
    let p = profiles(10.0);
    let floor = AccuracyFloor::MaxLoss(0.03);
    let down = select_plan(&p, &LinkState::new(0.0, 5.0), floor).expect("local is feasible");
    assert!(down.is_local());
    assert_eq!(down.model_id, 2, "fastest local model above the floor");
    let fast = select_plan(&p, &LinkState::mbps(100.0, 1.0), floor).expect("feasible");
    assert!(!fast.is_local());
    assert!(fast.predicted.total_ms < down.at(&LinkState::mbps(100.0, 1.0)).total_ms);
}

#[test]
fn max_loss_floor_admits_a_member_exactly_at_the_budget() {
    let p = profiles(10.0);
    let loss = 0.9477 - 0.9220;
    let plan = select_plan(&p, &LinkState::new(0.0, 0.0), AccuracyFloor::MaxLoss(loss)).expect("feasible");
    assert_eq!(plan.model_id, 2);
}

#[test]
fn baselines_use_the_original_model_as_defined() {
    let p = profiles(10.0);
    let link = LinkState::mbps(10.0, 5.0);
    let floor = AccuracyFloor::MaxLoss(0.03);

    let local = baseline(&p, &link, floor, Baseline::LocalOnly).expect("feasible");
    assert_eq!((local.model_id, local.point_name.as_str(), local.coding.as_deref()), (0, "end", None));
    assert_eq!(local.predicted.total_ms, 60.0);

    let input = baseline(&p, &link, floor, Baseline::InputOffload).expect("feasible");
    assert_eq!((input.model_id, input.point_name.as_str()), (0, "input"));
    assert_eq!(input.coding.as_deref(), Some("png"), "smaller lossless coding wins");

    let uncoded = baseline(&p, &link, floor, Baseline::OriginalUncoded).expect("feasible");
    assert_eq!(uncoded.model_id, 0);
    let coded = baseline(&p, &link, floor, Baseline::OriginalCoded).expect("feasible");
    assert!(coded.predicted.total_ms <= uncoded.predicted.total_ms);
    let best = select_plan(&p, &link, floor).expect("feasible");
    for b in Baseline::ALL {
        let b = baseline(&p, &link, floor, b).expect("feasible");
        assert!(best.predicted.total_ms <= b.predicted.total_ms, "{b:?}");
    }
    // The uncoded baseline may only use raw codings.
    for bw in [0.1, 1.0, 10.0, 100.0, 1000.0] {
        let b = baseline(&p, &LinkState::mbps(bw, 5.0), floor, Baseline::OriginalUncoded).expect("feasible");
        assert!(matches!(b.coding.as_deref(), None | Some("f32") | Some("u8")), "{b:?}");
    }
}

#[test]
fn evaluate_prices_a_given_choice_and_rejects_unknown_ones() {
    let p = profiles(10.0);
    let link = LinkState::mbps(10.0, 5.0);
    let plan = evaluate(&p, 2, 2, Some("q8-lz4"), &link).expect("exists");
    let expected =
        latency(&p.model(2).expect("exists").points[2], Some(&p.model(2).expect("exists").points[2].codings[1]), &link);
    assert_eq!(plan.predicted, expected);
    assert!(matches!(evaluate(&p, 9, 2, Some("q8-lz4"), &link), Err(PlanError::UnknownChoice { .. })));
    assert!(matches!(evaluate(&p, 2, 2, Some("zstd"), &link), Err(PlanError::UnknownChoice { .. })));
    assert!(matches!(evaluate(&p, 2, 2, None, &link), Err(PlanError::UnknownChoice { .. })));
    assert!(matches!(evaluate(&p, 2, 3, Some("f32"), &link), Err(PlanError::UnknownChoice { .. })));
    assert!(evaluate(&p, 2, 3, None, &link).expect("local").is_local());
}

// ---------------------------------------------------------------------------------------------
// Hysteresis

/// Two choices whose latencies cross at exactly 10 Mbit/s (RTT 0): all-local, and offloading at
/// pool1.
fn crossover_profiles() -> Profiles {
    // Offload total at bandwidth B (bit/s), RTT 0: 10 + (12_340 + 160)·8·1000 / B = 10 + 1e8 / B ms.
    // Local: 20 ms. Equal at B = 1e7 = 10 Mbit/s.
    let edge = Profile {
        provenance: Provenance { role: Role::Edge, machine: "m".into(), threads: 1, emulated_slowdown: None },
        models: vec![ModelProfile {
            model_id: 0,
            name: "vgg16".into(),
            kind: ModelKind::Original,
            accuracy: 0.9,
            points: vec![
                PointProfile {
                    point: 1,
                    name: "pool1".into(),
                    device_ms: 4.0,
                    edge_ms: 5.0,
                    elements: 4096,
                    codings: vec![CodingCost {
                        coding: "q8-lz4".into(),
                        class: CodingClass::Lossy,
                        bytes: 12_340.0,
                        encode_ms: 0.5,
                        decode_ms: 0.5,
                        accuracy: None,
                    }],
                },
                PointProfile {
                    point: 2,
                    name: "end".into(),
                    device_ms: 20.0,
                    edge_ms: 0.0,
                    elements: 10,
                    codings: vec![],
                },
            ],
        }],
    };
    // device_ms 4 + encode 0.5 + decode 0.5 + edge 5 = 10 ms of compute.
    let mut device = edge.clone();
    device.provenance.role = Role::Device;
    combine(&device, &edge).expect("consistent")
}

#[test]
fn hysteresis_suppresses_switches_below_the_margin_and_allows_them_above() {
    let p = crossover_profiles();
    let floor = AccuracyFloor::Absolute(0.5);
    let min_acc = floor.min_accuracy(&p);
    let h = Hysteresis { margin_frac: 0.10, min_gain_ms: 1.0 };
    let local = evaluate(&p, 0, 2, None, &LinkState::mbps(10.0, 0.0)).expect("exists");
    let offload = evaluate(&p, 0, 1, Some("q8-lz4"), &LinkState::mbps(10.0, 0.0)).expect("exists");

    // 11 Mbit/s: offload = 10 + 9.09 = 19.09 ms vs 20 ms local — gain 0.91 ms < 2 ms margin.
    assert!(!h.should_switch(&local, &offload, &LinkState::mbps(11.0, 0.0), min_acc));
    assert!(Hysteresis::NONE.should_switch(&local, &offload, &LinkState::mbps(11.0, 0.0), min_acc));
    // 20 Mbit/s: offload = 15 ms — gain 5 ms > 2 ms.
    assert!(h.should_switch(&local, &offload, &LinkState::mbps(20.0, 0.0), min_acc));
    // Coming back: at 9 Mbit/s the re-priced offload is 21.1 ms — gain 1.1 ms < 2.11 ms.
    assert!(!h.should_switch(&offload, &local, &LinkState::mbps(9.0, 0.0), min_acc));
    // At 5 Mbit/s it is 30 ms — gain 10 ms > 3 ms.
    assert!(h.should_switch(&offload, &local, &LinkState::mbps(5.0, 0.0), min_acc));
    // The gain is judged against the current plan re-priced now, not its stale prediction:
    // `offload` was predicted at 10 Mbit/s (20 ms) but at 5 Mbit/s it costs 30 ms.
    assert!((offload.predicted.total_ms - 20.0).abs() < 1e-9);
    // Link down: the current offloading plan cannot finish, switch whatever the margin.
    assert!(h.should_switch(&offload, &local, &LinkState::new(0.0, 0.0), min_acc));
    // Never switch to the same choice or to a candidate below the floor.
    assert!(!h.should_switch(&local, &local, &LinkState::mbps(5.0, 0.0), min_acc));
    assert!(!h.should_switch(&offload, &local, &LinkState::mbps(5.0, 0.0), 0.95));
}

#[test]
fn hysteresis_settings_are_validated() {
    assert!(Hysteresis::default().validate().is_ok());
    assert!(Hysteresis::NONE.validate().is_ok());
    for bad in
        [Hysteresis { margin_frac: -0.1, min_gain_ms: 1.0 }, Hysteresis { margin_frac: 0.1, min_gain_ms: f64::NAN }]
    {
        assert!(matches!(bad.validate(), Err(PlanError::InvalidSetting { .. })));
    }
    let parsed: Hysteresis = toml::from_str("margin_frac = 0.2").expect("min_gain_ms defaults");
    assert_eq!(parsed, Hysteresis { margin_frac: 0.2, ..Hysteresis::default() });
    assert!(toml::from_str::<Hysteresis>("margin = 0.2").is_err());
}

#[test]
fn hysteresis_switches_when_the_floor_is_raised_even_if_slower() {
    let p = profiles(10.0);
    let link = LinkState::mbps(100.0, 1.0);
    let mut planner = Planner::new(p, Hysteresis::default()).expect("valid hysteresis");
    let Decision::Switch(first) = planner.decide(&link, AccuracyFloor::MaxLoss(0.03)) else {
        panic!("first decision switches");
    };
    assert!(first.accuracy < 0.94);
    let Decision::Switch(second) = planner.decide(&link, AccuracyFloor::Absolute(0.94)) else {
        panic!("current plan became infeasible");
    };
    assert!(second.accuracy >= 0.94);
    assert!(second.predicted.total_ms >= first.predicted.total_ms);
    assert_eq!(planner.current(), Some(&second));
    assert_eq!(planner.decide(&link, AccuracyFloor::Absolute(0.94)), Decision::Keep);
}

/// A deterministic jitter source (xorshift), so the noisy sequence is scripted, not random per run.
fn jitter(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn count_switches(h: Hysteresis, bandwidths: &[f64]) -> usize {
    let mut planner = Planner::new(crossover_profiles(), h).expect("valid hysteresis");
    let floor = AccuracyFloor::Absolute(0.5);
    let mut switches = 0;
    for (i, &bw) in bandwidths.iter().enumerate() {
        match planner.decide(&LinkState::new(bw, 0.0), floor) {
            Decision::Switch(_) if i > 0 => switches += 1,
            Decision::Infeasible => panic!("always feasible"),
            _ => {}
        }
    }
    switches
}

#[test]
fn noisy_bandwidth_around_a_crossover_does_not_flap() {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    // ±8 % around the 10 Mbit/s crossover.
    let noisy: Vec<f64> = (0..500).map(|_| 10e6 * (1.0 + 0.08 * jitter(&mut state))).collect();
    let bare = count_switches(Hysteresis::NONE, &noisy);
    let damped = count_switches(Hysteresis::default(), &noisy);
    assert!(bare > 50, "without hysteresis the argmin flaps ({bare} switches)");
    assert_eq!(damped, 0, "with hysteresis it holds its first plan");

    // A real move across the crossover is still followed, once, each way.
    let mut moved = noisy.clone();
    moved.extend((0..100).map(|_| 25e6 * (1.0 + 0.08 * jitter(&mut state))));
    moved.extend((0..100).map(|_| 4e6 * (1.0 + 0.08 * jitter(&mut state))));
    let damped = count_switches(Hysteresis::default(), &moved);
    assert!((1..=2).contains(&damped), "{damped} switches");
}

// ---------------------------------------------------------------------------------------------
// Properties on random profiles

/// Integer-valued costs make exact ties common, which exercises the tie-break.
fn arb_coding(index: usize, base_accuracy: f64) -> impl Strategy<Value = CodingCost> {
    (0..3u8, 0..40u32, 0..4u32, 0..4u32, prop::option::of(0..5u32)).prop_map(move |(class, kbytes, enc, dec, loss)| {
        CodingCost {
            coding: format!("c{index}"),
            class: [CodingClass::Raw, CodingClass::Lossless, CodingClass::Lossy][class as usize],
            bytes: f64::from(kbytes) * 500.0,
            encode_ms: f64::from(enc),
            decode_ms: f64::from(dec),
            accuracy: loss.map(|l| (base_accuracy - f64::from(l) * 0.01).max(0.0)),
        }
    })
}

fn arb_model(model_id: u32) -> impl Strategy<Value = ModelProfile> {
    (50..100u32, 0..4usize).prop_flat_map(move |(acc, mids)| {
        let accuracy = f64::from(acc) / 100.0;
        let points: Vec<_> = (0..mids + 1)
            .map(|i| {
                (0..40u32, 0..40u32, 1..4usize).prop_flat_map(move |(dev, edge, n_codings)| {
                    let codings: Vec<_> = (0..n_codings).map(|c| arb_coding(c, accuracy)).collect();
                    codings.prop_map(move |codings| PointProfile {
                        point: i as u16,
                        name: if i == 0 { "input".into() } else { format!("l{i}") },
                        device_ms: f64::from(dev),
                        edge_ms: f64::from(edge),
                        elements: 100,
                        codings,
                    })
                })
            })
            .collect();
        (points, 0..80u32).prop_map(move |(mut points, end_ms)| {
            points.push(PointProfile {
                point: (mids + 1) as u16,
                name: "end".into(),
                device_ms: f64::from(end_ms),
                edge_ms: 0.0,
                elements: 10,
                codings: vec![],
            });
            ModelProfile {
                model_id,
                name: format!("m{model_id}"),
                kind: if model_id == 0 { ModelKind::Original } else { ModelKind::Step2 { layer: 1, iter: model_id } },
                accuracy,
                points,
            }
        })
    })
}

fn arb_profiles() -> impl Strategy<Value = Profiles> {
    (1..5u32, 1..4u32).prop_flat_map(|(n, slowdown)| {
        let models: Vec<_> = (0..n).map(arb_model).collect();
        models.prop_map(move |models| {
            let edge = Profile {
                provenance: Provenance {
                    role: Role::Edge,
                    machine: "edge".into(),
                    threads: 1,
                    emulated_slowdown: None,
                },
                models,
            };
            let device = edge.slowed(f64::from(slowdown)).expect("valid factor");
            combine(&device, &edge).expect("generated profiles are consistent")
        })
    })
}

fn arb_link() -> impl Strategy<Value = LinkState> {
    (prop_oneof![Just(0.0), 1e4..1e9f64], 0..30u32).prop_map(|(bw, rtt)| LinkState::new(bw, f64::from(rtt)))
}

fn arb_floor() -> impl Strategy<Value = AccuracyFloor> {
    prop_oneof![
        (40..100u32).prop_map(|a| AccuracyFloor::Absolute(f64::from(a) / 100.0)),
        (0..10u32).prop_map(|l| AccuracyFloor::MaxLoss(f64::from(l) / 100.0)),
    ]
}

type Key = (u32, u16, Option<String>);

/// Exhaustive enumeration, written independently of the crate's scan, with the documented
/// tie-break.
fn brute_force(p: &Profiles, link: &LinkState, min_accuracy: f64) -> Option<(Key, f64)> {
    let mut all = Vec::new();
    for m in p.models() {
        for pt in &m.points {
            let choices: Vec<Option<&CodingCost>> =
                if pt.name == "end" { vec![None] } else { pt.codings.iter().map(Some).collect() };
            for c in choices {
                let acc = c.and_then(|c| c.accuracy).unwrap_or(m.accuracy);
                let total = latency(pt, c, link).total_ms;
                if acc + ACCURACY_TOLERANCE < min_accuracy || !total.is_finite() {
                    continue;
                }
                let bytes = c.map_or(0.0, |c| c.bytes);
                all.push((total, acc, bytes, m.model_id, pt.point, c.map(|c| c.coding.clone())));
            }
        }
    }
    all.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(b.1.total_cmp(&a.1))
            .then(a.2.total_cmp(&b.2))
            .then(a.3.cmp(&b.3))
            .then(a.4.cmp(&b.4))
            .then(a.5.cmp(&b.5))
    });
    all.into_iter().next().map(|(t, _, _, m, pt, c)| ((m, pt, c), t))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn select_plan_equals_brute_force(p in arb_profiles(), link in arb_link(), floor in arb_floor()) {
        let got = select_plan(&p, &link, floor);
        let want = brute_force(&p, &link, floor.min_accuracy(&p));
        match (got, want) {
            (None, None) => {}
            (Some(plan), Some((key, total))) => {
                prop_assert_eq!((plan.model_id, plan.point, plan.coding.clone()), key);
                prop_assert_eq!(plan.predicted.total_ms, total);
            }
            (got, want) => prop_assert!(false, "planner {got:?} vs brute force {want:?}"),
        }
    }

    #[test]
    fn the_sustainable_choice_is_the_fastest_plan_that_keeps_up(
        p in arb_profiles(), link in arb_link(), floor in arb_floor(), interval in 0.1..100.0f64,
    ) {
        let min = floor.min_accuracy(&p);
        let mut keeping_up = Vec::new();
        for m in p.models() {
            for pt in &m.points {
                let choices: Vec<Option<&CodingCost>> = if pt.name == "end" { vec![None] } else { pt.codings.iter().map(Some).collect() };
                for c in choices {
                    let b = latency(pt, c, &link);
                    let acc = c.and_then(|c| c.accuracy).unwrap_or(m.accuracy);
                    if b.total_ms.is_finite() && acc + ACCURACY_TOLERANCE >= min && b.bottleneck_ms() <= interval {
                        keeping_up.push(b.total_ms);
                    }
                }
            }
        }
        let got = select_sustainable(&p, &link, floor, interval);
        match keeping_up.iter().copied().reduce(f64::min) {
            Some(fastest) => {
                let plan = got.expect("a plan keeps up");
                prop_assert!(plan.predicted.bottleneck_ms() <= interval);
                prop_assert_eq!(plan.predicted.total_ms, fastest);
            }
            None => prop_assert_eq!(got, select_plan(&p, &link, floor)),
        }
    }

    #[test]
    fn accuracy_floor_is_always_respected(p in arb_profiles(), link in arb_link(), floor in arb_floor()) {
        let min = floor.min_accuracy(&p);
        if let Some(plan) = select_plan(&p, &link, floor) {
            prop_assert!(plan.accuracy + ACCURACY_TOLERANCE >= min);
        }
        for b in Baseline::ALL {
            if let Some(plan) = baseline(&p, &link, floor, b) {
                prop_assert!(plan.accuracy + ACCURACY_TOLERANCE >= min);
                prop_assert_eq!(plan.model_id, p.original().model_id);
            }
        }
    }

    #[test]
    fn more_bandwidth_never_raises_the_chosen_latency(
        p in arb_profiles(), link in arb_link(), factor in 1.0..100.0f64, floor in arb_floor(),
    ) {
        let faster = LinkState::new(link.bandwidth_bps.max(1e3) * factor, link.rtt_ms);
        let slow = select_plan(&p, &link, floor).map(|plan| plan.predicted.total_ms);
        let fast = select_plan(&p, &faster, floor).map(|plan| plan.predicted.total_ms);
        match (slow, fast) {
            (Some(s), Some(f)) => prop_assert!(f <= s, "{f} > {s}"),
            (None, None) | (None, Some(_)) => {}
            (Some(_), None) => prop_assert!(false, "a plan feasible on the slow link vanished"),
        }
    }

    #[test]
    fn select_plan_is_the_first_frontier_plan_meeting_the_floor(
        p in arb_profiles(), link in arb_link(), floor in arb_floor(),
    ) {
        let frontier = pareto_frontier(&p, &link);
        for w in frontier.windows(2) {
            prop_assert!(w[0].predicted.total_ms <= w[1].predicted.total_ms);
            prop_assert!(w[0].accuracy < w[1].accuracy);
        }
        let min = floor.min_accuracy(&p);
        let first = frontier.into_iter().find(|plan| plan.accuracy + ACCURACY_TOLERANCE >= min);
        prop_assert_eq!(first, select_plan(&p, &link, floor));
    }

    #[test]
    fn planner_only_switches_to_the_current_optimum(
        p in arb_profiles(), links in prop::collection::vec(arb_link(), 1..20), floor in arb_floor(),
    ) {
        let mut planner = Planner::new(p.clone(), Hysteresis::default()).expect("valid hysteresis");
        for link in &links {
            let best = select_plan(&p, link, floor);
            match planner.decide(link, floor) {
                Decision::Switch(plan) => prop_assert_eq!(Some(plan), best),
                Decision::Keep => {
                    let current = planner.current().expect("keep implies a current plan");
                    prop_assert!(current.accuracy + ACCURACY_TOLERANCE >= floor.min_accuracy(&p));
                    prop_assert_eq!(current.predicted, current.at(link));
                }
                Decision::Infeasible => prop_assert!(best.is_none()),
            }
        }
    }
}
