//! Fault injection: fail points (tikv/fail-rs, the crate's `failpoints` feature) on a real edge
//! and device talking over loopback TCP.
//!
//! Fail points are process-global, so this is a binary of its own and every test holds a
//! [`fail::FailScenario`] for its whole run; the scenario's lock serialises the tests (a test
//! that panics leaves the lock poisoned, which the next `setup` ignores, and its points cleared).
//!
//! Every scenario asserts: no panic; every frame accounted for (captured = results + drops);
//! the drop reason the fault must produce (and no other loss); recovery once the fault is cleared
//! (edge results again). Recovery time — fault cleared → the first edge result completed after
//! it, from the results' own timelines — is printed as `RECOVERY scenario=<name> ms=<n>` for
//! docs/RELIABILITY.md; it is not asserted (the hang guard is the only bound). Synchronisation
//! waits on the ledger's published counts and on metrics, never on sleeps; the one timed wait is
//! for the bandwidth trace's own schedule, which is what that fault is.
//!
//! Run: `cargo test --release --workspace --features tandem-actors/failpoints --test faults -- --nocapture`.

#[path = "common.rs"]
#[allow(dead_code)]
mod common;
#[path = "fixtures.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use fail::FailScenario;
use prometheus::Registry;
use tandem_actors::controller::ControllerSettings;
use tandem_actors::device::DeviceHandle;
use tandem_actors::faults;
use tandem_actors::ledger::{DropReason, Summary};
use tandem_actors::link::{Shaper, Trace};
use tandem_actors::types::Origin;
use tandem_bandwidth_probe::Config as EstimatorConfig;
use tandem_planner::AccuracyFloor;
use tokio::net::TcpListener;

use common::*;
use fixtures::*;

const LINK_DOWN: &str = "tandem_frames_dropped_total{reason=\"link_down\"}";
const EDGE_ERROR: &str = "tandem_frames_dropped_total{reason=\"edge_error\"}";
const DEADLINE: &str = "tandem_frames_dropped_total{reason=\"deadline\"}";
const CONNECTS: &str = "tandem_link_connects_total";
const RERUN: &str = "tandem_results_total{origin=\"rerun_local\"}";

fn assert_only(summary: &Summary, allowed: &[DropReason]) {
    assert!(
        summary.balanced(),
        "captured {} != results {} + drops {:?}",
        summary.captured,
        summary.results_total(),
        summary.dropped
    );
    for reason in summary.dropped.keys() {
        assert!(allowed.contains(reason), "unexpected drop reason {reason:?}: {summary}");
    }
}

fn dropped(summary: &Summary, reason: DropReason) -> u64 {
    summary.dropped.get(&reason).copied().unwrap_or(0)
}

/// The first result completed after `cleared` that `accept` takes (an edge result by default),
/// printed as the scenario's recovery time.
fn recovery(
    name: &str,
    summary: &Summary,
    cleared: Instant,
    accept: impl Fn(&tandem_actors::ledger::FrameResult) -> bool,
) -> Duration {
    let first = summary
        .results
        .iter()
        .filter(|r| r.origin == Origin::Edge && accept(r))
        .filter_map(|r| r.timeline.done)
        .filter(|&done| done >= cleared)
        .min()
        .unwrap_or_else(|| panic!("{name}: no edge result after the fault cleared: {summary}"));
    let took = first.saturating_duration_since(cleared);
    eprintln!("RECOVERY scenario={name} ms={}", took.as_millis());
    took
}

fn edge_results(device: &DeviceHandle) -> u64 {
    device.snapshot().borrow().edge
}

/// Turn `point` on with `action`; wait until `series` on `registry` has grown by `by` (the
/// fault's effect); turn it off. Returns when it was cleared, once edge results flow again.
async fn inject(
    device: &DeviceHandle,
    registry: &Registry,
    point: &str,
    action: &str,
    series: &str,
    by: f64,
) -> Instant {
    let before = metric(registry, series);
    fail::cfg(point, action).expect("fail point action");
    wait_metric(registry, series, |v| v >= before + by).await;
    fail::remove(point);
    let cleared = Instant::now();
    let at = edge_results(device);
    wait_counts(device, "edge results after the fault cleared", |c| c.edge >= at + 3).await;
    cleared
}

async fn stop(device: DeviceHandle) -> Summary {
    device.stopper().stop();
    guarded("the device run", device.finish()).await.expect("finish")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_cut_mid_frame() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let (device, registry) =
        start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&device, "edge results", |c| c.edge >= 3).await;
    // Every frame is cut halfway until cleared: the edge reads a truncated frame, the device
    // loses the session, reconnects, and is cut again (twice, before the fault is cleared).
    let cleared = inject(&device, &registry, faults::LINK_SEND, "return(cut)", CONNECTS, 2.0).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}");
    assert_only(&summary, &[DropReason::LinkDown, DropReason::CameraOverrun, DropReason::Shutdown]);
    // The cut frames were in flight with time left: finished on the device, not lost.
    assert!(summary.rerun_local >= 2, "{summary}");
    assert_eq!(dropped(&summary, DropReason::LinkDown), 0, "{summary}");
    assert!(
        metric(&edge_registry, "tandem_edge_connections_total{outcome=\"accepted\"}") >= 3.0,
        "the device reconnected"
    );
    assert!(metric(&registry, RERUN) >= 2.0);
    assert_eq!(metric(&registry, LINK_DOWN), 0.0);
    recovery("link_cut_mid_frame", &summary, cleared, |_| true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_killed_and_restarted() {
    let scenario = FailScenario::setup();
    let s = series();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (edge, _) = start_edge_on(listener, &s.path, &edge_config()).await;
    let (device, _) = start_device(device_settings(&s, &addr.to_string(), "0:pool2:q8-lz4", 50.0, None), 16).await;
    let mut state = device.link_state();
    wait_counts(&device, "edge results", |c| c.edge >= 3).await;
    edge.shutdown().await;
    guarded("link down", state.wait_for(|s| !s.is_up())).await.expect("link alive");
    wait_counts(&device, "local fallback", |c| c.local >= 3).await;
    // A new edge server on the same port: the fault is cleared when it listens.
    let listener = TcpListener::bind(addr).await.expect("rebind");
    let (edge, _) = start_edge_on(listener, &s.path, &edge_config()).await;
    let cleared = Instant::now();
    let at = edge_results(&device);
    wait_counts(&device, "edge results from the new edge", |c| c.edge >= at + 3).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}");
    assert_only(&summary, &[DropReason::LinkDown, DropReason::CameraOverrun, DropReason::Shutdown]);
    // The snapshot counts reruns of lost frames as local; the summary keeps them apart.
    assert!(summary.local + summary.rerun_local >= 3, "{summary}");
    recovery("edge_restarted", &summary, cleared, |_| true);
}

/// Corrupt, undecodable and oversize frames towards the edge, then a corrupt reply and a failed
/// read on the device: each is refused or survived, counted with its own reason, and the same
/// device gets edge results again after each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_oversize_frames() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let (device, registry) =
        start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&device, "edge results", |c| c.edge >= 3).await;

    // A flipped byte: the edge's CRC check catches it, answers FrameError, the stream goes on.
    let connects = metric(&registry, CONNECTS);
    let corrupt = inject(&device, &registry, faults::LINK_SEND, "return(corrupt)", EDGE_ERROR, 3.0).await;
    // The edge's own decode fails (injected there): the same answer.
    let undecodable = inject(&device, &registry, faults::EDGE_DECODE, "return", EDGE_ERROR, 3.0).await;
    assert_eq!(metric(&registry, CONNECTS), connects, "a frame with a valid header never costs the session");
    // A header declaring 8 EiB: refused before anything is allocated; the edge cannot skip it,
    // so it answers and closes that connection; the device reconnects.
    let oversize = inject(
        &device,
        &edge_registry,
        faults::LINK_SEND,
        "1*return(oversize)",
        "tandem_edge_frame_errors_total{reason=\"too_large\"}",
        1.0,
    )
    .await;
    // A reply the device cannot decode, and a read that fails: the session is re-established.
    let bad_reply = inject(&device, &registry, faults::LINK_DECODE_REPLY, "1*return", CONNECTS, 1.0).await;
    let failed_read = inject(&device, &registry, faults::LINK_RECV, "1*return", CONNECTS, 1.0).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}");
    assert_only(
        &summary,
        &[DropReason::EdgeError, DropReason::LinkDown, DropReason::CameraOverrun, DropReason::Shutdown],
    );
    assert!(dropped(&summary, DropReason::EdgeError) >= 6, "{summary}");
    assert!(metric(&edge_registry, "tandem_edge_frame_errors_total{reason=\"checksum\"}") >= 6.0);
    assert_eq!(metric(&edge_registry, "tandem_edge_frame_errors_total{reason=\"too_large\"}"), 1.0);
    for (name, cleared) in [
        ("corrupt_frames", corrupt),
        ("edge_decode_error", undecodable),
        ("oversize_frame", oversize),
        ("corrupt_reply", bad_reply),
        ("failed_read", failed_read),
    ] {
        recovery(name, &summary, cleared, |_| true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_edge_misses_deadlines() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 30.0, None);
    settings.link.deadline = Duration::from_millis(400);
    let (device, registry) = start_device(settings, 16).await;
    wait_counts(&device, "edge results", |c| c.edge >= 3).await;
    // Every tail takes 800 ms more than usual: no answer can meet a 400 ms deadline.
    let cleared = inject(&device, &registry, faults::EDGE_INFER, "sleep(800)", DEADLINE, 3.0).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}");
    assert_only(&summary, &[DropReason::Deadline, DropReason::CameraOverrun, DropReason::Shutdown]);
    assert!(dropped(&summary, DropReason::Deadline) >= 3, "{summary}");
    recovery("slow_edge", &summary, cleared, |_| true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_collapses_and_returns() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    // 4 KB frames (the input, f32): 3 ms at 10 Mbit/s, 1.6 s at 20 kbit/s — over the deadline.
    let trace = Trace::from_toml_str(
        "[[step]]\nat_ms = 0\nmbps = 10.0\n[[step]]\nat_ms = 1500\nmbps = 0.02\n[[step]]\nat_ms = 4000\nmbps = 10.0\n",
    )
    .expect("trace");
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:input:f32", 30.0, None);
    settings.link.deadline = Duration::from_millis(1000);
    settings.link.shaper = Some(Shaper::new(trace));
    let back = Instant::now() + Duration::from_millis(4000);
    let (device, registry) = start_device(settings, 16).await;
    wait_metric(&registry, DEADLINE, |v| v >= 1.0).await;
    // The fault is the trace's schedule: the rate comes back at 4 s, whatever the test does.
    tokio::time::sleep_until(back.into()).await;
    let at = edge_results(&device);
    wait_counts(&device, "edge results once the rate is back", |c| c.edge >= at + 3).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}");
    assert_only(&summary, &[DropReason::Deadline, DropReason::CameraOverrun, DropReason::Shutdown]);
    assert!(dropped(&summary, DropReason::Deadline) >= 1, "{summary}");
    recovery("bandwidth_collapse", &summary, back, |_| true);
}

fn controller_settings() -> ControllerSettings {
    // Frames of the tiny series are a few hundred bytes: probes give the estimate.
    let estimator =
        EstimatorConfig { min_sample_bytes: 2048, probe_initial_bytes: 16 * 1024, ..EstimatorConfig::default() };
    // Scripted profiles: calibration would rescale them (see adaptation.rs).
    ControllerSettings {
        estimator,
        floor: AccuracyFloor::Absolute(0.5),
        tick: Duration::from_millis(20),
        retry_after: Duration::from_millis(300),
        calibrate: false,
        ..ControllerSettings::default()
    }
}

/// The planner wants model 1; the edge cannot load its tail, then loads it but the device fails
/// to apply it. Both swaps roll back (counted), the old plan serves throughout, and once the
/// faults clear the swap goes through — under an epoch the edge has not seen, since it applied
/// the one rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_that_fails_to_load_rolls_back_then_recovers() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let (mut device, _) =
        start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 30.0, None), 16).await;
    fail::cfg(faults::EDGE_LOAD_TAIL, "return(1)").expect("fail point");
    let (ctl, registry) = start_controller(&mut device, planner(two_models(&s)), controller_settings());

    let st = wait_status(&ctl, "a swap rolled back (tail load)", |st| st.failed >= 1).await;
    assert_eq!((st.applied, device.plan().current().epoch), (0, 1), "the old plan stays in force");
    // The edge can load it now, but applying it on the device fails once.
    fail::cfg(faults::CONTROLLER_APPLY, "1*return").expect("fail point");
    fail::remove(faults::EDGE_LOAD_TAIL);
    let st = wait_status(&ctl, "a swap rolled back (apply)", |st| st.failed >= 2).await;
    assert_eq!((st.applied, device.plan().current().epoch), (0, 1), "the old plan stays in force");
    fail::remove(faults::CONTROLLER_APPLY);
    let cleared = Instant::now();
    let st = wait_status(&ctl, "the swap, once the faults are gone", |st| st.applied >= 1).await;
    let at = edge_results(&device);
    wait_counts(&device, "results under the new plan", |c| c.edge >= at + 3).await;
    let summary = stop(device).await;
    ctl.stop().await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}\nhistory {:?}", st.history);
    assert_only(&summary, &[DropReason::CameraOverrun, DropReason::Shutdown]);
    let published = st.history.last().copied().expect("history");
    assert_eq!(published.choice.model_id, 1);
    assert!(published.epoch > 3, "epochs 2 and 3 were announced and rolled back; got {}", published.epoch);
    assert!(summary.results.iter().filter(|r| r.plan.epoch == 1).all(|r| r.plan.choice.model_id == 0));
    assert!(summary.results.iter().filter(|r| r.plan.epoch > 1).all(|r| r.plan == published));
    assert_eq!(metric(&registry, "tandem_plan_swaps_total{result=\"failed\"}"), 2.0);
    assert_eq!(metric(&registry, "tandem_plan_swaps_total{result=\"applied\"}"), 1.0);
    recovery("plan_rollback", &summary, cleared, |r| r.plan.choice.model_id == 1);
}

/// Probe replies lost: each probe is closed by the link's deadline with what came back (no
/// bursts), the controller keeps probing, and frames keep flowing meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_probe_replies_do_not_stall_the_pipeline() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 30.0, None);
    settings.link.deadline = Duration::from_millis(1000);
    let (mut device, _) = start_device(settings, 16).await;
    let one = vec![model(&s, 0, 0.9, &[P("0:pool2:q8-lz4", 10.0, 2.0, 500.0), P("0:end", 50.0, 0.0, 0.0)])];
    let mut cs = controller_settings();
    cs.estimator.stale_after_ms = 200;
    let (ctl, _) = start_controller(&mut device, planner(one), cs);
    wait_status(&ctl, "a probe", |st| st.probes >= 1).await;

    fail::cfg(faults::EDGE_PROBE_REPLY, "return").expect("fail point");
    let p = ctl.status().borrow().probes;
    let at = edge_results(&device);
    wait_status(&ctl, "probes closed without replies", |st| st.probes >= p + 2).await;
    wait_counts(&device, "results while probe replies are lost", |c| c.edge >= at + 3).await;
    fail::remove(faults::EDGE_PROBE_REPLY);
    let p = ctl.status().borrow().probes;
    wait_status(&ctl, "probes answered again", |st| st.probes > p).await;
    let summary = stop(device).await;
    ctl.stop().await;
    edge.shutdown().await;
    scenario.teardown();
    eprintln!("{summary}");
    assert_only(&summary, &[DropReason::CameraOverrun, DropReason::Shutdown]);
}

/// The binary really has fail points compiled in, and the names are distinct (two points under
/// one name would fire together).
#[test]
fn fail_points_are_compiled_in() {
    assert!(fail::has_failpoints(), "built without the failpoints feature");
    let names: std::collections::BTreeSet<&str> = faults::ALL.into_iter().collect();
    assert_eq!(names.len(), faults::ALL.len());
}

const PANIC: &str = "tandem_frames_dropped_total{reason=\"panic\"}";

/// A panicking tail (fail point `panic` on an edge inference thread): that frame is answered
/// `FrameError { panic }` and recorded `panic` on the device, the thread is restarted (counted)
/// and the next frames are served — by both threads: the pool did not shrink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_tail_costs_one_frame_and_the_worker_is_restarted() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let (device, registry) =
        start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&device, "edge results", |c| c.edge >= 3).await;
    // Two panics, one per call: with two workers, either both threads panicked once or one
    // twice; either way the pool must still serve afterwards.
    let cleared = inject(&device, &registry, faults::EDGE_INFER, "2*panic", PANIC, 2.0).await;
    let at = edge_results(&device);
    wait_counts(&device, "edge results after the restarts", |c| c.edge >= at + 10).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    assert_only(&summary, &[DropReason::Panic, DropReason::CameraOverrun, DropReason::Shutdown]);
    assert_eq!(dropped(&summary, DropReason::Panic), 2, "{summary}");
    assert_eq!(metric(&edge_registry, "tandem_restarts_total{stage=\"edge_worker\"}"), 2.0);
    assert_eq!(metric(&edge_registry, "tandem_edge_frame_errors_total{reason=\"panic\"}"), 2.0);
    recovery("edge_worker_panic", &summary, cleared, |_| true);
    drop(scenario);
}

/// The model store panics while loading a tail: that request fails (the plan switch or the
/// worker's fetch is refused), the store is restarted and serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_model_store_is_restarted_and_serves_the_next_request() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    // The store is asked when the device's first plan switch arrives: the first ask panics.
    fail::cfg(faults::EDGE_LOAD_TAIL, "1*panic").expect("fail point action");
    let mut first = RawClient::hello(edge.addr).await;
    first
        .send_control(tandem_codec::Control::PlanSwitch {
            epoch: 1,
            model_id: 0,
            point: 6,
            coding: "q8-lz4".parse().expect("coding"),
        })
        .await;
    let reply = first.recv().await;
    assert!(
        matches!(reply, Some(tandem_codec::Control::PlanAck { result, .. }) if result != tandem_codec::PlanResult::Applied),
        "{reply:?}"
    );
    wait_metric(&edge_registry, "tandem_restarts_total{stage=\"edge_store\"}", |v| v >= 1.0).await;
    fail::remove(faults::EDGE_LOAD_TAIL);
    // The restarted store serves a device end to end.
    let (device, _) =
        start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, Some(10)), 10).await;
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert_only(&summary, &[DropReason::CameraOverrun]);
    assert!(summary.edge > 0, "{summary}");
    assert_eq!(metric(&edge_registry, "tandem_restarts_total{stage=\"edge_store\"}"), 1.0);
    drop(scenario);
}

/// The device's front and encoder threads panic on one frame each: those frames are recorded
/// `panic`, both threads are restarted (counted), and the run goes on to a balanced end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_the_device_front_and_encoder_cost_one_frame_each() {
    let scenario = FailScenario::setup();
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let (device, registry) =
        start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&device, "edge results", |c| c.edge >= 3).await;
    let front = inject(&device, &registry, faults::FRONT_INFER, "1*panic", PANIC, 1.0).await;
    let encoder = inject(&device, &registry, faults::ENCODE, "1*panic", PANIC, 1.0).await;
    let summary = stop(device).await;
    edge.shutdown().await;
    assert_only(&summary, &[DropReason::Panic, DropReason::CameraOverrun, DropReason::Shutdown]);
    assert_eq!(dropped(&summary, DropReason::Panic), 2, "{summary}");
    assert_eq!(metric(&registry, "tandem_restarts_total{stage=\"front\"}"), 1.0);
    assert_eq!(metric(&registry, "tandem_restarts_total{stage=\"encoder\"}"), 1.0);
    recovery("front_panic", &summary, front, |_| true);
    recovery("encoder_panic", &summary, encoder, |_| true);
    drop(scenario);
}
