//! The engine against burn on Fashion-MNIST, head∘tail against whole, exported files in an
//! independent runtime (tract), the fallback, and bad input.
//!
//! ONNX Runtime's library must be installed (`bash scripts/setup.sh`); a test that needs it
//! fails with that hint rather than skipping.

use std::sync::OnceLock;

use tandem_engine::onnx::{self, Metadata};
use tandem_engine::tract::TractModel;
use tandem_engine::{Choice, Engine, EngineError, EngineKind, EngineOptions, onnxruntime};
use tandem_models::data::{self, DataSource, Dataset};
use tandem_models::params::ParamMap;
use tandem_models::zoo::{Arch, Net, NetSpec};
use tandem_models::{checkpoint, testkit};

/// Max |Δlogit| between the engine (batch norm folded, ONNX Runtime) and burn.
const LOGIT_TOLERANCE: f32 = 1e-3;
/// Fashion-MNIST test images used here (the full 10 000 are in docs/RESULTS.md's note).
const IMAGES: usize = 300;

fn ort() -> Engine {
    let opts = EngineOptions { choice: Choice::OnnxRuntime, threads: 1, ..EngineOptions::default() };
    Engine::open(&opts).unwrap_or_else(|e| panic!("{e} — install it with `bash scripts/setup.sh`"))
}

fn images() -> &'static Dataset {
    static DS: OnceLock<Dataset> = OnceLock::new();
    DS.get_or_init(|| {
        let splits =
            data::load(&DataSource::FashionMnist, None).expect("Fashion-MNIST (dataset-fashion-mnist package)");
        splits.test.take(IMAGES)
    })
}

/// A small VGG-16 with random weights *and* random batch-norm statistics, so that folding
/// batch norm into the conv is exercised (fresh statistics make it nearly the identity).
fn random_bn_net(seed: u64) -> Net {
    let dev = tandem_models::device::cpu();
    let spec = NetSpec::new(Arch::Vgg16, 1, 32, 10, testkit::base_widths()).expect("spec");
    dev.seed(seed);
    let net = Net::new(&spec, &dev);
    let mut params = ParamMap::from_module(&net).expect("params");
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    for (name, a) in params.0.iter_mut() {
        let (lo, hi) = match name.rsplit('.').next() {
            Some("running_mean") => (-0.5, 0.5),
            Some("running_var") => (0.3, 2.0),
            Some("gamma") => (0.5, 1.5),
            Some("beta") => (-0.3, 0.3),
            _ => continue,
        };
        for v in &mut a.data {
            *v = lo + (hi - lo) * next();
        }
    }
    params.apply(Net::new(&spec, &dev)).expect("apply")
}

fn batch(ds: &Dataset, range: std::ops::Range<usize>) -> (Vec<f32>, [usize; 4]) {
    let mut x = Vec::new();
    for i in range.clone() {
        x.extend(ds.image_f32(i));
    }
    (x, [range.len(), ds.channels, ds.size, ds.size])
}

fn argmax(v: &[f32]) -> usize {
    tandem_models::train::argmax(v)
}

/// Compare two logit matrices row by row: every argmax equal, every logit within tolerance.
fn assert_same_predictions(what: &str, want: &[f32], got: &[f32], classes: usize) {
    assert_eq!(want.len(), got.len(), "{what}: output sizes");
    let mut worst = 0f32;
    for (i, (w, g)) in want.chunks(classes).zip(got.chunks(classes)).enumerate() {
        let d = w.iter().zip(g).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        worst = worst.max(d);
        assert_eq!(argmax(w), argmax(g), "{what}: image {i} disagrees: burn {w:?} vs {g:?}");
        assert!(d <= LOGIT_TOLERANCE, "{what}: image {i}: |Δlogit| {d} > {LOGIT_TOLERANCE}: burn {w:?} vs {g:?}");
    }
    assert!(worst.is_finite(), "{what}: non-finite logits");
    // The comparison means something only if the logits do.
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 100.0 * LOGIT_TOLERANCE, "{what}: logits too small to compare ({scale})");
    eprintln!(
        "{what}: max |logit| {scale:.3}, worst |Δ| {worst:.2e}, {} classes predicted",
        classes_seen(want, classes)
    );
}

fn classes_seen(logits: &[f32], classes: usize) -> usize {
    logits.chunks(classes).map(argmax).collect::<std::collections::BTreeSet<_>>().len()
}

/// The tiny VGG-16 trained for one epoch on 1 280 Fashion-MNIST training images: its
/// predictions depend on the image (random weights predict one class for every image, which
/// would make argmax agreement vacuous) and its batch-norm statistics are learnt.
fn trained_net() -> Net {
    let splits = data::load(&DataSource::FashionMnist, None).expect("Fashion-MNIST");
    let spec = NetSpec::new(Arch::Vgg16, 1, 32, 10, testkit::base_widths()).expect("spec");
    train_briefly(&spec, &splits.train.take(1280), "engine-test")
}

/// One epoch of constant-rate SGD on `train` from a seeded initialisation, in eval mode.
fn train_briefly(spec: &NetSpec, train_set: &Dataset, label: &str) -> Net {
    use burn::module::Module;
    use tandem_models::train::{Schedule, TrainConfig, train};
    let dev = tandem_models::device::cpu_autodiff();
    dev.seed(5);
    let cfg = TrainConfig {
        epochs: 1.0,
        batch_size: 32,
        lr: 0.05,
        schedule: Schedule::Constant,
        augment: false,
        ..TrainConfig::default()
    };
    let (net, _) = train(Net::new(spec, &dev), train_set, &cfg, label, false).expect("train");
    net.valid()
}

fn burn_logits(net: &Net, x: Vec<f32>, shape: [usize; 4]) -> Vec<f32> {
    Engine::burn().prepare(net, 0, net.spec.end(), 1).expect("burn segment").run(x, shape).expect("burn run").0
}

#[test]
fn onnxruntime_predicts_like_burn_on_fashion_mnist_for_every_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = testkit::tiny_series(dir.path()).expect("series");
    let engine = ort();
    let ds = images();
    let mut nets: Vec<(String, Net)> = series
        .members
        .iter()
        .map(|m| {
            let (net, _) =
                checkpoint::load(&series.dir_of(dir.path(), m), &tandem_models::device::cpu()).expect("member");
            (m.name.clone(), net)
        })
        .collect();
    nets.push(("random-bn".into(), random_bn_net(7)));
    let trained = trained_net();
    let (x, shape) = batch(ds, 0..IMAGES);
    let seen = classes_seen(&burn_logits(&trained, x, shape), 10);
    assert!(seen >= 5, "the trained net predicts only {seen} classes: argmax agreement would say little");
    nets.push(("trained".into(), trained));
    for (name, net) in &nets {
        let end = net.spec.end();
        let seg = engine.prepare(net, 0, end, 1).expect("prepare");
        assert_eq!(seg.kind(), EngineKind::OnnxRuntime);
        let (x, shape) = batch(ds, 0..IMAGES);
        let want = burn_logits(net, x.clone(), shape);
        let (got, dims) = seg.run(x, shape).expect("run");
        assert_eq!(dims, [IMAGES, 10, 1, 1]);
        assert_same_predictions(name, &want, &got, 10);
    }
}

/// Sessions at the machine's core count run on the process's one shared ONNX Runtime pool; a
/// session at one thread has its own. Both give burn's predictions, also when two callers run
/// the same prepared segment at once on the shared pool (as the edge's workers do).
#[test]
fn shared_pool_and_own_pool_sessions_predict_like_burn_concurrently() {
    let cores = tandem_engine::default_threads();
    let shared =
        Engine::open(&EngineOptions { choice: Choice::OnnxRuntime, threads: cores, ..EngineOptions::default() })
            .unwrap_or_else(|e| panic!("{e} — install it with `bash scripts/setup.sh`"));
    assert_eq!(onnxruntime::pool_threads(), Some(cores), "the shared pool has a thread per core");
    let net = trained_net();
    let end = net.spec.end();
    let (x, shape) = batch(images(), 0..IMAGES);
    let want = burn_logits(&net, x.clone(), shape);
    let own = ort().prepare(&net, 0, end, 1).expect("own-pool segment");
    assert_same_predictions("own pool", &want, &own.run(x.clone(), shape).expect("run").0, 10);
    let seg = shared.prepare(&net, 0, end, 2).expect("shared-pool segment");
    let half = IMAGES / 2;
    let per = x.len() / IMAGES;
    let (a, b) = (x[..half * per].to_vec(), x[half * per..].to_vec());
    let shape_a = [half, shape[1], shape[2], shape[3]];
    let shape_b = [IMAGES - half, shape[1], shape[2], shape[3]];
    let (ya, yb) = std::thread::scope(|s| {
        let ta = s.spawn(|| seg.run(a, shape_a).expect("run a").0);
        let tb = s.spawn(|| seg.run(b, shape_b).expect("run b").0);
        (ta.join().expect("thread a"), tb.join().expect("thread b"))
    });
    assert_same_predictions("shared pool, two callers", &want, &[ya, yb].concat(), 10);
}

#[test]
fn head_then_tail_equals_whole_at_every_point() {
    let net = random_bn_net(11);
    let engine = ort();
    let end = net.spec.end();
    let (x, shape) = batch(images(), 0..8);
    let whole = engine.prepare(&net, 0, end, 1).expect("whole").run(x.clone(), shape).expect("run").0;
    for point in 1..end {
        let head = engine.prepare(&net, 0, point, 1).expect("head");
        let tail = engine.prepare(&net, point, end, 1).expect("tail");
        let (mid, mid_shape) = head.run(x.clone(), shape).expect("head run");
        assert_eq!(mid_shape[1..], net.spec.points()[point].shape[..], "point {point}");
        let (y, _) = tail.run(mid, mid_shape).expect("tail run");
        let d = whole.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d <= 1e-4, "point {point}: head∘tail differs from whole by {d}");
    }
}

#[test]
fn exported_files_run_in_tract_with_burns_predictions_and_say_what_they_are() {
    let net = trained_net();
    let end = net.spec.end();
    let meta = Metadata {
        member: "random-bn".into(),
        model_id: Some(3),
        dataset: "fashion-mnist".into(),
        mean: vec![0.286],
        std: vec![0.353],
        class_names: (0..10).map(|c| format!("class{c}")).collect(),
    };
    let ds = images();
    let n = 100;
    let (x, shape) = batch(ds, 0..n);
    let want = burn_logits(&net, x.clone(), shape);
    let bytes = onnx::segment_bytes(&net, 0, end, &meta).expect("export");
    let (got, dims) = TractModel::load(&bytes, shape).expect("tract loads the file").run(&x).expect("tract runs it");
    assert_eq!(dims, vec![n, 10]);
    assert_same_predictions("tract whole", &want, &got, 10);
    // Head and tail at pool2 through tract compose to the same logits.
    let pool2 = net.spec.point("pool2").expect("pool2").index;
    let head = onnx::segment_bytes(&net, 0, pool2, &meta).expect("head");
    let tail = onnx::segment_bytes(&net, pool2, end, &meta).expect("tail");
    let (mid, mid_dims) = TractModel::load(&head, shape).expect("head").run(&x).expect("run head");
    let mid_shape = [mid_dims[0], mid_dims[1], mid_dims[2], mid_dims[3]];
    let (y, _) = TractModel::load(&tail, mid_shape).expect("tail").run(&mid).expect("run tail");
    assert_same_predictions("tract head∘tail", &want, &y, 10);

    let props: std::collections::HashMap<String, String> =
        onnx::read_metadata(&bytes).expect("metadata").into_iter().collect();
    assert_eq!(props["tandem.member"], "random-bn");
    assert_eq!(props["tandem.part"], "whole");
    assert_eq!(props["tandem.model_id"], "3");
    assert_eq!(props["tandem.mean"], "0.286");
    assert_eq!(props["tandem.class_names"].split(',').count(), 10);
    assert_eq!(props["tandem.widths"], net.spec.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(","));
    let tail_props: std::collections::HashMap<String, String> =
        onnx::read_metadata(&tail).expect("meta").into_iter().collect();
    assert_eq!((tail_props["tandem.part"].as_str(), tail_props["tandem.point"].as_str()), ("tail", "pool2"));
}

#[test]
fn exported_batch_dimension_is_dynamic() {
    let net = random_bn_net(17);
    let bytes = onnx::segment_bytes(&net, 0, net.spec.end(), &Metadata::default()).expect("export");
    let (x, _) = batch(images(), 0..5);
    for n in [1, 5] {
        let shape = [n, 1, 32, 32];
        let (_, dims) = TractModel::load(&bytes, shape).expect("load").run(&x[..n * 1024]).expect("run");
        assert_eq!(dims, vec![n, 10]);
    }
}

#[test]
fn missing_library_falls_back_to_burn_with_the_reason() {
    let missing = std::path::PathBuf::from("/nonexistent/tandem/libonnxruntime.so");
    let opts = EngineOptions { choice: Choice::Auto, library: vec![missing.clone()], threads: 1 };
    let engine = Engine::open(&opts).expect("auto never fails");
    assert_eq!(engine.kind(), EngineKind::Burn);
    let reason = engine.fallback().expect("a reason");
    assert!(reason.contains("/nonexistent/tandem/libonnxruntime.so") && reason.contains("not found"), "{reason}");
    // It still runs.
    let net = random_bn_net(19);
    let seg = engine.prepare(&net, 0, net.spec.end(), 1).expect("burn prepare");
    assert_eq!(seg.run(vec![0.0; 1024], [1, 1, 32, 32]).expect("run").1, [1, 10, 1, 1]);
    // Asking for ONNX Runtime explicitly is an error naming the file.
    let err = Engine::open(&EngineOptions { choice: Choice::OnnxRuntime, ..opts.clone() }).expect_err("explicit");
    assert!(matches!(err, EngineError::Library { ref path, .. } if *path == missing), "{err}");
    // A file that is not a shared library is a load error, not a crash.
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("libonnxruntime.so");
    std::fs::write(&bogus, b"not an ELF file").expect("write");
    let opts = EngineOptions { choice: Choice::Auto, library: vec![bogus], threads: 1 };
    let engine = Engine::open(&opts).expect("auto");
    // Where another test of this process loaded the real library first, `ort` keeps that one.
    assert!(engine.kind() == EngineKind::Burn || engine.fallback().is_none());
}

#[test]
fn library_lookup_order() {
    let exe = std::path::Path::new("/opt/tandem/bin");
    let home = std::path::PathBuf::from("/home/u/.local/share");
    assert_eq!(
        onnxruntime::candidates(None, Some(exe), Some(home.clone())),
        vec![exe.join("libonnxruntime.so"), home.join("tandem").join("onnxruntime").join("libonnxruntime.so")]
    );
    let chosen = std::path::PathBuf::from("/x/libonnxruntime.so.1.31.1");
    assert_eq!(onnxruntime::candidates(Some(chosen.clone()), Some(exe), Some(home)), vec![chosen]);
}

#[test]
fn bad_input_and_bad_files_are_clear_errors() {
    let engine = ort();
    let net = random_bn_net(23);
    let seg = engine.prepare(&net, 0, 3, 1).expect("head");
    let err = seg.run(vec![0.0; 3 * 1024], [1, 3, 32, 32]).expect_err("wrong channels");
    assert!(matches!(err, EngineError::Shape { .. }), "{err}");
    let err = seg.run(vec![0.0; 10], [1, 1, 32, 32]).expect_err("short data");
    assert!(matches!(err, EngineError::Shape { .. }), "{err}");
    let err = engine.prepare(&net, 4, 4, 1).expect_err("empty range");
    assert!(matches!(err, EngineError::Range { .. }), "{err}");
    // Not ONNX at all, and ONNX cut short: both refused with a message, by both runtimes.
    let bytes = onnx::segment_bytes(&net, 0, net.spec.end(), &Metadata::default()).expect("export");
    for bad in [b"definitely not protobuf".to_vec(), bytes[..bytes.len() / 2].to_vec()] {
        let e =
            onnxruntime::session(&onnxruntime::load(&onnxruntime::default_candidates()).expect("library").0, &bad, 1)
                .expect_err("ONNX Runtime refuses it");
        assert!(matches!(e, EngineError::Runtime(ref m) if !m.is_empty()), "{e}");
        assert!(TractModel::load(&bad, [1, 1, 32, 32]).is_err());
    }
    // A file whose input shape is not the one given to the runtime.
    let err = TractModel::load(&bytes, [1, 3, 32, 32]).expect_err("mis-shaped input");
    assert!(err.to_string().contains("tract"), "{err}");
}

/// A tiny VGG-16 trained briefly at the scenes data set's 3×64×64 exports with that input
/// shape, and ONNX Runtime and tract (whole, and head∘tail at pool3) predict what burn does.
#[test]
fn a_model_trained_on_64x64_colour_scenes_survives_export() {
    use tandem_models::data::ScenesConfig;
    let cfg = ScenesConfig { train: Some(320), test: Some(40), ..ScenesConfig::default() };
    let splits = data::load(&DataSource::Scenes(cfg), None).expect("scenes from Fashion-MNIST");
    let spec = NetSpec::new(Arch::Vgg16, 3, 64, 10, testkit::base_widths()).expect("spec");
    let net = train_briefly(&spec, &splits.train, "engine-scenes");
    let end = net.spec.end();
    let n = splits.test.len();
    let (x, shape) = batch(&splits.test, 0..n);
    assert_eq!(shape, [n, 3, 64, 64]);
    let want = burn_logits(&net, x.clone(), shape);
    let (got, dims) = ort().prepare(&net, 0, end, 1).expect("prepare").run(x.clone(), shape).expect("run");
    assert_eq!(dims, [n, 10, 1, 1]);
    assert_same_predictions("onnxruntime 3x64x64", &want, &got, 10);
    let bytes = onnx::segment_bytes(&net, 0, end, &Metadata::default()).expect("export");
    let (got, _) = TractModel::load(&bytes, shape).expect("tract loads the 3x64x64 file").run(&x).expect("run");
    assert_same_predictions("tract 3x64x64", &want, &got, 10);
    let pool3 = net.spec.point("pool3").expect("pool3").index;
    let head = onnx::segment_bytes(&net, 0, pool3, &Metadata::default()).expect("head");
    let tail = onnx::segment_bytes(&net, pool3, end, &Metadata::default()).expect("tail");
    let (mid, mid_dims) = TractModel::load(&head, shape).expect("head").run(&x).expect("run head");
    assert_eq!(mid_dims[1..], net.spec.points()[pool3].shape[..], "pool3 of a 64x64 input is 8x8");
    let mid_shape = [mid_dims[0], mid_dims[1], mid_dims[2], mid_dims[3]];
    let (y, _) = TractModel::load(&tail, mid_shape).expect("tail").run(&mid).expect("run tail");
    assert_same_predictions("tract head∘tail 3x64x64", &want, &y, 10);
    // A 32×32 input is refused by the 64×64 file.
    assert!(TractModel::load(&bytes, [1, 3, 32, 32]).is_err());
}

/// `tandem_engine::pb` declares the fields of `onnx.proto` that tandem writes; tract's types are
/// generated from `onnx.proto` itself. A whole segment encoded with ours decodes in tract's to the
/// same graph, and re-encodes to the same bytes: every field has the specification's tag and wire
/// type. The other way, a file written with tract's types reads back in ours.
#[test]
fn the_onnx_messages_match_the_ones_generated_from_onnx_proto() {
    use prost::Message;
    use tract_onnx::pb as spec;
    let net = random_bn_net(29);
    let meta = Metadata { member: "m".into(), model_id: Some(7), ..Metadata::default() };
    let pool2 = net.spec.point("pool2").expect("pool2").index;
    for (from, to) in [(0, net.spec.end()), (0, pool2), (pool2, net.spec.end())] {
        let ours = onnx::segment_model(&net, from, to, &meta).expect("segment");
        let bytes = ours.encode_to_vec();
        let theirs = spec::ModelProto::decode(&bytes[..]).expect("tract's types decode the file");
        assert_eq!(theirs.encode_to_vec(), bytes, "segment {from}..{to} re-encodes differently");
        let (g, tg) = (ours.graph.as_ref().expect("graph"), theirs.graph.as_ref().expect("graph"));
        assert_eq!((theirs.ir_version, theirs.opset_import[0].version), (onnx::IR_VERSION, onnx::OPSET));
        assert_eq!(tg.node.len(), g.node.len());
        for (n, t) in g.node.iter().zip(&tg.node) {
            assert_eq!((&t.op_type, &t.name, &t.input, &t.output), (&n.op_type, &n.name, &n.input, &n.output));
            let attrs: Vec<_> = t.attribute.iter().map(|a| (a.name.clone(), a.r#type, a.i, a.ints.clone())).collect();
            let want: Vec<_> = n.attribute.iter().map(|a| (a.name.clone(), a.r#type, a.i, a.ints.clone())).collect();
            assert_eq!(attrs, want, "attributes of {}", n.name);
        }
        for (i, t) in g.initializer.iter().zip(&tg.initializer) {
            assert_eq!((&t.name, &t.dims, t.data_type, &t.raw_data), (&i.name, &i.dims, i.data_type, &i.raw_data));
        }
        let shape = |v: &spec::ValueInfoProto| format!("{:?}", v.r#type);
        assert_eq!(tg.input.iter().map(shape).collect::<Vec<_>>().len(), 1);
        assert!(shape(&tg.input[0]).contains("DimParam(\"N\")"), "{}", shape(&tg.input[0]));
        let props: Vec<_> = theirs.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        assert_eq!(props, onnx::read_metadata(&bytes).expect("ours read it"));
    }
    // Written with tract's types, read with ours.
    let written = spec::ModelProto {
        ir_version: 8,
        producer_name: "elsewhere".into(),
        metadata_props: vec![spec::StringStringEntryProto { key: "k".into(), value: "v".into() }],
        graph: Some(spec::GraphProto { name: "g".into(), ..Default::default() }),
        ..Default::default()
    }
    .encode_to_vec();
    let read = tandem_engine::pb::ModelProto::decode(&written[..]).expect("ours decode it");
    assert_eq!((read.ir_version, read.producer_name.as_str()), (8, "elsewhere"));
    assert_eq!(read.graph.expect("graph").name, "g");
    assert_eq!(onnx::read_metadata(&written).expect("metadata"), vec![("k".to_string(), "v".to_string())]);
}
