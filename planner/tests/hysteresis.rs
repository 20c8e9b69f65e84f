//! Hysteresis: switches below the margin are suppressed, noisy bandwidth does not flap.

use tandem_planner::{AccuracyFloor, Decision, Hysteresis, LinkState, PlanError, Planner, evaluate};

use crate::fixtures::{crossover_profiles, profiles};

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
