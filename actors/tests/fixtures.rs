//! Fixtures shared by the `actors` and `faults` test binaries (the latter includes this file and
//! `common.rs` by path): metric reads, a planner over hand-written profiles, self-signed TLS
//! material made at run time, and a copy of a series with members missing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus::Registry;
use tandem_actors::controller::{
    Controller, ControllerHandle, ControllerMetrics, ControllerSettings, ControllerStatus,
};
use tandem_actors::device::DeviceHandle;
use tandem_actors::metrics::DeviceMetrics;
use tandem_planner::{
    CodingClass, CodingCost, Hysteresis, ModelKind, ModelProfile, Planner, PointProfile, Profile, Provenance, Role,
    combine,
};

use crate::common::*;

/// The value of one exposition line (`name{labels}`), 0 when the series is absent.
pub fn metric(registry: &Registry, series: &str) -> f64 {
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).expect("encode");
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok())).unwrap_or(0.0)
}

/// Wait until a metric satisfies `pred`. Counters are not watchable, so this polls (every 5 ms)
/// under the hang guard; nothing depends on how long it takes.
pub async fn wait_metric(registry: &Registry, series: &str, pred: impl Fn(f64) -> bool) -> f64 {
    guarded(series, async {
        loop {
            let v = metric(registry, series);
            if pred(v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// A profiled point: (plan text, device ms, edge ms, bytes on the wire).
pub struct P<'a>(pub &'a str, pub f64, pub f64, pub f64);

/// A model profile resolved against the tiny series (plan texts name model 0's points).
pub fn model(s: &TestSeries, id: u32, accuracy: f64, points: &[P]) -> ModelProfile {
    let pts = points
        .iter()
        .map(|P(text, device_ms, edge_ms, bytes)| {
            let c = plan(s, text);
            let end = text.contains(":end");
            PointProfile {
                point: c.point,
                name: text.split(':').nth(1).unwrap_or_default().to_string(),
                device_ms: *device_ms,
                edge_ms: *edge_ms,
                elements: 1,
                codings: if end {
                    Vec::new()
                } else {
                    vec![CodingCost {
                        coding: c.coding.to_string(),
                        class: CodingClass::Lossy,
                        bytes: *bytes,
                        encode_ms: 0.1,
                        decode_ms: 0.1,
                        accuracy: None,
                    }]
                },
            }
        })
        .collect();
    let kind = if id == 0 { ModelKind::Original } else { ModelKind::Step1 { iter: id } };
    ModelProfile { model_id: id, name: format!("m{id}"), kind, accuracy, points: pts }
}

/// A planner over the same profiles on both sides.
pub fn planner(models: Vec<ModelProfile>) -> Planner {
    planner_with(models, Hysteresis::default())
}

/// [`planner`] with the given hysteresis.
pub fn planner_with(models: Vec<ModelProfile>, h: Hysteresis) -> Planner {
    let prof = |role| Profile {
        provenance: Provenance { role, machine: "test".into(), threads: 1, emulated_slowdown: None },
        models: models.clone(),
    };
    Planner::new(combine(&prof(Role::Device), &prof(Role::Edge)).expect("profiles"), h).expect("planner")
}

/// A controller driving `device` (which must have been started with transfer samples).
pub fn start_controller(
    device: &mut DeviceHandle,
    planner: Planner,
    settings: ControllerSettings,
) -> (ControllerHandle, Registry) {
    let registry = Registry::new();
    let metrics = ControllerMetrics::register(&registry).expect("metrics");
    let device_metrics = DeviceMetrics::register(&registry).expect("device metrics");
    let feedback = device.take_feedback().expect("feedback queues");
    let c = Controller::spawn(
        settings,
        planner,
        device.plan_handle(),
        device.link_state(),
        device.link_commands(),
        feedback,
        metrics,
        device_metrics,
        None,
    )
    .expect("controller");
    (c, registry)
}

/// Stop the camera, drain the device (under the hang guard) and stop the controller: the run's
/// summary and the controller's last status.
pub async fn finish_with(
    device: DeviceHandle,
    ctl: ControllerHandle,
) -> (tandem_actors::ledger::Summary, ControllerStatus) {
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    let st = ctl.status().borrow().clone();
    ctl.stop().await;
    (summary, st)
}

/// Wait (under the hang guard) until the controller's published status satisfies `pred`.
pub async fn wait_status(
    c: &ControllerHandle,
    what: &str,
    pred: impl FnMut(&ControllerStatus) -> bool,
) -> ControllerStatus {
    let mut rx = c.status();
    guarded(what, async { rx.wait_for(pred).await.expect("controller alive").clone() }).await
}

/// Model 0 (accuracy 0.9) and model 1 (0.8, faster everywhere), split after pool2: above a
/// floor of 0.8 the planner prefers model 1.
pub fn two_models(s: &TestSeries) -> Vec<ModelProfile> {
    let pts = |scale: f64| [P("0:pool2:q8-lz4", 10.0 * scale, 2.0, 500.0), P("0:end", 50.0 * scale, 0.0, 0.0)];
    vec![model(s, 0, 0.9, &pts(1.0)), model(s, 1, 0.8, &pts(0.3))]
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as `cert.pem` and
/// `key.pem` under `dir`; returns their paths.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("certificate");
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

/// A token file readable by its owner only.
pub fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{token}\n")).expect("write token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    p
}

/// A copy of the series at `from` holding only the model directories in `keep` (the manifest
/// still lists every member: the others fail to load).
pub fn copy_series_keeping(from: &Path, keep: &[&str]) -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        let is_dir = entry.file_type().expect("type").is_dir();
        if is_dir && !keep.iter().any(|k| name == *k) {
            continue;
        }
        if is_dir {
            copy_dir(&entry.path(), &dir.path().join(&name));
        } else {
            std::fs::copy(entry.path(), dir.path().join(&name)).expect("copy");
        }
    }
    dir
}
