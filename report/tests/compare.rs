//! The chosen plan and every baseline respect the floor; ratios are against the unpruned best
//! split; profile pairing and emulation.

use tandem_planner::testkit::{CodingExt, coding, end, model, point, profile as profile_of};
use tandem_planner::{AccuracyFloor, Baseline, CodingClass, CodingCost, LinkState, ModelKind, Profile, Role};
use tandem_planner::{ProfileSource, build_profiles};
use tandem_report::compare::{Comparison, ratio};
use tandem_report::describe_sides;

/// A coding of this file's fixture: 0.1 ms to encode and to decode.
fn coded(name: &str, class: CodingClass, bytes: f64) -> CodingCost {
    coding(name, class, bytes).times(0.1, 0.1)
}

/// Three models: the original (95 %), a pruned one (94 %) sending 10× less at pool1, and a
/// heavily pruned one (90 %) sending 100× less. A lossy coding at the original's pool1 costs 6
/// points.
fn profile() -> Profile {
    let member = |id: u32, name: &str, kind, accuracy: f64, pool1_bytes: f64, compute: f64| {
        let mut pool1 = point(
            1,
            "pool1",
            compute,
            compute,
            vec![
                coded("f32", CodingClass::Raw, pool1_bytes),
                coded("q4-lz4", CodingClass::Lossy, pool1_bytes / 8.0).accuracy(accuracy - 0.06),
            ],
        );
        pool1.elements = 4096;
        let input = point(0, "input", 0.0, 2.0 * compute, vec![coded("f32", CodingClass::Raw, 4176.0)]);
        model(id, name, kind, accuracy, vec![input, pool1, end(2, 2.0 * compute)])
    };
    let mut p = profile_of(
        Role::Edge,
        2,
        vec![
            member(0, "original", ModelKind::Original, 0.95, 16_464.0, 4.0),
            member(1, "step1-3", ModelKind::Step1 { iter: 3 }, 0.94, 1_680.0, 1.0),
            member(2, "step2-conv1-k9", ModelKind::Step2 { layer: 1, iter: 9 }, 0.90, 248.0, 0.5),
        ],
    );
    p.provenance.machine = "test-host (cpu)".into();
    p
}

#[test]
fn plans_meet_the_floor_and_a_looser_floor_is_never_slower() {
    let profiles = build_profiles(ProfileSource::Single(profile()), Some(10.0)).expect("profiles");
    let link = LinkState::mbps(1.0, 20.0);
    let mut previous = f64::INFINITY;
    for loss in [0.0, 0.01, 0.02, 0.05, 0.1, 0.2] {
        let floor = AccuracyFloor::MaxLoss(loss);
        let c = Comparison::new(&profiles, link, floor);
        let min = 0.95 - loss;
        let chosen = c.chosen.as_ref().expect("the original always qualifies");
        assert!(chosen.accuracy >= min - 1e-9, "loss {loss}: chose {} at {}", chosen.model_name, chosen.accuracy);
        for (b, plan) in &c.baselines {
            if let Some(p) = plan {
                assert!(p.accuracy >= min - 1e-9, "{b:?}");
                assert!(
                    chosen.predicted.total_ms <= p.predicted.total_ms + 1e-9,
                    "2-step searches a superset of {b:?}"
                );
            }
        }
        assert!(chosen.predicted.total_ms <= previous + 1e-9);
        previous = chosen.predicted.total_ms;
        let text = c.render_text();
        assert!(text.contains("2-step (chosen)") && text.contains(&chosen.model_name), "{text}");
        assert!(text.contains(&format!("accuracy >= {:.2} %", min * 100.0)), "{text}");
    }
    // At 2 points of loss the 90 % model and every q4 coding are out; the 94 % model is in.
    let c = Comparison::new(&profiles, link, AccuracyFloor::MaxLoss(0.02));
    let chosen = c.chosen.as_ref().expect("feasible");
    assert_eq!(chosen.model_name, "step1-3");
    assert_ne!(chosen.coding.as_deref(), Some("q4-lz4"));
    // At 5 points the 90 % model is allowed (uncoded) and sends least; q4 is still out.
    let c = Comparison::new(&profiles, link, AccuracyFloor::MaxLoss(0.05));
    assert_eq!(c.chosen.as_ref().map(|p| p.model_name.as_str()), Some("step2-conv1-k9"));
}

#[test]
fn ratios_are_against_the_unpruned_best_uncoded_split() {
    let profiles = build_profiles(ProfileSource::Single(profile()), Some(10.0)).expect("profiles");
    let c = Comparison::new(&profiles, LinkState::mbps(1.0, 0.0), AccuracyFloor::MaxLoss(0.02));
    let (chosen, reference) = (c.chosen.as_ref().expect("chosen"), c.reference().expect("reference"));
    assert_eq!(reference.model_name, "original");
    assert!(reference.coding.as_deref().is_none_or(|n| n == "f32"));
    let r = c.ratios().expect("ratios");
    assert_eq!(r.transmission, ratio(reference.cost.bytes, chosen.cost.bytes));
    assert_eq!(r.end_to_end, reference.predicted.total_ms / chosen.predicted.total_ms);
    assert!(r.end_to_end >= 1.0);
    assert!(c.render_text().contains("vs the unpruned best split"));
    assert_eq!(ratio(0.0, 0.0), 1.0);
    assert!(ratio(5.0, 0.0).is_infinite());
}

#[test]
fn an_unreachable_floor_is_reported_not_a_panic() {
    let profiles = build_profiles(ProfileSource::Single(profile()), None).expect("profiles");
    let c = Comparison::new(&profiles, LinkState::mbps(10.0, 5.0), AccuracyFloor::Absolute(0.99));
    assert!(c.chosen.is_none());
    assert!(c.baselines.iter().all(|(_, p)| p.is_none()));
    assert!(c.ratios().is_none());
    let text = c.render_text();
    assert!(text.contains("nothing meets the floor") && text.contains("no ratios"), "{text}");
}

#[test]
fn pairing_and_emulation_are_labelled() {
    let plain = build_profiles(ProfileSource::Single(profile()), None).expect("profiles");
    assert_eq!(plain.device().emulated_slowdown, None);
    assert!(!describe_sides(&plain).contains("EMULATED"));
    let slow = build_profiles(ProfileSource::Single(profile()), Some(10.0)).expect("profiles");
    assert_eq!(slow.device().emulated_slowdown, Some(10.0));
    assert!(describe_sides(&slow).contains("EMULATED as 10×"));
    assert_eq!(slow.original().points[1].device_ms, 40.0, "device side slowed");
    assert_eq!(slow.original().points[1].edge_ms, 4.0, "edge side as measured");
    // A device profile passed as the edge is refused by the planner's role check.
    let mut device = profile();
    device.provenance.role = Role::Device;
    let err =
        build_profiles(ProfileSource::Pair { device: device.clone(), edge: device }, None).expect_err("wrong role");
    assert!(err.to_string().contains("edge"), "{err}");
    assert!(build_profiles(ProfileSource::Single(profile()), Some(-1.0)).is_err());
    // Baselines are all there, in the documented order.
    let c = Comparison::new(&slow, LinkState::mbps(1.0, 0.0), AccuracyFloor::MaxLoss(0.02));
    assert_eq!(c.baselines.iter().map(|(b, _)| *b).collect::<Vec<_>>(), Baseline::ALL);
}

/// A camera-like series: a 12 kB JPEG input, a step-2 member that sends 100 B at pool4 after a
/// third of the local compute (1 of 3 ms); the device as fast as the edge.
fn camera_like_series() -> tandem_planner::Profiles {
    let member = |id: u32, name: &str, kind, accuracy: f64, pool4_bytes: f64| {
        let input = point(0, "input", 0.0, 1.0, vec![coded("jpeg90", CodingClass::Lossy, 12_000.0)]);
        let pool4 = point(1, "pool4", 1.0, 0.2, vec![coded("q8-lz4", CodingClass::Lossy, pool4_bytes)]);
        model(id, name, kind, accuracy, vec![input, pool4, end(2, 3.0)])
    };
    let edge = profile_of(
        Role::Edge,
        2,
        vec![
            member(0, "original", ModelKind::Original, 0.90, 2_000.0),
            member(1, "step2-conv9-k7", ModelKind::Step2 { layer: 9, iter: 7 }, 0.89, 100.0),
        ],
    );
    tandem_planner::testkit::slowed_device(&edge, 1.0)
}

/// On a fast device everything runs locally; on one 8× slower the three regimes appear across
/// bandwidth, the split faster than the unpruned model's best.
#[test]
fn the_regime_map_finds_the_device_speed_at_which_a_split_wins() {
    use tandem_report::regimes::{Regime, regime_map, regime_table};
    let profiles = camera_like_series();
    let floor = AccuracyFloor::MaxLoss(0.018);
    let bps = [10e3, 3e6, 100e6];
    let rows = regime_map(&profiles, floor, 2.0, &[1.0, 8.0], &bps).expect("valid factors");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[1].factor, rows[1].slowdown), (8.0, 8.0));
    let regimes = |r: usize| rows[r].cells.iter().map(|c| c.regime()).collect::<Vec<_>>();
    // ×1: 3 ms locally beats any round trip (2 ms) plus work on the edge.
    assert_eq!(regimes(0), vec![Some(Regime::Local); 3]);
    // ×8: local 24 ms; at 3 Mbit/s the pool4 split (8 ms head + 100 B) beats a 32 ms JPEG; at
    // 100 Mbit/s the JPEG input (0.96 ms on the wire) wins; at 10 kbit/s nothing can be sent.
    assert_eq!(
        regimes(1),
        vec![Some(Regime::Local), Some(Regime::Split { point: "pool4".into() }), Some(Regime::Input)]
    );
    let split = &rows[1].cells[1];
    assert_eq!(split.chosen.as_ref().map(|p| p.model_id), Some(1));
    let speedup = split.speedup().expect("both plans exist");
    assert!(speedup > 1.0, "the split beats the unpruned model's best plan: {speedup}");
    // Every cell is the planner's own choice on the slowed profiles.
    let slowed = profiles.device_slowed(8.0).expect("valid");
    for c in &rows[1].cells {
        assert_eq!(c.chosen, tandem_planner::select_plan(&slowed, &c.link, floor));
    }
    let md = regime_table(&rows);
    assert!(md.contains("**pool4** `step2-conv9-k7`"), "{md}");
    assert!(md.contains("A mid-network split is chosen for a device ×8 at 3 Mbit/s."), "{md}");
    // Where another regime wins, the fastest split is there for comparison, and slower.
    let local = &rows[0].cells[1];
    assert_eq!(local.best_split.as_ref().map(|p| p.point_name.as_str()), Some("pool4"));
    assert!(local.split_slowdown().expect("a split exists") > 1.0, "{local:?}");
    assert_eq!(split.split_slowdown(), Some(1.0));
    assert!(md.contains("local (split "), "{md}");
    assert!(md.contains("Closest: ×1 at 100 Mbit/s, `step2-conv9-k7` split at pool4 with q8-lz4"), "{md}");
    assert!(regime_map(&profiles, floor, 2.0, &[0.0], &bps).is_err());
}

/// The break-even table: where a split loses on compute alone it says so; where it loses on
/// bytes, a request just under the break-even size wins and one just over it does not.
#[test]
fn split_needs_names_the_term_that_keeps_a_split_from_winning() {
    use tandem_report::regimes::{BreakEven, needs_table, split_needs};
    let profiles = camera_like_series();
    let floor = AccuracyFloor::MaxLoss(0.018);
    // No round trip: at 300 kbit/s the 100 B request (2.7 ms) is what keeps the split (2.7 ms of
    // compute, coding and result) behind local (3 ms); at 3 Mbit/s it wins.
    let needs = split_needs(&profiles, floor, 0.0, &[300e3, 3e6]);
    assert_eq!(needs.iter().map(|n| n.point.as_str()).collect::<Vec<_>>(), vec!["pool4"]);
    let [(slow_link, Some((split, slow))), (_, Some((_, fast)))] = needs[0].cells.as_slice() else {
        panic!("both cells have a split: {needs:?}")
    };
    assert_eq!(split.model_id, 1, "the fastest split is the step-2 member's");
    assert_eq!(*fast, BreakEven::Wins);
    let BreakEven::Bytes { bytes, max_bytes } = *slow else { panic!("bytes-bound: {slow:?}") };
    assert_eq!(bytes, 100.0);
    assert!(max_bytes > 0.0 && max_bytes < bytes, "{max_bytes}");
    let chosen = tandem_planner::select_plan(&profiles, slow_link, floor).expect("local is feasible");
    assert!(chosen.is_local());
    let with_bytes = |b: f64| {
        let mut p = split.clone();
        p.cost.bytes = b;
        p.at(slow_link).total_ms
    };
    assert!(with_bytes(max_bytes * 0.99) < chosen.predicted.total_ms);
    assert!(with_bytes(max_bytes * 1.01) > chosen.predicted.total_ms);
    assert!((slow.shrink_needed() - bytes / max_bytes).abs() < 1e-9);
    // With a 2 ms round trip the split's compute alone (3.3 ms) is slower than local at any rate.
    let needs = split_needs(&profiles, floor, 2.0, &[300e3, 100e6]);
    for (_, need) in &needs[0].cells {
        let (_, need) = need.as_ref().expect("a split exists");
        assert!(matches!(need, BreakEven::Compute { fixed_ms, chosen_ms } if fixed_ms >= chosen_ms), "{need:?}");
        assert_eq!(need.shrink_needed(), f64::INFINITY);
    }
    let md = needs_table(&needs);
    assert!(md.contains("Compute alone (no request at all) is slower than the chosen plan in 2 of 2 cells."), "{md}");
    let md = needs_table(&split_needs(&profiles, floor, 0.0, &[300e3]));
    assert!(md.contains("`step2-conv9-k7` at pool4 coding to"), "{md}");
}
