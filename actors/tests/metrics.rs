use tandem_actors::http::serve;

use crate::common::*;

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
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
