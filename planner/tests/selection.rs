//! Selection and baselines on the shared fixture.

use tandem_planner::{
    AccuracyFloor, Baseline, Decision, Hysteresis, LinkState, PlanError, Planner, baseline, evaluate, latency,
    select_plan,
};

use crate::fixtures::profiles;

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
    // With only lossless input codings profiled, the lossy input baseline is the same plan.
    let any = baseline(&p, &link, floor, Baseline::InputOffloadLossy).expect("feasible");
    assert!(any.same_choice(&input), "{any:?}");

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

/// A camera-like series built to need a split: the input is a 12 kB JPEG, the unpruned model is
/// slow on the device, and a step-2 member sends 100 B at pool4 after a head that costs a third of
/// the local run. At high bandwidth the coded input wins, in a middle band the step-2 split, at very
/// low bandwidth the device runs everything (times are the edge's; the device is 10x slower).
fn needs_a_split() -> tandem_planner::Profiles {
    use tandem_planner::testkit::{CodingExt, coding, end, model, point, profile, slowed_device};
    use tandem_planner::{CodingClass, ModelKind, Role};
    let input = |tail_ms: f64| {
        point(0, "input", 0.0, tail_ms, vec![coding("jpeg90", CodingClass::Lossy, 12_000.0).accuracy(0.948)])
    };
    let original = model(
        0,
        "vgg16",
        ModelKind::Original,
        0.95,
        vec![
            input(6.0),
            point(1, "pool4", 4.0, 2.0, vec![coding("q8-lz4", CodingClass::Lossy, 2_000.0).accuracy(0.949)]),
            end(2, 6.0),
        ],
    );
    let member = model(
        1,
        "step2-pool4",
        ModelKind::Step2 { layer: 10, iter: 8 },
        0.945,
        vec![
            input(5.0),
            point(1, "pool4", 2.0, 0.5, vec![coding("q8-lz4", CodingClass::Lossy, 100.0).accuracy(0.944)]),
            end(2, 4.0),
        ],
    );
    slowed_device(&profile(Role::Edge, 2, vec![original, member]), 10.0)
}

#[test]
fn a_profile_built_to_need_a_split_gets_all_three_regimes() {
    let p = needs_a_split();
    let floor = AccuracyFloor::MaxLoss(0.018);
    let at = |mbps: f64| select_plan(&p, &LinkState::mbps(mbps, 2.0), floor).expect("local is always feasible");
    let high = at(100.0);
    assert_eq!(high.point_name, "input", "{high:?}");
    let middle = at(3.0);
    assert_eq!((middle.model_id, middle.point_name.as_str()), (1, "pool4"), "{middle:?}");
    let low = at(0.01);
    assert!(low.is_local(), "{low:?}");
    // The camera's baseline: the unpruned model behind a JPEG input (the profile has no lossless
    // input coding, so the lossless input-offload baseline does not exist).
    let link = LinkState::mbps(3.0, 2.0);
    let jpeg = baseline(&p, &link, floor, Baseline::InputOffloadLossy).expect("feasible");
    assert_eq!((jpeg.model_id, jpeg.point_name.as_str(), jpeg.coding.as_deref()), (0, "input", Some("jpeg90")));
    assert_eq!(baseline(&p, &link, floor, Baseline::InputOffload), None);
    assert!(jpeg.predicted.total_ms > middle.predicted.total_ms, "{jpeg:?} vs {middle:?}");
    // The unpruned model's best split at the middle bandwidth is slower than the step-2 split.
    let unpruned = baseline(&p, &LinkState::mbps(3.0, 2.0), floor, Baseline::OriginalCoded).expect("feasible");
    assert!(unpruned.predicted.total_ms > middle.predicted.total_ms, "{unpruned:?} vs {middle:?}");
}

#[test]
fn ranked_plans_start_with_the_choice_and_are_ordered_and_distinct() {
    let p = needs_a_split();
    let floor = AccuracyFloor::MaxLoss(0.018);
    for mbps in [0.01, 0.3, 3.0, 30.0, 300.0] {
        let link = LinkState::mbps(mbps, 2.0);
        let ranked = tandem_planner::ranked_plans(&p, &link, floor, 3);
        assert_eq!(ranked.len(), 3, "{mbps} Mbit/s");
        assert_eq!(Some(&ranked[0]), select_plan(&p, &link, floor).as_ref(), "{mbps} Mbit/s");
        assert!(ranked.windows(2).all(|w| w[0].predicted.total_ms <= w[1].predicted.total_ms), "{ranked:?}");
        assert!(!ranked[0].same_choice(&ranked[1]) && !ranked[1].same_choice(&ranked[2]), "{ranked:?}");
        let min = floor.min_accuracy(&p);
        assert!(ranked.iter().all(|r| r.accuracy >= min - 1e-9), "{ranked:?}");
    }
    // Asking for more than exist returns every feasible plan, once.
    let all = tandem_planner::ranked_plans(&p, &LinkState::mbps(3.0, 2.0), AccuracyFloor::Absolute(0.0), 100);
    assert_eq!(all.len(), 2 * 3, "two members x (input, pool4, end)");
}

/// A member below the floor is not admitted by a coding whose accuracy, measured on the
/// profile's few accuracy images, happens to read above its model's (RESULTS §10c).
#[test]
fn a_coding_never_reads_more_accurate_than_its_model() {
    use tandem_planner::testkit::{CodingExt, coding, end, model, point, profile, same_machine};
    use tandem_planner::{CodingClass, ModelKind, Role};
    let pool1 = |bytes: f64, coded_accuracy: f64| {
        point(1, "pool1", 1.0, 1.0, vec![coding("q4-lz4", CodingClass::Lossy, bytes).accuracy(coded_accuracy)])
    };
    let original = model(0, "original", ModelKind::Original, 0.74, vec![pool1(5_000.0, 0.73), end(2, 50.0)]);
    // 71.7 % on the test split, 72.2 % with its coding on 200 images; the floor is 72.15 %.
    let member = model(
        1,
        "step2-conv1_2-7",
        ModelKind::Step2 { layer: 1, iter: 2 },
        0.717,
        vec![pool1(100.0, 0.722), end(2, 50.0)],
    );
    let p = same_machine(&profile(Role::Edge, 1, vec![original, member]));
    assert_eq!(p.model(1).expect("exists").accuracy_with(p.model(1).expect("exists").points[0].codings.first()), 0.717);
    let plan = select_plan(&p, &LinkState::mbps(1.0, 1.0), AccuracyFloor::Absolute(0.7215)).expect("the original fits");
    assert_eq!((plan.model_id, plan.accuracy), (0, 0.73), "{plan:?}");
}
