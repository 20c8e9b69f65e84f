//! The ledger owns every count, the camera's overruns included: they appear in its live
//! snapshot while the run goes on, and the final summary still balances.

use prometheus::Registry;
use tandem_actors::camera::{Camera, CameraSettings, WhenFull, front_queue};
use tandem_actors::ledger::{DropReason, Ledger, Outcome};
use tandem_actors::metrics::DeviceMetrics;
use tandem_actors::testkit;

use crate::common::*;
use crate::fixtures::metric;

/// A camera whose front stage takes nothing (the queue holds one frame): of `frames` captures,
/// one is queued and the rest overrun. Returns the id of the frame left queued.
async fn overruns_reach_the_live_snapshot(when_full: WhenFull) -> u64 {
    let registry = Registry::new();
    let metrics = DeviceMetrics::register(&registry).expect("metrics");
    let (ledger, handle, mut snapshot) = Ledger::new(16, metrics.clone(), false);
    let ledger = tokio::spawn(ledger.run());
    let (tx, rx) = front_queue(1);
    // The busy front stage: it reads the queue only once the camera is done.
    let front = rx.clone();
    let frames = 5;
    let settings = CameraSettings { fps: 1000.0, frames: Some(frames), when_full };
    let (camera, _stop) = Camera::new(settings, testkit::synthetic_frames(2), (tx, rx), metrics, handle.clone());
    let report = guarded("the camera", camera.run()).await;
    assert_eq!((report.captured, report.overrun), (frames, frames - 1));

    // The ledger is still running (`handle` is alive): the overruns are in its live snapshot.
    let live = guarded("the overruns in the snapshot", async {
        *snapshot.wait_for(|s| s.dropped == frames - 1).await.expect("ledger alive")
    })
    .await;
    assert_eq!(live.dropped_for(DropReason::CameraOverrun), frames - 1, "{live:?}");
    assert_eq!(live.edge + live.local, 0);
    assert_eq!(metric(&registry, "tandem_frames_dropped_total{reason=\"camera_overrun\"}"), (frames - 1) as f64);

    // The queued frame ends too (as if shut down), and the summary balances.
    let queued = front.try_recv().expect("one frame stayed queued");
    handle.record(Outcome::Dropped { frame_id: queued.frame_id, reason: DropReason::Shutdown }).await;
    drop(handle);
    let mut summary = guarded("the ledger", ledger).await.expect("ledger");
    summary.captured = report.captured;
    assert!(summary.balanced(), "{summary}");
    assert_eq!(summary.dropped.get(&DropReason::CameraOverrun).copied(), Some(frames - 1));
    assert_eq!(summary.dropped.get(&DropReason::Shutdown).copied(), Some(1));
    queued.frame_id
}

#[tokio::test(start_paused = true)]
async fn camera_overruns_dropping_the_newest_appear_in_the_live_snapshot() {
    assert_eq!(overruns_reach_the_live_snapshot(WhenFull::DropNewest).await, 0, "the first frame stays queued");
}

#[tokio::test(start_paused = true)]
async fn camera_overruns_dropping_the_oldest_appear_in_the_live_snapshot() {
    assert_eq!(overruns_reach_the_live_snapshot(WhenFull::DropOldest).await, 4, "the newest frame stays queued");
}

/// Drops that find the inbox full are counted aside and folded in: live and in the summary.
#[tokio::test]
async fn drops_that_find_the_ledger_inbox_full_are_still_counted() {
    let registry = Registry::new();
    let metrics = DeviceMetrics::register(&registry).expect("metrics");
    let (ledger, handle, mut snapshot) = Ledger::new(1, metrics, false);
    // The ledger is not running yet: one drop fills its inbox, the other four overflow.
    for id in 0..5 {
        handle.try_drop(id, DropReason::CameraOverrun);
    }
    handle.try_drop(5, DropReason::Shutdown);
    let ledger = tokio::spawn(ledger.run());
    let live =
        guarded("the snapshot", async { *snapshot.wait_for(|s| s.dropped == 6).await.expect("ledger alive") }).await;
    assert_eq!(live.dropped_for(DropReason::CameraOverrun), 5);
    assert_eq!(live.dropped_for(DropReason::Shutdown), 1);
    drop(handle);
    let summary = guarded("the ledger", ledger).await.expect("ledger");
    assert_eq!(summary.dropped.get(&DropReason::CameraOverrun).copied(), Some(5));
    assert_eq!(summary.dropped.get(&DropReason::Shutdown).copied(), Some(1));
    assert_eq!(summary.dropped_total(), 6);
}

/// A whole run with a camera faster than the pipeline: the last live snapshot and the summary
/// agree on every count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_snapshot_and_the_summary_agree_at_the_end_of_a_run() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let frames = 40;
    // 2000 fps against a 1-frame front queue: overruns are all but certain, and counted either way.
    let settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 2000.0, Some(frames));
    let (device, _) = start_device(settings, 8).await;
    let snapshot = device.snapshot();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert!(summary.balanced(), "{summary}");
    let last = *snapshot.borrow();
    assert_eq!(last.edge, summary.edge, "{last:?} vs\n{summary}");
    assert_eq!(last.local, summary.local);
    assert_eq!(last.dropped, summary.dropped_total(), "{last:?} vs\n{summary}");
    for r in DropReason::ALL {
        assert_eq!(last.dropped_for(r), summary.dropped.get(&r).copied().unwrap_or(0), "{}", r.as_str());
    }
}
