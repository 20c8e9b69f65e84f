//! `tandem export` as a process: the files it writes are ONNX that an independent runtime
//! (tract, the `tract` feature) runs with the engine's predictions, and they say what they are.

use std::path::Path;
use std::process::Command;

#[cfg(feature = "tract")]
use tandem_engine::onnx::read_metadata;
#[cfg(feature = "tract")]
use tandem_engine::tract::TractModel;
#[cfg(feature = "tract")]
use tandem_engine::{Engine, EngineOptions};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// Needs tract (`--features tract`, which scripts/test.sh turns on).
#[test]
#[cfg(feature = "tract")]
fn export_writes_heads_and_tails_that_tract_runs_like_the_engine() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let series = tandem_actors::testkit::tiny_series(&dir).expect("tiny series");
    let (head, tail) = (dir.join("head.onnx"), dir.join("tail.onnx"));
    for (part, out) in [("head", &head), ("tail", &tail)] {
        let status = Command::new(TANDEM)
            .args(["export", "--series"])
            .arg(&dir)
            .args(["--member", "step1-1", "--point", "pool2", "--part", part, "--out"])
            .arg(out)
            .status()
            .expect("run tandem export");
        assert!(status.success(), "tandem export --part {part} failed: {status}");
    }
    let props: std::collections::HashMap<_, _> =
        read_metadata(&std::fs::read(&tail).expect("tail")).expect("meta").into_iter().collect();
    assert_eq!(props["tandem.member"], "step1-1");
    assert_eq!(props["tandem.part"], "tail");
    assert_eq!(props["tandem.point"], "pool2");
    assert_eq!(props["tandem.model_id"], "1");

    let member = series.member(1).expect("member 1");
    let (net, _) =
        tandem_models::checkpoint::load(&series.dir_of(&dir, member), &tandem_models::device::cpu()).expect("load");
    let end = net.spec.end();
    let frames = tandem_actors::testkit::synthetic_frames(4);
    let whole = Engine::open(&EngineOptions::default()).expect("engine").prepare(&net, 0, end, 1).expect("prepare");
    for i in 0..4 {
        let x = frames.image_f32(i);
        let (mid, dims) = TractModel::load(&std::fs::read(&head).expect("head"), [1, 1, 32, 32])
            .expect("head")
            .run(&x)
            .expect("run head");
        let y = TractModel::load(&std::fs::read(&tail).expect("tail"), [dims[0], dims[1], dims[2], dims[3]])
            .expect("tail")
            .run(&mid)
            .expect("run tail")
            .0;
        let want = whole.run(x, [1, 1, 32, 32]).expect("engine").0;
        let d = want.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d <= 1e-3, "frame {i}: tract head∘tail differs from the engine by {d}");
        assert_eq!(tandem_models::train::argmax(&want), tandem_models::train::argmax(&y), "frame {i}");
    }
    // A point the model does not have is refused with a message, not a panic.
    let out = Command::new(TANDEM)
        .args(["export", "--series"])
        .arg(&dir)
        .args(["--point", "pool9", "--part", "head", "--out"])
        .arg(dir.join("x.onnx"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pool9"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn eval_compares_the_engine_with_burn_image_by_image() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("eval-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let series = tandem_actors::testkit::tiny_series(&dir).expect("tiny series");
    let member = series.member(1).expect("member 1");
    let out = Command::new(TANDEM)
        .args(["eval", "--dataset", "synthetic", "--limit", "150", "--compare-engine", "--model-dir"])
        .arg(series.dir_of(&dir, member))
        .output()
        .expect("run tandem eval");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tandem eval --compare-engine failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 150 images in batches of 100: the last, short batch is compared too.
    assert!(stdout.contains("vs burn: argmax agreement 150/150 (100.000 %)"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_defaults_to_the_data_set_the_card_names() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("eval-default-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The tiny series' cards say `synthetic`.
    let series = tandem_actors::testkit::tiny_series(&dir).expect("tiny series");
    let model = series.dir_of(&dir, series.member(0).expect("member 0"));
    let eval = |extra: &[&str]| {
        let json = dir.join("eval.json");
        let out = Command::new(TANDEM)
            .args(["eval", "--limit", "50", "--predictions-out"])
            .arg(&json)
            .arg("--model-dir")
            .arg(&model)
            .args(extra)
            .output()
            .expect("run tandem eval");
        (out, json)
    };
    let classes = |extra: &[&str]| -> Vec<usize> {
        let (out, json) = eval(extra);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = tandem_actors::report::read_json(&json).expect("eval json");
        serde_json::from_value(v["classes"].clone()).expect("classes")
    };
    let default = classes(&[]);
    assert_eq!(default, classes(&["--dataset", "synthetic"]), "the default is the card's data set");
    assert_ne!(default, classes(&["--dataset", "fashion-mnist"]), "other images, other predictions");
    // A card naming a data set this build cannot load is a clear error, not Fashion-MNIST.
    let card = model.join("model.toml");
    let text = std::fs::read_to_string(&card).expect("card");
    assert!(text.contains("dataset = \"synthetic\""), "{text}");
    std::fs::write(&card, text.replace("dataset = \"synthetic\"", "dataset = \"holiday-photos\"")).expect("card");
    let (out, _) = eval(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("holiday-photos") && err.contains("--dataset"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
