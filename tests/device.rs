//! `--device`: the CPU trains as before; a backend the binary was built without is refused with a
//! message that says how to rebuild, before any data is read.

use std::path::Path;
use std::process::Command;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// `tandem train` on a tiny AlexNet over 64 synthetic images (a few seconds), into `out`.
fn train(device: &str, out: &Path) -> std::process::Output {
    Command::new(TANDEM)
        .args([
            "train",
            "--model",
            "alexnet",
            "--width-mult",
            "0.0625",
            "--dataset",
            "synthetic",
            "--limit-train",
            "64",
        ])
        .args(["--epochs", "1", "--batch-size", "32", "--device", device, "--out"])
        .arg(out)
        .output()
        .expect("run tandem train")
}

#[test]
fn train_on_the_cpu_device_writes_a_model_directory() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("device-cpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = train("cpu", &out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("on cpu"), "{stdout}");
    assert!(out.join("model.toml").is_file() && out.join("weights.safetensors").is_file());
    let _ = std::fs::remove_dir_all(&out);
}

/// `tandem train --device KIND` in a binary built without KIND's feature: a clean error exit that
/// names the feature and the rebuild command, and nothing written.
fn assert_refused_without_its_feature(kind: &str) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("device-{kind}-{}", std::process::id()));
    let run = train(kind, &out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "a clean error exit, not a panic (101) or a signal:\n{stderr}");
    assert!(stderr.contains(&format!("built without the `{kind}` feature")), "{stderr}");
    assert!(stderr.contains(&format!("cargo build --release --features {kind}")), "{stderr}");
    assert!(!out.exists(), "nothing is written when the device is refused");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_refused_with_the_rebuild_command() {
    assert_refused_without_its_feature("cuda");
}

#[cfg(not(feature = "libtorch"))]
#[test]
fn libtorch_without_the_feature_is_refused_with_the_rebuild_command() {
    assert_refused_without_its_feature("libtorch");
}

#[test]
fn an_unknown_device_is_a_usage_error() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("device-unknown");
    let run = train("tpu", &out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cpu") && stderr.contains("cuda") && stderr.contains("wgpu") && stderr.contains("libtorch"),
        "{stderr}"
    );
}
