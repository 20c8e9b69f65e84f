//! What the controller adds to the profiles online: calibration (what the calibrator learns from
//! scripted frames, and how it changes what the planner picks) and the camera's frame rate (plans
//! that cannot keep up with it are avoided).

use proptest::prelude::*;
use tandem_planner::calibration::MAX_POINTS;
use tandem_planner::testkit::{self, CodingExt, coding, model, profile, same_machine};
use tandem_planner::{
    AccuracyFloor, Calibration, Calibrator, CalibratorConfig, CodingClass, Decision, FrameCost, Hysteresis, LinkState,
    ModelKind, PlanCost, Planner, PointProfile, Profiles, Role, evaluate, select_plan, select_sustainable,
};

/// A point whose only coding (if any) is q8-lz4 sending `bytes`.
fn point(point: u16, name: &str, device_ms: f64, edge_ms: f64, bytes: Option<f64>) -> PointProfile {
    let codings = bytes.map(|b| coding("q8-lz4", CodingClass::Lossy, b).times(0.5, 0.25)).into_iter().collect();
    PointProfile { elements: 256, ..testkit::point(point, name, device_ms, edge_ms, codings) }
}

/// One model: offload the input (1 kB, 2 ms of edge work) or run everything locally (10 ms).
fn profiles() -> Profiles {
    let points = vec![point(0, "input", 0.0, 2.0, Some(1_000.0)), point(1, "end", 10.0, 0.0, None)];
    same_machine(&profile(Role::Edge, 1, vec![model(0, "original", ModelKind::Original, 0.9, points)]))
}

/// 1 kB at 1 Mbit/s = 8 ms, + 4 ms RTT + 0.384 ms result (48 B) + 2.75 ms of coding and edge
/// work = 15.134 ms: slower than the profiled 10 ms of local inference.
fn link() -> LinkState {
    LinkState::mbps(1.0, 4.0)
}

fn cost(p: &Profiles, point: u16) -> PlanCost {
    let coding = (point == 0).then_some("q8-lz4");
    evaluate(p, 0, point, coding, &link()).expect("known choice").cost
}

const FLOOR: AccuracyFloor = AccuracyFloor::MaxLoss(0.0);

#[test]
fn identity_changes_nothing_and_a_calibration_corrects_each_stage() {
    let p = profiles();
    let offload = cost(&p, 0);
    assert_eq!(Calibration::IDENTITY.apply(&offload), offload);
    let cal = Calibration::scales(2.0, 4.0, 3.0);
    let c = cal.apply(&offload);
    assert_eq!((c.encode_ms, c.decode_ms, c.edge_ms, c.bytes), (2.0, 0.75, 6.0, offload.bytes));
    assert_eq!(cal.apply(&cost(&p, 1)).device_ms, 20.0);
    // Only compute changes: 1.5 ms more encoding, 0.5 ms more decoding, 4 ms more edge work.
    assert!((c.at(&link()).total_ms - (offload.at(&link()).total_ms + 1.5 + 0.5 + 4.0)).abs() < 1e-9);

    // Offsets are added where a stage has work, and only there: offloading the input runs no
    // inference on the device, so its device time stays 0.
    let cal =
        Calibration { device_offset_ms: 3.0, encode_offset_ms: 0.5, edge_offset_ms: 1.0, ..Calibration::IDENTITY };
    let c = cal.apply(&offload);
    assert_eq!((c.device_ms, c.encode_ms, c.decode_ms, c.edge_ms), (0.0, 1.0, 0.25, 3.0));
    assert_eq!(cal.apply(&cost(&p, 1)).device_ms, 13.0);
    // Never below zero.
    let fast = Calibration { device_offset_ms: -50.0, ..Calibration::IDENTITY };
    assert_eq!(fast.apply(&cost(&p, 1)).device_ms, 0.0);
}

fn local_frame(p: &Profiles, device_ms: f64) -> FrameCost {
    FrameCost { profiled: cost(p, 1), device_ms, encode_ms: 0.0, edge_ms: 0.0 }
}

/// A local plan whose device work is profiled at `profiled` ms.
fn head_frame(profiled: f64, device_ms: f64) -> FrameCost {
    let profiled =
        PlanCost { device_ms: profiled, encode_ms: 0.0, bytes: 0.0, decode_ms: 0.0, edge_ms: 0.0, offloads: false };
    FrameCost { profiled, device_ms, encode_ms: 0.0, edge_ms: 0.0 }
}

fn device_price(c: &Calibration, profiled: f64) -> f64 {
    c.apply(&head_frame(profiled, 0.0).profiled).device_ms
}

#[test]
fn the_calibrator_learns_a_slow_device_after_its_warm_up() {
    let p = profiles();
    let mut cal = Calibrator::default();
    assert_eq!(cal.calibration(), Calibration::IDENTITY);
    let min = CalibratorConfig::default().min_frames;
    // A cold first frame (50 ms), then 15 ms frames where the profile says 10.
    cal.observe(&local_frame(&p, 50.0));
    for _ in 1..min - 1 {
        cal.observe(&local_frame(&p, 15.0));
    }
    assert_eq!(cal.calibration(), Calibration::IDENTITY, "not before {min} frames");
    assert!(!cal.ready());
    cal.observe(&local_frame(&p, 15.0));
    assert!(cal.ready());
    for _ in 0..200 {
        cal.observe(&local_frame(&p, 15.0));
    }
    let c = cal.calibration();
    // One plan cannot tell a ratio from a constant: it is learned as a constant.
    assert_eq!(c.device_scale, 1.0, "{c:?}");
    assert!((c.device_offset_ms - 5.0).abs() < 1e-3, "the cold frame is forgotten: {c:?}");
    assert!((device_price(&c, 10.0) - 15.0).abs() < 1e-3, "the plan that ran is priced as measured");
    assert_eq!(c.encode_scale, 1.0, "no offloaded frame seen");
    assert_eq!(c.encode_offset_ms, 0.0);
    // The edge borrows the device's error as a scale (1.5×), not its constant.
    assert!((c.edge_scale - 1.5).abs() < 1e-3 && c.edge_offset_ms == 0.0, "{c:?}");
    assert_eq!(cal.frames(), 200 + min);
}

/// RESULTS §8's case: a plan with a small device head measured 2.5 ms over its profile. As a
/// ratio (×6) that priced the whole model at 24 ms; as a constant, at the 6.5 ms it measured.
#[test]
fn a_constant_error_learned_on_a_small_head_transfers_to_the_whole_model() {
    let mut cal = Calibrator::default();
    for _ in 0..100 {
        cal.observe(&head_frame(0.5, 3.0));
    }
    let c = cal.calibration();
    assert!((device_price(&c, 4.0) - 6.5).abs() < 1e-6, "{c:?}");
    // Running the whole model afterwards confirms the constant: the line through both points
    // has slope 1.
    for _ in 0..100 {
        cal.observe(&head_frame(4.0, 6.5));
    }
    let c = cal.calibration();
    assert!((c.device_scale - 1.0).abs() < 1e-6 && (c.device_offset_ms - 2.5).abs() < 1e-6, "{c:?}");
}

#[test]
fn plans_of_different_work_teach_a_ratio_when_the_error_is_one() {
    let mut cal = Calibrator::default();
    for (profiled, measured) in [(2.0, 4.0), (10.0, 20.0)] {
        for _ in 0..100 {
            cal.observe(&head_frame(profiled, measured));
        }
    }
    let c = cal.calibration();
    // The ridge toward scale 1 costs a little: 1.96 and 0.26 ms instead of 2 and 0.
    assert!(c.device_scale > 1.9 && c.device_offset_ms.abs() < 0.5, "{c:?}");
    for (profiled, measured) in [(2.0, 4.0), (6.0, 12.0), (10.0, 20.0)] {
        let priced = device_price(&c, profiled);
        assert!((priced - measured).abs() < 0.05 * measured, "{profiled} ms priced {priced}, measured {measured}");
    }
}

#[test]
fn plans_of_nearly_equal_work_cannot_teach_a_wild_slope() {
    let mut cal = Calibrator::default();
    // 4.0 and 4.4 ms profiled, measured 6.5 and 8.5: an unpenalised line would have slope 5.
    for (profiled, measured) in [(4.0, 6.5), (4.4, 8.5)] {
        for _ in 0..100 {
            cal.observe(&head_frame(profiled, measured));
        }
    }
    let c = cal.calibration();
    assert!(c.device_scale < 3.0, "{c:?}");
    // A head a tenth as large is still priced below the whole model.
    assert!(device_price(&c, 0.4) < device_price(&c, 4.0), "{c:?}");
}

#[test]
fn a_stage_remembers_only_its_latest_plans() {
    let mut cal = Calibrator::new(CalibratorConfig { min_frames: 1, ..CalibratorConfig::default() });
    // An old plan with a large error, then MAX_POINTS plans of different work with none.
    for _ in 0..20 {
        cal.observe(&head_frame(1.0, 50.0));
    }
    for i in 0..MAX_POINTS {
        let profiled = 2.0 * 1.5f64.powi(i as i32);
        for _ in 0..20 {
            cal.observe(&head_frame(profiled, profiled));
        }
    }
    let c = cal.calibration();
    assert!((c.device_scale - 1.0).abs() < 1e-6 && c.device_offset_ms.abs() < 1e-6, "the old plan is forgotten: {c:?}");
}

#[test]
fn a_stage_with_no_profiled_work_keeps_what_it_learned_instead_of_forgetting_it() {
    let p = profiles();
    let mut cal = Calibrator::default();
    for _ in 0..100 {
        cal.observe(&local_frame(&p, 20.0));
    }
    // Offloading the input: no inference on the device, 0.5 ms of encoding (measured 1.5), edge
    // work (2.25 ms profiled) measured 4.5.
    let offload = cost(&p, 0);
    for _ in 0..100 {
        cal.observe(&FrameCost { profiled: offload, device_ms: 0.0, encode_ms: 1.5, edge_ms: 4.5 });
    }
    let c = cal.calibration();
    assert!((device_price(&c, 10.0) - 20.0).abs() < 1e-6, "the device's inference is kept: {c:?}");
    let priced = c.apply(&offload);
    assert!((priced.encode_ms - 1.5).abs() < 1e-6, "{c:?}");
    assert!((priced.decode_ms + priced.edge_ms - 4.5).abs() < 1e-6, "{c:?}");

    // Offloaded frames only: the device's inference borrows the edge's error as a scale (2×).
    let mut edge_only = Calibrator::default();
    for _ in 0..100 {
        edge_only.observe(&FrameCost { profiled: offload, device_ms: 0.0, encode_ms: 0.5, edge_ms: 4.5 });
    }
    let c = edge_only.calibration();
    assert!((c.device_scale - 2.0).abs() < 1e-6 && c.device_offset_ms == 0.0, "{c:?}");
    assert!((device_price(&c, 10.0) - 20.0).abs() < 1e-6, "{c:?}");
    assert!((c.encode_scale - 1.0).abs() < 1e-6 && c.encode_offset_ms.abs() < 1e-6, "encoding is not inference: {c:?}");

    // With a threshold above the encoder's 0.5 ms, its frames leave the encoding alone.
    let mut strict = Calibrator::new(CalibratorConfig { min_stage_ms: 1.0, ..CalibratorConfig::default() });
    for _ in 0..100 {
        strict.observe(&FrameCost { profiled: offload, device_ms: 0.0, encode_ms: 5.0, edge_ms: 2.25 });
    }
    let c = strict.calibration();
    assert_eq!((c.encode_scale, c.encode_offset_ms), (1.0, 0.0));
    assert!((c.edge_scale - 1.0).abs() < 1e-6 && c.edge_offset_ms.abs() < 1e-6, "{c:?}");
}

#[test]
fn a_calibrated_slow_device_makes_the_planner_offload() {
    let p = profiles();
    let local = select_plan(&p, &link(), FLOOR).expect("feasible");
    assert!(local.is_local(), "profiled 10 ms locally beats 16 ms offloaded: {local:?}");

    let slow = Calibration { device_scale: 2.0, ..Calibration::IDENTITY };
    let offload = select_plan(&p.calibrated(slow), &link(), FLOOR).expect("feasible");
    assert!(!offload.is_local(), "20 ms locally loses to 15.134 ms offloaded: {offload:?}");
    assert!((offload.predicted.total_ms - 15.134).abs() < 1e-9, "{offload:?}");

    // The planner re-prices its current plan on a new calibration, and then switches.
    let mut planner = Planner::new(p, Hysteresis::default()).expect("valid hysteresis");
    assert!(matches!(planner.decide(&link(), FLOOR), Decision::Switch(ref pl) if pl.is_local()));
    assert_eq!(planner.decide(&link(), FLOOR), Decision::Keep);
    planner.set_calibration(slow, &link());
    assert_eq!(planner.current().expect("a current plan").predicted.total_ms, 20.0);
    assert!(matches!(planner.decide(&link(), FLOOR), Decision::Switch(ref pl) if !pl.is_local()));
}

#[test]
fn bad_measurements_are_ignored() {
    let p = profiles();
    let mut cal = Calibrator::new(CalibratorConfig { min_frames: 1, ..CalibratorConfig::default() });
    for bad in [f64::NAN, f64::INFINITY, -1.0] {
        cal.observe(&local_frame(&p, bad));
        cal.observe(&FrameCost { profiled: cost(&p, 0), device_ms: 0.0, encode_ms: bad, edge_ms: 2.0 });
        cal.observe(&FrameCost { profiled: cost(&p, 0), device_ms: 0.0, encode_ms: 1.0, edge_ms: bad });
    }
    assert_eq!(cal.frames(), 0);
    assert_eq!(cal.calibration(), Calibration::IDENTITY);
}

#[test]
fn stages_with_no_profiled_work_teach_nothing_even_with_no_threshold() {
    let p = profiles();
    let mut cal = Calibrator::new(CalibratorConfig { min_stage_ms: 0.0, min_frames: 1, ..CalibratorConfig::default() });
    // Offloading the input: no device inference profiled (0 ms), none measured.
    for _ in 0..5 {
        cal.observe(&FrameCost { profiled: cost(&p, 0), device_ms: 0.0, encode_ms: 0.5, edge_ms: 2.25 });
    }
    let c = cal.calibration();
    assert!(c.is_valid(), "{c:?}");
    assert_eq!((c.device_scale, c.encode_scale, c.edge_scale), (1.0, 1.0, 1.0));
}

#[test]
fn differs_compares_scales_relatively() {
    let a = Calibration::IDENTITY;
    assert!(!a.differs(&Calibration { device_scale: 1.04, ..a }, 0.05));
    assert!(a.differs(&Calibration { device_scale: 1.1, ..a }, 0.05));
    assert!(a.differs(&Calibration { edge_scale: 0.9, ..a }, 0.05));
    assert!(a.differs(&Calibration { encode_scale: 2.0, ..a }, 0.05));
    // Offsets: relative, and more than 0.05 ms.
    let b = Calibration { device_offset_ms: 2.5, ..a };
    assert!(a.differs(&b, 0.05));
    assert!(!b.differs(&Calibration { device_offset_ms: 2.6, ..a }, 0.05));
    assert!(b.differs(&Calibration { device_offset_ms: 3.0, ..a }, 0.05));
    assert!(!a.differs(&Calibration { edge_offset_ms: 0.04, ..a }, 0.05));
}

#[test]
fn a_plan_that_cannot_keep_up_with_the_camera_is_avoided() {
    let p = profiles();
    // Local: one 10 ms stage. Offload: 15.134 ms end to end, but its slowest stage is the 8 ms
    // transfer, so it sustains 125 frames a second where local sustains 100.
    let offload = select_sustainable(&p, &link(), FLOOR, 9.0).expect("feasible");
    assert!(!offload.is_local(), "{offload:?}");
    assert_eq!(offload.predicted.bottleneck_ms(), 8.0);
    assert!(select_sustainable(&p, &link(), FLOOR, 12.0).expect("feasible").is_local(), "both keep up: the faster");
    assert!(select_sustainable(&p, &link(), FLOOR, 5.0).expect("feasible").is_local(), "neither keeps up: the faster");

    // The planner: a current plan that falls behind is replaced even when the hysteresis would
    // keep it (the replacement is 60 % slower end to end).
    let mut planner = Planner::new(p.clone(), Hysteresis::default()).expect("valid hysteresis");
    assert!(matches!(planner.decide(&link(), FLOOR), Decision::Switch(ref pl) if pl.is_local()));
    // Local takes 10 ms: within 10 % of a 9.5 ms interval it is kept, beyond it replaced.
    let mut lenient = planner.clone().with_frame_interval(Some(9.5));
    assert_eq!(lenient.decide(&link(), FLOOR), Decision::Keep);
    let mut paced = planner.with_frame_interval(Some(9.0));
    assert!(matches!(paced.decide(&link(), FLOOR), Decision::Switch(ref pl) if !pl.is_local()));
    assert_eq!(paced.decide(&link(), FLOOR), Decision::Keep);
    // Nonsense intervals are ignored.
    let mut any = Planner::new(p, Hysteresis::default()).expect("valid").with_frame_interval(Some(f64::NAN));
    assert!(matches!(any.decide(&link(), FLOOR), Decision::Switch(ref pl) if pl.is_local()));
}

proptest! {
    #[test]
    fn any_frames_give_a_valid_calibration(
        frames in prop::collection::vec((0usize..2, -5.0..200.0f64, -1.0..5.0f64, -5.0..50.0f64), 0..80),
        min_frames in 0u64..5,
    ) {
        let p = profiles();
        let mut cal = Calibrator::new(CalibratorConfig { min_frames, ..CalibratorConfig::default() });
        for (point, device_ms, encode_ms, edge_ms) in frames {
            cal.observe(&FrameCost { profiled: cost(&p, point as u16), device_ms, encode_ms, edge_ms });
            prop_assert!(cal.calibration().is_valid(), "{:?}", cal.calibration());
        }
    }
}
