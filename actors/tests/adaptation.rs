//! The controller over real sockets on 127.0.0.1: a shaped link that steps from 10 to 1 Mbit/s,
//! a runtime change of the accuracy floor, a tail that cannot be loaded; and hysteresis on a
//! noisy trace through the controller's pure policy. Synchronisation is by waiting on the
//! controller's published status, never by sleeping; nothing asserts on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prometheus::Registry;
use tandem_actors::controller::policy::{Step, held, next_step};
use tandem_actors::controller::{ControllerSettings, RANKED_SHOWN, SwapResult};
use tandem_actors::device::CameraGate;
use tandem_actors::http::serve_with_floor;
use tandem_actors::ledger::{DropReason, Summary};
use tandem_actors::link::{LinkCommand, LinkState as TandemLinkState, Shaper, Trace};
use tandem_actors::plan::{ActivePlan, PlanChoice};
use tandem_actors::types::Origin;
use tandem_bandwidth_probe::{Config as EstimatorConfig, Estimator};
use tandem_planner::{AccuracyFloor, CalibratorConfig, Decision, Hysteresis, LinkState, ModelProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::fixtures::{P, finish_with, metric, model, planner, planner_with, start_controller, wait_status};

/// Model 0 split at the input (4 KB, cheap device) vs after pool2 (small tensor, costly device):
/// the input split wins above ~4 Mbit/s, pool2 below. All-local is never worth it.
fn step_profiles(s: &TestSeries) -> Vec<ModelProfile> {
    vec![model(
        s,
        0,
        0.9,
        &[P("0:input:f32", 0.0, 2.0, 10_000.0), P("0:pool2:q8-lz4", 20.0, 1.0, 1_000.0), P("0:end", 200.0, 0.0, 0.0)],
    )]
}

fn settings(floor: AccuracyFloor) -> ControllerSettings {
    // Frames of the tiny series are a few KB: let them count as throughput samples.
    let estimator =
        EstimatorConfig { min_sample_bytes: 2048, probe_initial_bytes: 16 * 1024, ..EstimatorConfig::default() };
    // The profiles of these tests are scripted, not measured: calibration would rescale them
    // towards the tiny model's real costs and change the choices each test scripts. Calibration
    // on the real path has its own test below.
    ControllerSettings {
        estimator,
        floor,
        tick: Duration::from_millis(20),
        retry_after: Duration::from_secs(600),
        calibrate: false,
        ..ControllerSettings::default()
    }
}

/// Balanced ledger, no frame lost on the way or counted twice, and every result computed under
/// the plan its epoch was published with.
fn assert_consistent(summary: &Summary, history: &[ActivePlan]) {
    assert!(
        summary.balanced(),
        "captured {} != results {} + drops {:?}",
        summary.captured,
        summary.results_total(),
        summary.dropped
    );
    for reason in summary.dropped.keys() {
        assert!(
            matches!(reason, DropReason::CameraOverrun | DropReason::Shutdown),
            "frame lost: {reason:?}: {summary}"
        );
    }
    let ids: BTreeSet<u64> = summary.results.iter().map(|r| r.frame_id).collect();
    assert_eq!(ids.len(), summary.results.len(), "a frame has two results");
    let by_epoch: BTreeMap<u32, PlanChoice> = history.iter().map(|p| (p.epoch, p.choice)).collect();
    assert_eq!(by_epoch.len(), history.len(), "an epoch was published twice");
    for r in &summary.results {
        if r.origin == Origin::Edge {
            assert_eq!(
                by_epoch.get(&r.plan.epoch),
                Some(&r.plan.choice),
                "frame {} ran {:?}, but its epoch was published as another plan",
                r.frame_id,
                r.plan
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_step_switches_to_a_smaller_tensor_without_losing_frames() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut cfg = device_settings(&s, &edge.addr.to_string(), "0:input:f32", 20.0, None);
    let trace = Trace::from_toml_str("bucket_bytes = 1500\ndelay_ms = 2\nreturn_delay_ms = 2\n[[step]]\nat_ms = 0\nmbps = 10.0\n[[step]]\nat_ms = 2000\nmbps = 1.0\n").expect("trace");
    cfg.link.shaper = Some(Shaper::new(trace));
    let shaper = cfg.link.shaper.clone().expect("shaper");
    let (mut device, device_registry) = start_device(cfg, 16).await;
    let (ctl, registry) =
        start_controller(&mut device, planner(step_profiles(&s)), settings(AccuracyFloor::Absolute(0.0)));
    let small = plan(&s, "0:pool2:q8-lz4");

    let st =
        wait_status(&ctl, "a swap to the pool2 split", |st| st.history.last().is_some_and(|p| p.choice == small)).await;
    eprintln!("swapped at trace time {:?} (step at 2 s), estimate {:?} bit/s", shaper.elapsed(), st.bandwidth_bps);
    let at = device.snapshot().borrow().edge;
    wait_counts(&device, "results under the new plan", |c| c.edge >= at + 5).await;
    let (summary, st) = finish_with(device, ctl).await;
    edge.shutdown().await;
    eprintln!("{summary}\nhistory {:?}", st.history);
    assert_consistent(&summary, &st.history);
    // Every swap is recorded with its reason: the planner's best plans at that estimate, best
    // first, the chosen one among them.
    let applied: Vec<_> = st.swaps.iter().filter(|r| r.result == SwapResult::Applied).collect();
    assert_eq!(applied.len() as u64, st.applied, "{:?}", st.swaps);
    let last = applied.last().expect("a swap");
    assert_eq!((last.chosen.model_id, last.chosen.point.as_str()), (0, "pool2"), "{last:?}");
    assert!(!last.ranked.is_empty() && last.ranked.len() <= RANKED_SHOWN, "{last:?}");
    assert!(last.ranked.windows(2).all(|w| w[0].predicted_ms <= w[1].predicted_ms), "{last:?}");
    assert!(last.ranked.contains(&last.chosen), "the chosen plan is among the best: {last:?}");
    assert!(
        summary.results.iter().any(|r| r.plan.choice == small && r.origin == Origin::Edge),
        "no result under the new plan"
    );
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).expect("encode");
    assert!(text.contains("tandem_plan_swaps_total{result=\"applied\"}"), "{text}");
    assert!(text.contains("tandem_bandwidth_estimate_bytes_per_second"));
    // The new plan's head (input..pool2) was prepared before the plan was published, not on its
    // first frame.
    let device_text = prometheus::TextEncoder::new().encode_to_string(&device_registry.gather()).expect("encode");
    assert!(
        device_text.contains("tandem_segments_prepared_on_frame_total 0"),
        "a head was prepared while a frame waited:\n{device_text}"
    );
}

/// Two members: the original (accuracy 0.9) and a pruned one (0.8) that is faster everywhere.
fn floor_profiles(s: &TestSeries) -> Vec<ModelProfile> {
    let pts = |scale: f64| [P("0:pool2:q8-lz4", 10.0 * scale, 2.0, 500.0), P("0:end", 50.0 * scale, 0.0, 0.0)];
    vec![model(s, 0, 0.9, &pts(1.0)), model(s, 1, 0.8, &pts(0.3))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_floor_switches_to_a_more_accurate_model() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let cfg = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 20.0, None);
    let (mut device, _) = start_device(cfg, 16).await;
    let (ctl, _) = start_controller(&mut device, planner(floor_profiles(&s)), settings(AccuracyFloor::Absolute(0.5)));

    let st =
        wait_status(&ctl, "a swap to the pruned model", |st| st.history.last().is_some_and(|p| p.choice.model_id == 1))
            .await;
    let epoch = st.history.len();
    // Raise the floor the way an operator does: POST /floor on the device's metrics server.
    let http = serve_with_floor("127.0.0.1:0".parse().expect("addr"), Registry::new(), Some(ctl.floor_setter()), None)
        .await
        .expect("http");
    let mut conn = tokio::net::TcpStream::connect(http.addr).await.expect("connect");
    conn.write_all(b"POST /floor?0.85 HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut reply = String::new();
    guarded("the /floor reply", conn.read_to_string(&mut reply)).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let mut conn = tokio::net::TcpStream::connect(http.addr).await.expect("connect");
    conn.write_all(b"POST /floor?85 HTTP/1.1\r\n\r\n").await.expect("write");
    let mut reply = String::new();
    guarded("the /floor reply", conn.read_to_string(&mut reply)).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    http.stop();
    wait_status(&ctl, "a swap back to the original", |st| {
        st.history.len() > epoch && st.history.last().is_some_and(|p| p.choice.model_id == 0)
    })
    .await;
    let at = device.snapshot().borrow().edge;
    wait_counts(&device, "results under the accurate model", |c| c.edge >= at + 3).await;
    let (summary, st) = finish_with(device, ctl).await;
    edge.shutdown().await;
    assert_consistent(&summary, &st.history);
    assert!(
        summary.results.iter().any(|r| r.plan.epoch > 2 && r.plan.choice.model_id == 0),
        "no result under the raised floor"
    );
}

/// With a camera gate the first frame waits for the controller's first decision: no frame runs
/// the configured guess when the controller replaces it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_camera_starts_on_the_controllers_first_plan() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut cfg = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 20.0, None);
    let (opener, gate) = CameraGate::new(Duration::from_secs(30));
    cfg.camera_gate = Some(gate);
    let (mut device, _) = start_device(cfg, 16).await;
    let capturing = device.capturing();
    let (ctl, _) = start_controller(&mut device, planner(floor_profiles(&s)), settings(AccuracyFloor::Absolute(0.5)));
    assert!(!*capturing.borrow(), "the camera started before its gate opened");
    ctl.open_on_first_decision(opener);
    wait_counts(&device, "results after the gate opened", |c| c.edge >= 5).await;
    assert!(*capturing.borrow(), "results came while the device says the camera has not started");
    let (summary, st) = finish_with(device, ctl).await;
    edge.shutdown().await;
    assert_consistent(&summary, &st.history);
    assert!(st.decisions >= 1, "{st:?}");
    assert!(!summary.results.is_empty());
    for r in &summary.results {
        assert!(
            r.plan.epoch >= 2 && r.plan.choice.model_id == 1,
            "frame {} ran the configured plan: {:?}",
            r.frame_id,
            r.plan
        );
    }
}

/// With calibration on and a gated camera, the first decision does not wait for a calibration
/// that no frame can feed: the gate opens although the learning wait is ten minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_start_does_not_wait_to_calibrate() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut cfg = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 20.0, None);
    let (opener, gate) = CameraGate::new(Duration::from_secs(600));
    cfg.camera_gate = Some(gate);
    let (mut device, _) = start_device(cfg, 16).await;
    let learning = ControllerSettings {
        calibrate: true,
        first_swap_wait: Duration::from_secs(600),
        ..settings(AccuracyFloor::Absolute(0.5))
    };
    let (ctl, _) = start_controller(&mut device, planner(floor_profiles(&s)), learning.gated());
    ctl.open_on_first_decision(opener);
    wait_counts(&device, "results after the gate opened", |c| c.edge + c.local >= 3).await;
    let (summary, st) = finish_with(device, ctl).await;
    edge.shutdown().await;
    assert_consistent(&summary, &st.history);
    assert!(st.decisions >= 1, "{st:?}");
}

/// A gate that never opens holds the camera only for its timeout: frames then run the
/// configured plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_never_opens_times_out_into_the_configured_plan() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut cfg = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 20.0, Some(6));
    let (opener, gate) = CameraGate::new(Duration::from_millis(100));
    cfg.camera_gate = Some(gate);
    let (device, _) = start_device(cfg, 16).await;
    let summary = guarded("the gated run", device.finish()).await.expect("finish");
    drop(opener);
    edge.shutdown().await;
    assert_eq!(summary.captured, 6, "{summary}");
    assert!(summary.balanced(), "{summary}");
    assert!(summary.results.iter().all(|r| r.plan.epoch == 1), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_that_fails_to_load_rolls_back() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let cfg = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 20.0, None);
    let (mut device, _) = start_device(cfg, 16).await;
    // Model 7 is in the profiles (and the best choice) but not in the series: the edge cannot load it.
    let mut models = floor_profiles(&s);
    models[1].model_id = 7;
    let (ctl, registry) = start_controller(&mut device, planner(models), settings(AccuracyFloor::Absolute(0.5)));

    let st = wait_status(&ctl, "a failed swap", |st| st.failed >= 1).await;
    assert_eq!(st.applied, 0);
    assert_eq!(device.plan().current().epoch, 1, "the old plan stays in force");
    let at = device.snapshot().borrow().edge;
    wait_counts(&device, "frames still served", |c| c.edge >= at + 3).await;
    let (summary, st) = finish_with(device, ctl).await;
    edge.shutdown().await;
    assert_eq!(st.applied, 0);
    assert_consistent(&summary, &st.history);
    assert!(summary.results.iter().all(|r| r.plan.epoch == 1));
    assert!(
        st.swaps.iter().any(|r| r.result == SwapResult::Failed && r.chosen.model_id == 7),
        "the failed swap is recorded: {:?}",
        st.swaps
    );
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).expect("encode");
    assert!(text.contains("tandem_plan_swaps_total{result=\"failed\"} 1"), "{text}");
}

/// A device far slower than its profile says: the profile prices local inference at 2 ms, the
/// emulated device takes 1000× the tiny model's real time (≥ 6 ms as long as one forward pass
/// takes ≥ 6 µs; tens of ms on this box). Offloading the input is priced at 3–6 ms (5 kB at
/// the shaped 20 Mbit/s, a ≥ 2 ms round trip), so from the profile alone the controller keeps
/// the local plan; with calibration it learns the device's error from the frames it
/// runs and offloads. Without calibration (the control) it stays local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_learns_a_slow_device_and_moves_work_to_the_edge() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let models = vec![model(&s, 0, 0.9, &[P("0:input:f32", 0.0, 0.1, 5_000.0), P("0:end", 2.0, 0.0, 0.0)])];
    let local = plan(&s, "0:end");
    let offload = plan(&s, "0:input:f32");
    let run = |calibrate: bool| {
        let (s, edge_addr, models) = (&s, edge.addr.to_string(), models.clone());
        async move {
            let mut cfg = device_settings(s, &edge_addr, "0:end", 20.0, None);
            cfg.slowdown = tandem_actors::emulation::Slowdown::new(1000.0).expect("slowdown");
            cfg.link.shaper = Some(Shaper::new(Trace { delay_ms: 1, return_delay_ms: 1, ..Trace::constant(20.0) }));
            let (mut device, _) = start_device(cfg, 16).await;
            // Two frames after the warm-up are enough to learn from here (the default waits for 10).
            let calibrator = CalibratorConfig { min_frames: 2, ..CalibratorConfig::default() };
            let (ctl, registry) = start_controller(
                &mut device,
                planner(models),
                ControllerSettings { calibrate, calibrator, ..settings(AccuracyFloor::Absolute(0.0)) },
            );
            (device, ctl, registry)
        }
    };

    let (device, ctl, registry) = run(true).await;
    let st =
        wait_status(&ctl, "a swap to offloading", |st| st.history.last().is_some_and(|p| p.choice == offload)).await;
    eprintln!("calibration at the swap: {:?} over {} frames", st.calibration, st.calibrated_frames);
    // One plan has run, so the error is learned as a per-frame constant (scale 1): the local
    // plan's 2 ms are priced at least twice over.
    let priced = st.calibration.device_scale * 2.0 + st.calibration.device_offset_ms;
    assert!(priced >= 4.0, "{:?}", st.calibration);
    assert_eq!(st.history.first().map(|p| p.choice), Some(local));
    let at = device.snapshot().borrow().edge;
    wait_counts(&device, "results from the edge", |c| c.edge >= at + 3).await;
    let (summary, st) = finish_with(device, ctl).await;
    assert_consistent(&summary, &st.history);
    let scale = metric(&registry, "tandem_calibration{term=\"device_scale\"}");
    let offset = metric(&registry, "tandem_calibration{term=\"device_offset_seconds\"}");
    assert!(scale * 2.0 + offset * 1e3 >= 4.0, "device calibration not exported as learned: x{scale} {offset} s");

    // The control: the same device and profiles without calibration keep the local plan.
    let (device, ctl, _) = run(false).await;
    let at = device.snapshot().borrow().local;
    wait_counts(&device, "local results", |c| c.local >= at + 4).await;
    let (summary, st) = finish_with(device, ctl).await;
    edge.shutdown().await;
    assert_eq!(st.applied, 0, "swapped without calibration: {:?}", st.history);
    assert_eq!(st.calibration, tandem_planner::Calibration::IDENTITY);
    assert!(summary.results.iter().all(|r| r.plan.choice == local));
}

/// An active probe over a shaped 2 Mbit/s link while frames flow: it is answered with its ping's
/// round trip and both bursts; the first burst is timed from its own first byte, the second —
/// written right behind it — from the first one's reply (`queued`), so the controller prices
/// it without a round trip; and frames keep flowing afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_times_its_bursts_on_the_link_and_frames_carry_on() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut cfg = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 20.0, None);
    cfg.link.shaper = Some(Shaper::new(Trace { delay_ms: 1, return_delay_ms: 1, ..Trace::constant(2.0) }));
    let (device, _) = start_device(cfg, 16).await;
    let mut up = device.link_state();
    guarded("the link", up.wait_for(TandemLinkState::is_up)).await.expect("link state");
    let (tx, rx) = tokio::sync::oneshot::channel();
    device
        .link_commands()
        .send(LinkCommand::Probe { burst_bytes: 8192, count: 2, reply: tx })
        .await
        .expect("link alive");
    let report = guarded("the probe", rx).await.expect("answered").expect("link up");
    assert!(report.rtt.is_some(), "{report:?}");
    assert_eq!(report.bursts.len(), 2, "{report:?}");
    assert!(report.bursts.iter().all(|b| b.bytes > 8192), "{report:?}");
    assert!(!report.bursts[0].queued && report.bursts[1].queued, "{report:?}");
    let at = device.snapshot().borrow().edge;
    wait_counts(&device, "results after the probe", |c| c.edge >= at + 3).await;
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert!(summary.balanced(), "{summary}");
    assert!(summary.dropped.keys().all(|r| matches!(r, DropReason::CameraOverrun | DropReason::Shutdown)), "{summary}");
}

/// The controller's decision path (estimator → policy → planner) fed 4 KB transfers timed on
/// the seeded cellular trace (±60 % every 200 ms) around the crossover of two plans: with the
/// default hysteresis the number of swaps stays small; without it the plan flaps.
#[test]
fn hysteresis_bounds_swaps_on_a_noisy_trace() {
    let s = series();
    // Crossover at 6 Mbit/s: input split = 10 KB, pool2 = 1 KB + 12 ms more device time.
    let models = vec![model(
        &s,
        0,
        0.9,
        &[P("0:input:f32", 0.0, 2.0, 10_000.0), P("0:pool2:q8-lz4", 12.0, 1.0, 1_000.0), P("0:end", 200.0, 0.0, 0.0)],
    )];
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/links/cellular.toml");
    let mut trace = Trace::load(&path).expect("cellular trace");
    trace.steps.truncate(1); // the 6 Mbit/s phase only: the crossover
    let dwell = ControllerSettings::default().min_dwell;
    let swaps = |h: Hysteresis, dwell: Duration| {
        let mut planner = planner_with(models.clone(), h);
        let mut est = Estimator::default();
        let mut swaps = 0;
        let mut last = None;
        for frame in 0..600u64 {
            let now = Duration::from_millis(frame * 50); // 20 fps for 30 s
            let bytes = 20_000u64;
            let rate = trace.rate_bps_at(now);
            est.observe(bytes, Duration::from_secs_f64(bytes as f64 * 8.0 / rate), now);
            if let Step::Plan(link) = next_step(&est, now, true, false, held(now, None, last, dwell))
                && let Decision::Switch(_) = planner.decide(&LinkState { ..link }, AccuracyFloor::Absolute(0.0))
            {
                swaps += 1;
                last = Some(now);
            }
        }
        swaps
    };
    let damped = swaps(Hysteresis::default(), dwell);
    let margins_only = swaps(Hysteresis::default(), Duration::ZERO);
    let bare = swaps(Hysteresis::NONE, Duration::ZERO);
    eprintln!(
        "swaps over 30 s: {damped} with margins + {dwell:?} dwell, {margins_only} with margins only, {bare} bare argmin"
    );
    // One swap per dwell at most, and in practice far fewer.
    assert!(damped <= 30 / dwell.as_secs().max(1) as usize, "{damped} swaps in 30 s");
    assert!(bare > damped, "the trace is not noisy enough to show anything ({bare} vs {damped})");
}
