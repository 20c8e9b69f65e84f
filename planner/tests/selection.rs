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
