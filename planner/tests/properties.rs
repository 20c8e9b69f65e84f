//! Properties on random profiles: the planner equals brute force, floors hold, more bandwidth never hurts.

use proptest::prelude::*;
use tandem_planner::{
    ACCURACY_TOLERANCE, AccuracyFloor, Baseline, CodingClass, CodingCost, Decision, Hysteresis, LinkState, ModelKind,
    ModelProfile, Planner, PointProfile, Profile, Profiles, Provenance, Role, baseline, combine, latency,
    pareto_frontier, select_plan, select_sustainable,
};

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
