use tandem_actors::ledger::{DropReason, Summary};
use tandem_actors::link::LinkCommand;
use tandem_actors::models::load_member;
use tandem_actors::plan::PlanChoice;
use tandem_actors::predictions::{LineFormat, PredictionLine, WallClock};
use tandem_actors::testkit;
use tandem_actors::types::Origin;
use tandem_codec::{ClassProb, PlanResult, ResultSpec};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::common::*;

/// q8 per-tensor quantisation of the split tensor moves each logit by at most this fraction of
/// the largest logit magnitude (measured: at most 3.1 % on the tiny series; 8 % leaves room).
const Q8_LOGIT_TOLERANCE: f32 = 0.08;

/// The whole model on the engine the pipeline runs (ONNX Runtime where it loads), so that an
/// f32 split can be compared exactly.
fn full_model_logits(s: &TestSeries, model_id: u32, frames: usize) -> Vec<Vec<f32>> {
    let m = load_member(&s.series, &s.path, model_id).expect("load");
    let engine = tandem_engine::Engine::open(&tandem_engine::EngineOptions::default()).expect("engine");
    let whole = engine.prepare(&m.net, 0, m.end(), 1).expect("prepare");
    let data = testkit::synthetic_frames(frames);
    (0..frames).map(|i| whole.run(data.image_f32(i), [1, 1, 32, 32]).expect("run").0).collect()
}

fn assert_balanced(s: &Summary) {
    assert!(s.balanced(), "captured {} != results {} + drops {:?}", s.captured, s.results_total(), s.dropped);
}

async fn split_equals_full(plan_text: &str, exact: bool) {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let frames = 12;
    // Slow enough that nothing is dropped on a loaded 2-core machine is not something to rely
    // on: the test compares whatever results there are, and checks the accounting.
    let mut settings = device_settings(&s, &edge.addr.to_string(), plan_text, 50.0, Some(frames as u64));
    // Every logit, to compare them (the default, top-k only, is `edge_results_carry_the_top_k`).
    settings.link.results = ResultSpec { top_k: 5, logits: true };
    let model_id = settings.plan.model_id;
    let (device, _) = start_device(settings, frames).await;
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    eprintln!("{plan_text}:\n{summary}");
    assert_balanced(&summary);
    assert!(summary.edge > 0, "some frames must have gone through the edge: {summary}");
    let reference = full_model_logits(&s, model_id, frames);
    for r in &summary.results {
        let want = &reference[r.frame_id as usize % frames];
        assert_eq!(r.logits.len(), want.len());
        if r.origin == Origin::Edge {
            // The edge's softmax top-5 is the one of the logits it sent.
            assert_eq!(r.top, ClassProb::top_k(&r.logits, 5), "frame {}", r.frame_id);
        }
        if exact || r.origin == Origin::Local {
            assert_eq!(&r.logits, want, "frame {} ({:?}) differs from the full model", r.frame_id, r.origin);
            assert_eq!(usize::from(r.class), tandem_models::train::argmax(want));
        } else {
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let worst = r.logits.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(
                worst <= Q8_LOGIT_TOLERANCE * scale,
                "frame {}: logit error {worst} > {} x {scale}",
                r.frame_id,
                Q8_LOGIT_TOLERANCE
            );
            // The class must agree wherever the reference's top-2 margin exceeds the error bound.
            let mut sorted = want.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted[0] - sorted[1] > 2.0 * Q8_LOGIT_TOLERANCE * scale {
                assert_eq!(usize::from(r.class), tandem_models::train::argmax(want), "frame {}", r.frame_id);
            }
        }
    }
}

/// The default results: the edge sends its softmax top-3 and no logits, over loopback; with an
/// f32 split they are exactly the full model's top-3, and the predictions line names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_results_carry_the_top_k_by_default() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let frames = 12;
    let settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:f32", 50.0, Some(frames as u64));
    assert_eq!(settings.link.results, ResultSpec { top_k: 3, logits: false });
    let model_id = settings.plan.model_id;
    let (device, _) = start_device(settings, frames).await;
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert_balanced(&summary);
    assert!(summary.edge > 0, "some frames must have gone through the edge: {summary}");
    let reference = full_model_logits(&s, model_id, frames);
    let format = LineFormat { top_k: 3, classes: (0..10).map(|i| format!("c{i}")).collect() };
    let clock = WallClock::now();
    for r in summary.results.iter().filter(|r| r.origin == Origin::Edge) {
        let want = &reference[r.frame_id as usize % frames];
        assert!(r.logits.is_empty(), "frame {}: logits sent unasked", r.frame_id);
        assert_eq!(r.top, ClassProb::top_k(want, 3), "frame {}", r.frame_id);
        assert_eq!(usize::from(r.class), tandem_models::train::argmax(want));
        let PredictionLine::Result { top, .. } = format.result(r, &clock) else { panic!("a result line") };
        assert_eq!(top, tandem_actors::predictions::top_k(want, 3, &format.classes));
    }
}

/// The camera-style baseline: the input sent as a JPEG (q90) over loopback, decoded at the edge,
/// the whole model run there. The edge's logits equal the full model's on the device-side JPEG
/// round trip of the same image (exactly: the same engine, the same decoded input), so the frame
/// carried the coded input intact. Class agreement with the uncoded input is measured, not
/// asserted: on the tiny series (random-init model, synthetic noise images, which is what JPEG
/// discards) it was 6/15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_coded_input_goes_device_to_edge_intact() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let frames = 16;
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:input:jpeg90", 50.0, Some(frames as u64));
    settings.link.results = ResultSpec { top_k: 3, logits: true };
    let model_id = settings.plan.model_id;
    let (device, _) = start_device(settings, frames).await;
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert_balanced(&summary);
    assert_eq!(summary.dropped.get(&DropReason::EdgeError).copied().unwrap_or(0), 0, "{summary}");
    let m = load_member(&s.series, &s.path, model_id).expect("load");
    let engine = tandem_engine::Engine::open(&tandem_engine::EngineOptions::default()).expect("engine");
    let whole = engine.prepare(&m.net, 0, m.end(), 1).expect("prepare");
    let data = testkit::synthetic_frames(frames);
    let jpeg = "jpeg90".parse().expect("coding");
    let uncoded = full_model_logits(&s, model_id, frames);
    let edge_results: Vec<_> = summary.results.iter().filter(|r| r.origin == Origin::Edge).collect();
    assert!(!edge_results.is_empty(), "no frame went through the edge: {summary}");
    let mut agree = 0;
    for r in &edge_results {
        let i = r.frame_id as usize % frames;
        let coded = tandem_codec::encode(&data.image_f32(i), &[1, 1, 32, 32], jpeg).expect("jpeg");
        let decoded = tandem_codec::decode(&coded).expect("decode");
        let want = whole.run(decoded, [1, 1, 32, 32]).expect("run").0;
        assert_eq!(r.logits, want, "frame {i}: the edge did not see the JPEG-coded input");
        agree += usize::from(usize::from(r.class) == tandem_models::train::argmax(&uncoded[i]));
    }
    eprintln!("jpeg90 input: {agree}/{} edge results keep the uncoded input's class", edge_results.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_results_equal_the_full_model_f32() {
    split_equals_full("0:pool2:f32", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_results_match_the_full_model_within_q8_tolerance() {
    split_equals_full("1:conv3_1:q8-lz4", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_is_accounted_for_under_overload_and_shutdown() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    // Far more frames per second than two cores can infer: the camera must drop, and counts it.
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:pool1:q8-lz4", 5000.0, None);
    settings.drain = std::time::Duration::from_millis(1);
    let (device, _) = start_device(settings, 16).await;
    wait_counts(&device, "some results", |c| c.edge >= 5).await;
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    eprintln!("{summary}");
    assert_balanced(&summary);
    assert!(summary.captured >= 5);
    assert!(summary.edge >= 5);
    // Whatever was dropped has a reason from the fixed set, and only the expected ones here.
    for reason in summary.dropped.keys() {
        assert!(
            matches!(reason, DropReason::CameraOverrun | DropReason::Shutdown),
            "unexpected drop reason {reason:?}: {summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_killed_mid_stream_falls_back_locally_then_recovers() {
    let s = series();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (edge, _) = start_edge_on(listener, &s.path, &edge_config()).await;
    let settings = device_settings(&s, &addr.to_string(), "0:pool2:q8-lz4", 100.0, None);
    let (device, _) = start_device(settings, 16).await;
    let mut state = device.link_state();

    wait_counts(&device, "edge results", |c| c.edge >= 3).await;
    edge.shutdown().await;
    guarded("link down", state.wait_for(|s| !s.is_up())).await.expect("link alive");
    let at_kill = wait_counts(&device, "local fallback results", |c| c.local >= 3).await;

    // The edge comes back on the same address; the device reconnects with backoff.
    let listener = TcpListener::bind(addr).await.expect("rebind");
    let (edge, _) = start_edge_on(listener, &s.path, &edge_config()).await;
    guarded("link up again", state.wait_for(|s| s.is_up())).await.expect("link alive");
    wait_counts(&device, "edge results after recovery", |c| c.edge >= at_kill.edge + 3).await;
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert_balanced(&summary);
    // The snapshot counts reruns of frames the link lost with the local results; the summary
    // keeps them apart.
    assert!(summary.local + summary.rerun_local >= 3 && summary.edge >= 6, "{summary}");
    for reason in summary.dropped.keys() {
        assert!(
            matches!(reason, DropReason::CameraOverrun | DropReason::LinkDown),
            "unexpected drop reason {reason:?}: {summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_edge_means_local_inference() {
    let s = series();
    // A port nobody listens on: bind, note it, close.
    let addr = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let mut settings = device_settings(&s, &addr.to_string(), "0:pool2:q8-lz4", 100.0, Some(8));
    settings.connect_wait = std::time::Duration::ZERO;
    let (device, _) = start_device(settings, 8).await;
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    assert_balanced(&summary);
    assert_eq!(summary.edge, 0);
    assert!(summary.local > 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_share_one_edge() {
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let a = device_settings(&s, &edge.addr.to_string(), "0:pool1:q8-lz4", 40.0, Some(10));
    let b = device_settings(&s, &edge.addr.to_string(), "1:pool3:q4-lz4", 40.0, Some(10));
    let ((da, _), (db, _)) = tokio::join!(start_device(a, 10), start_device(b, 10));
    let (sa, sb) = tokio::join!(guarded("device a", da.finish()), guarded("device b", db.finish()));
    let (sa, sb) = (sa.expect("a"), sb.expect("b"));
    let text = prometheus::TextEncoder::new().encode_to_string(&edge_registry.gather()).expect("encode");
    edge.shutdown().await;
    for s in [&sa, &sb] {
        assert_balanced(s);
        assert!(s.edge > 0, "{s}");
    }
    assert!(sa.results.iter().filter(|r| r.origin == Origin::Edge).all(|r| r.plan.choice.model_id == 0));
    assert!(sb.results.iter().filter(|r| r.origin == Origin::Edge).all(|r| r.plan.choice.model_id == 1));
    assert!(text.contains("tandem_edge_connections_total{outcome=\"accepted\"} 2"), "{text}");
}

/// A plan switch mid-stream: the edge is asked to prepare the new tail, acks it, the plan is
/// published, and frames of both epochs complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_switch_at_a_frame_boundary() {
    let s = series();
    let (edge, _) = start_edge(&s.path, &edge_config()).await;
    let settings = device_settings(&s, &edge.addr.to_string(), "0:pool1:q8-lz4", 100.0, None);
    let (device, _) = start_device(settings, 16).await;
    wait_counts(&device, "results under epoch 1", |c| c.edge >= 3).await;

    let next = PlanChoice { model_id: 1, ..plan(&s, "1:pool3:q8c-lz4") };
    let mut proposed = device.plan().current();
    proposed.epoch += 1;
    proposed.choice = next;
    let (tx, rx) = oneshot::channel();
    device.link_commands().send(LinkCommand::Prepare { plan: proposed, reply: tx }).await.expect("link alive");
    assert_eq!(guarded("plan ack", rx).await.expect("reply"), Ok(PlanResult::Applied));
    assert_eq!(device.plan().publish(next), proposed.epoch);

    // An unknown model is refused by the edge, and nothing is published.
    let mut bogus = proposed;
    bogus.epoch += 1;
    bogus.choice.model_id = 99;
    let (tx, rx) = oneshot::channel();
    device.link_commands().send(LinkCommand::Prepare { plan: bogus, reply: tx }).await.expect("link alive");
    assert_eq!(guarded("plan ack", rx).await.expect("reply"), Ok(PlanResult::UnknownModel));

    let before = *device.snapshot().borrow();
    wait_counts(&device, "results under epoch 2", |c| c.edge >= before.edge + 3).await;
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    edge.shutdown().await;
    assert_balanced(&summary);
    let epochs: std::collections::BTreeSet<u32> =
        summary.results.iter().filter(|r| r.origin == Origin::Edge).map(|r| r.plan.epoch).collect();
    assert!(epochs.contains(&1) && epochs.contains(&2), "{epochs:?}");
    assert!(summary.results.iter().filter(|r| r.plan.epoch == 2).all(|r| r.plan.choice.model_id == 1));
}
