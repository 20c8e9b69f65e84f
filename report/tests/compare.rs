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
