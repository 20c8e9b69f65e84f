use tandem_actors::http::serve;

use crate::common::*;

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

/// With `TANDEM_METRICS_DUMP=DIR`, keep what was served as DIR/{device,edge}.prom, for
/// `promtool check metrics < DIR/device.prom` (docs/RELIABILITY.md records that run).
fn dump(role: &str, text: &str) {
    if let Some(dir) = std::env::var_os("TANDEM_METRICS_DUMP") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("dump dir");
        std::fs::write(dir.join(format!("{role}.prom")), text).expect("dump");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_over_http_with_plausible_values() {
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let edge_http = serve("127.0.0.1:0".parse().expect("addr"), edge_registry).await.expect("edge metrics");
    let frames = 10u64;
    let settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, Some(frames));
    let (device, device_registry) = start_device(settings, 10).await;
    let device_http = serve("127.0.0.1:0".parse().expect("addr"), device_registry).await.expect("device metrics");
    let summary = guarded("the device run", device.finish()).await.expect("finish");

    let (status, text) = http_get(device_http.addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    dump("device", &text);
    assert_eq!(value(&text, "tandem_frames_total"), frames as f64);
    let results =
        value(&text, "tandem_results_total{origin=\"edge\"}") + value(&text, "tandem_results_total{origin=\"local\"}");
    let drops: f64 =
        ["camera_overrun", "link_down", "edge_error", "deadline", "shutdown", "encode_error", "model_error"]
            .iter()
            .map(|r| value(&text, &format!("tandem_frames_dropped_total{{reason=\"{r}\"}}")))
            .sum();
    assert_eq!(results + drops, frames as f64, "metrics must balance too");
    assert_eq!(results, summary.results_total() as f64);
    assert!(value(&text, "tandem_link_bytes_total{direction=\"sent\"}") > 0.0);
    assert!(value(&text, "tandem_link_bytes_total{direction=\"received\"}") > 0.0);
    assert_eq!(value(&text, "tandem_e2e_seconds_count"), results);
    let e2e_sum = value(&text, "tandem_e2e_seconds_sum");
    assert!(e2e_sum > 0.0 && e2e_sum / results < 10.0, "mean e2e {} s", e2e_sum / results);
    assert_eq!(value(&text, "tandem_stage_seconds_count{stage=\"front\"}"), summary.edge as f64);
    assert!(text.contains("tandem_stage_seconds_bucket{stage=\"transfer\",le=\"+Inf\"}"));
    assert_eq!(value(&text, "tandem_plan_model_id"), 0.0);
    assert_eq!(value(&text, "tandem_plan_point"), 6.0); // pool2 of VGG-16
    assert_eq!(value(&text, "tandem_plan_epoch"), 1.0);
    assert_eq!(value(&text, "tandem_link_connected"), 0.0, "the session ended with the run");
    assert!(value(&text, "tandem_link_connects_total") >= 1.0);
    // The heads ran on ONNX Runtime (scripts/setup.sh installs it), each prepared once.
    assert_eq!(value(&text, "tandem_engine_info{engine=\"onnxruntime\"}"), 1.0);
    assert_eq!(value(&text, "tandem_engine_info{engine=\"burn\"}"), 0.0);
    assert!(value(&text, "tandem_segment_prepare_seconds_count") >= 1.0);

    let (status, text) = http_get(edge_http.addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    dump("edge", &text);
    assert_eq!(value(&text, "tandem_edge_frames_total"), summary.edge as f64);
    assert_eq!(value(&text, "tandem_stage_seconds_count{stage=\"edge_infer\"}"), summary.edge as f64);
    assert!(value(&text, "tandem_link_bytes_total{direction=\"received\"}") > 0.0);
    assert_eq!(value(&text, "tandem_edge_models_loaded"), 1.0);
    // One tail (model 0 from pool2), prepared when the plan was, on ONNX Runtime.
    assert_eq!(value(&text, "tandem_segment_prepare_seconds_count"), 1.0);
    assert_eq!(value(&text, "tandem_engine_info{engine=\"onnxruntime\"}"), 1.0);
    assert_eq!(value(&text, "tandem_edge_frame_errors_total{reason=\"checksum\"}"), 0.0);

    let (status, _) = http_get(edge_http.addr, "/nope").await;
    assert!(status.contains("404"), "{status}");
    edge_http.stop();
    device_http.stop();
    edge.shutdown().await;
}

/// The naming rules `promtool check metrics` applies (prometheus/client_golang's `promlint`),
/// checked over the exposition of every metric both processes register: HELP on each family,
/// counters and only counters end in `_total`, base units only (seconds, bytes — not bits or
/// milliseconds), snake_case, no reserved suffix on a non-histogram. `promtool` itself is run by
/// hand (its output is in docs/RELIABILITY.md); this keeps the rules from regressing without it.
fn lint(text: &str) -> Vec<String> {
    const NON_BASE: [&str; 12] = [
        "_bits",
        "_milliseconds",
        "_microseconds",
        "_nanoseconds",
        "_minutes",
        "_hours",
        "_days",
        "_kilobytes",
        "_megabytes",
        "_percent",
        "_ms",
        "_kb",
    ];
    let mut problems = Vec::new();
    let mut helped = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if help.trim().is_empty() {
                problems.push(format!("{name}: empty HELP"));
            }
            helped.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            if !helped.contains(name) {
                problems.push(format!("{name}: no HELP"));
            }
            if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                problems.push(format!("{name}: not snake_case"));
            }
            if !name.starts_with("tandem_") {
                problems.push(format!("{name}: not in the tandem_ namespace"));
            }
            match kind {
                "counter" if !name.ends_with("_total") => problems.push(format!("{name}: counter without _total")),
                "counter" => {}
                _ if name.ends_with("_total") => problems.push(format!("{name}: {kind} ending in _total")),
                _ => {}
            }
            if kind != "histogram" && kind != "summary" {
                for suffix in ["_count", "_sum", "_bucket"] {
                    if name.ends_with(suffix) {
                        problems.push(format!("{name}: {kind} with the reserved suffix {suffix}"));
                    }
                }
            }
            for unit in NON_BASE {
                if name.contains(&format!("{unit}_")) || name.ends_with(unit) {
                    problems.push(format!("{name}: non-base unit {unit} (use seconds / bytes)"));
                }
            }
        }
    }
    problems
}

#[test]
fn every_metric_name_follows_the_prometheus_naming_rules() {
    use prometheus::{Registry, TextEncoder};
    use tandem_actors::controller::ControllerMetrics;
    use tandem_actors::metrics::{DeviceMetrics, EdgeMetrics};
    let device = Registry::new();
    DeviceMetrics::register(&device).expect("device metrics");
    ControllerMetrics::register(&device).expect("controller metrics");
    let edge = Registry::new();
    EdgeMetrics::register(&edge).expect("edge metrics");
    let mut families = 0;
    for (role, registry) in [("device-registered", &device), ("edge-registered", &edge)] {
        let text = TextEncoder::new().encode_to_string(&registry.gather()).expect("encode");
        dump(role, &text);
        families += text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let problems = lint(&text);
        assert!(problems.is_empty(), "{problems:#?}");
    }
    assert!(families >= 20, "only {families} metric families were checked");
    // The lint itself catches what promtool caught before.
    let old =
        "# HELP tandem_bandwidth_estimate_bits_per_second x\n# TYPE tandem_bandwidth_estimate_bits_per_second gauge\n";
    assert_eq!(lint(old).len(), 1, "{:?}", lint(old));
    let counter = "# HELP tandem_x y\n# TYPE tandem_x counter\n";
    assert_eq!(lint(counter).len(), 1);
}
