//! `tandem reproduce` end to end on a tiny configuration: every stage runs for real (training on
//! Fashion-MNIST, 2-step pruning, both profiles, the report, and measured runs of edge and device
//! processes over a shaped link), and the generated section lands in a results file.

use std::path::Path;
use std::process::Command;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

#[test]
fn reproduce_runs_every_stage_and_splices_its_tables() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reproduce-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A pruning run of a few seconds: one step-1 iteration and two short step-2 families.
    let prune = std::fs::read_to_string(root.join("configs/prune-demo.toml"))
        .expect("prune-demo config")
        .replace("eval_images = 2000", "eval_images = 200")
        .replace("images = 512", "images = 64")
        .replace("max_iters = 6", "max_iters = 1")
        .replace("points = 8", "points = 3")
        .replace("families = [1, 3, 6, 9, 12]", "families = [1, 12]");
    std::fs::write(dir.join("prune.toml"), prune).expect("write prune config");
    // The pair's config without fixed metrics ports (tests run in parallel).
    std::fs::write(
        dir.join("run.toml"),
        "[edge]\nworkers = 1\n[device]\nplan = \"0:pool2:q8-lz4\"\n[device.camera]\nsource = \"fashion-mnist\"\nfps = 30.0\n",
    )
    .expect("write run config");
    let config = format!(
        "name = \"tiny\"\ntitle = \"tiny VGG-16\"\nreference = \"none\"\n\
         [train]\nmodel = \"vgg16\"\nwidth_mult = 0.0625\nepochs = 1\nlimit_train = 256\n\
         [prune]\nconfig = \"{}\"\n\
         [profile]\nimages = 2\naccuracy_images = 20\n\
         [measure]\nslowdown = 2.0\ndelay_ms = 1\nbandwidths_mbps = [5.0]\nduration_s = 1.0\nrun_config = \"{}\"\n",
        dir.join("prune.toml").display(),
        dir.join("run.toml").display()
    );
    std::fs::write(dir.join("tiny.toml"), config).expect("write config");
    std::fs::write(dir.join("RESULTS.md"), "# Results\n\nhand-written text\n").expect("write results");

    // `tandem reproduce` on the tiny config, its stages in `work/`, its section in RESULTS.md.
    let reproduce = |extra: &[&str]| {
        Command::new(TANDEM)
            .current_dir(root)
            .arg("reproduce")
            .args(extra)
            .arg("--config")
            .arg(dir.join("tiny.toml"))
            .arg("--dir")
            .arg(dir.join("work"))
            .arg("--results")
            .arg(dir.join("RESULTS.md"))
            .output()
            .expect("run tandem reproduce")
    };
    let out = reproduce(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reproduce failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let results = std::fs::read_to_string(dir.join("RESULTS.md")).expect("results file");
    assert!(results.starts_with("# Results\n\nhand-written text\n"), "{results}");
    assert!(results.contains("<!-- tandem reproduce tiny: generated, do not edit -->"), "{results}");
    assert!(results.contains("| point | original | step 1 | best step 2 within budget | its accuracy |"), "{results}");
    assert!(results.contains("| pool5 |"), "{results}");
    // One measured row per plan, each with every captured frame accounted for as a result.
    let rows: Vec<&str> = results.lines().filter(|l| l.starts_with("| 5 Mbit/s |") && l.contains('`')).collect();
    assert!(rows.iter().any(|r| r.contains("2-step, adaptive")), "{results}");
    assert!(rows.iter().any(|r| r.contains("original, all on device") && r.contains("`0:end`")), "{results}");
    for row in &rows {
        let frames = row.trim_end_matches('|').rsplit('|').next().expect("last cell").trim();
        let (got, captured) = frames.split_once(" / ").unwrap_or_else(|| panic!("no results / captured in {row}"));
        let (got, captured): (u64, u64) = (got.parse().expect("results"), captured.parse().expect("captured"));
        assert!(captured > 0 && got > 0 && got <= captured, "{row}");
    }
    assert!(dir.join("reproduce/tiny/report.md").is_file(), "the report is copied beside the results file");

    // A second run reuses every cached stage and replaces its section instead of adding one.
    let again = reproduce(&["--no-measure"]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("reusing"), "{text}");
    let results = std::fs::read_to_string(dir.join("RESULTS.md")).expect("results file");
    assert_eq!(results.matches("<!-- tandem reproduce tiny:").count(), 1, "{results}");
    let _ = std::fs::remove_dir_all(&dir);
}
