//! Video in, predictions out: 300 Fashion-MNIST test images encoded by ffmpeg as a lossless
//! grey video (FFV1 in Matroska, 30 fps) — and as PNG files — played by a real `tandem device`
//! through a real `tandem edge` on loopback, every frame's prediction read back from the
//! `--predictions` JSONL and compared with `tandem eval --predictions-out` on the same images.
//! FFV1 is lossless and the frames are already the model's 32×32 grey, so ffmpeg's scaler is the
//! identity and every class must match, not most. The plan splits at pool2 with `f32` coding (no
//! quantisation), so the split run computes what the whole model computes.
//!
//! The model is the testkit's tiny random-weight series with a Fashion-MNIST card (no training:
//! the comparison needs the same function on both paths, not a good one). Needs ffmpeg
//! (Debian's `ffmpeg`, installed by scripts/setup.sh) and `dataset-fashion-mnist`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use tandem_actors::predictions::PredictionLine;
use tandem_actors::report::{EdgeReady, RunReport, read_json};
use tandem_actors::types::DropReason;
use tandem_models::data::{self, DataSource, Dataset};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const FRAMES: usize = 300;

/// Everything the tests share: one series, its eval predictions, the video, one edge.
struct Fixture {
    dir: PathBuf,
    series: PathBuf,
    video: PathBuf,
    pngs: PathBuf,
    expected: Vec<usize>,
    edge: String,
    /// The edge lives as long as the test binary; it exits when its stdin closes (then).
    _edge: Child,
}

fn test_images() -> Dataset {
    data::load(&DataSource::FashionMnist, None).expect("Fashion-MNIST (scripts/setup.sh installs it)").test.take(FRAMES)
}

/// `frames` as a lossless grey FFV1/MKV video at 30 fps, encoded by ffmpeg from raw bytes.
fn encode_video(frames: &Dataset, out: &Path) {
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s"])
        .arg(format!("{0}x{0}", frames.size))
        .args(["-r", "30", "-i", "pipe:0", "-c:v", "ffv1", "-pix_fmt", "gray"])
        .arg(out)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg (apt-get install ffmpeg)");
    ffmpeg.stdin.take().expect("stdin").write_all(&frames.pixels).expect("write frames");
    assert!(ffmpeg.wait().expect("ffmpeg").success());
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("video-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let series = dir.join("series");
        tandem_actors::testkit::tiny_series_for(&series, "fashion-mnist").expect("tiny series");
        let images = test_images();
        let video = dir.join("fmnist-300.mkv");
        encode_video(&images, &video);
        // The same frames as PNG files, written by ffmpeg from the video.
        let pngs = dir.join("pngs");
        std::fs::create_dir_all(&pngs).expect("dir");
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&video)
            .arg(pngs.join("%04d.png"))
            .output()
            .expect("ffmpeg");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // `tandem eval` on the same 300 images, read back from its JSON.
        let eval_json = dir.join("eval.json");
        let out = Command::new(TANDEM)
            .args(["eval", "--limit", "300", "--model-dir"])
            .arg(series.join("m0"))
            .arg("--predictions-out")
            .arg(&eval_json)
            .output()
            .expect("tandem eval");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let eval: serde_json::Value = read_json(&eval_json).expect("eval json");
        let expected: Vec<usize> = serde_json::from_value(eval["classes"].clone()).expect("classes");
        assert_eq!(expected.len(), FRAMES);
        let distinct: std::collections::BTreeSet<_> = expected.iter().collect();
        assert!(distinct.len() >= 2, "the model must tell images apart for the comparison to mean something");

        let ready_file = dir.join("edge-ready.json");
        let mut edge = Command::new(TANDEM)
            .args(["edge", "--exit-on-stdin-eof", "--listen", "127.0.0.1:0", "--workers", "1", "--series"])
            .arg(&series)
            .arg("--ready-file")
            .arg(&ready_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem edge");
        // The edge writes its ready file before its first line (a wake-up; its text is not read).
        let mut first = String::new();
        let mut out = BufReader::new(edge.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("edge prints a line");
        // Keep reading (and discarding) so the edge never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let ready: EdgeReady = read_json(&ready_file).expect("ready file");
        Fixture { dir, series, video, pngs, expected, edge: ready.listen.to_string(), _edge: edge }
    })
}

/// A device config: queues large enough that no frame is dropped however slow this machine
/// is (the comparison wants every frame), a deadline that never fires.
fn config(f: &Fixture, name: &str, extra: &str) -> PathBuf {
    let path = f.dir.join(format!("{name}.toml"));
    let text = format!(
        "drain_ms = 20000\n{extra}\n[queues]\nfront = 1024\n\n[link]\ndeadline_ms = 600000\nconnect_wait_ms = 20000\n"
    );
    std::fs::write(&path, text).expect("config");
    path
}

fn device(f: &Fixture, name: &str, source: &str, extra_cfg: &str, args: &[&str]) -> (Output, PathBuf, PathBuf) {
    let predictions = f.dir.join(format!("{name}.jsonl"));
    let summary = f.dir.join(format!("{name}-summary.json"));
    let _ = std::fs::remove_file(&summary);
    let out = Command::new(TANDEM)
        .args(["device", "--edge", &f.edge, "--plan", "0:pool2:f32", "--source", source, "--series"])
        .arg(&f.series)
        .arg("--config")
        .arg(config(f, name, extra_cfg))
        .arg("--predictions")
        .arg(&predictions)
        .arg("--summary-out")
        .arg(&summary)
        .args(args)
        .output()
        .expect("run tandem device");
    (out, predictions, summary)
}

fn lines(path: &Path) -> Vec<PredictionLine> {
    std::fs::read_to_string(path)
        .expect("predictions file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every frame has one result line, in frame order, with eval's class.
fn assert_all_match(f: &Fixture, got: &[PredictionLine], pts: bool) {
    assert_eq!(got.len(), FRAMES);
    for (i, l) in got.iter().enumerate() {
        let PredictionLine::Result { frame_id, pts_s, top, plan, origin, .. } = l else {
            panic!("frame {i} was dropped: {l:?}");
        };
        assert_eq!(*frame_id, i as u64, "lines are in frame order");
        assert_eq!(usize::from(top[0].class), f.expected[i], "frame {i}: {l:?}");
        assert_eq!(top[0].name, tandem_models::data::FASHION_MNIST_CLASSES[f.expected[i]]);
        assert_eq!(top.len(), 3);
        assert_eq!((plan.model_id, plan.coding.as_str()), (0, "f32"));
        assert_eq!(*origin, tandem_actors::types::Origin::Edge, "frame {i} computed with the edge");
        if pts {
            let want = i as f64 / 30.0;
            assert!(pts_s.is_some_and(|p| (p - want).abs() < 1e-9), "frame {i}: pts {pts_s:?}, want {want}");
        } else {
            assert_eq!(*pts_s, None);
        }
    }
}

#[test]
fn a_lossless_video_gives_one_line_per_frame_with_evals_classes() {
    let f = fixture();
    // Played at the file's own rate (30 fps, from ffprobe), to its end.
    let (out, predictions, summary) = device(f, "video", &format!("video:{}", f.video.display()), "", &[]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let s = read_json::<RunReport>(&summary).expect("summary").summary;
    assert!(s.balanced() && s.captured == FRAMES as u64, "{s}");
    assert_eq!(s.predictions.map(|p| (p.written, p.dropped)), Some((FRAMES as u64, 0)));
    assert_all_match(f, &lines(&predictions), true);
}

#[test]
fn a_directory_of_pngs_gives_the_same_classes() {
    let f = fixture();
    let (out, predictions, summary) = device(f, "pngs", &format!("images:{}", f.pngs.display()), "", &["--fps", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = read_json::<RunReport>(&summary).expect("summary").summary;
    assert!(s.balanced() && s.captured == FRAMES as u64, "{s}");
    assert_all_match(f, &lines(&predictions), false);
}

#[test]
fn a_truncated_video_ends_with_an_error_and_balanced_accounting() {
    let f = fixture();
    let bytes = std::fs::read(&f.video).expect("video");
    let cut = f.dir.join("truncated.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let (out, predictions, summary) =
        device(f, "truncated", &format!("video:{}", cut.display()), "", &["--fps", "100"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a truncated video is an error");
    assert!(stderr.contains("truncated.mkv") && stderr.contains("truncated?"), "{stderr}");
    let s = read_json::<RunReport>(&summary).expect("the summary is written before the error").summary;
    assert!(s.balanced(), "{s}");
    assert!(s.captured > 0 && s.captured < FRAMES as u64, "{s}");
    assert!(s.source_error.as_deref().is_some_and(|e| e.contains("truncated?")), "{:?}", s.source_error);
    // The frames it did deliver are predicted, each with eval's class.
    let got = lines(&predictions);
    assert_eq!(got.len() as u64, s.captured);
    for (i, l) in got.iter().enumerate() {
        let PredictionLine::Result { top, .. } = l else { panic!("{l:?}") };
        assert_eq!(usize::from(top[0].class), f.expected[i]);
    }
}

#[test]
fn a_missing_or_corrupt_video_and_a_missing_ffmpeg_are_clear_errors() {
    let f = fixture();
    let missing = f.dir.join("no-such.mkv");
    let (out, _, _) = device(f, "missing", &format!("video:{}", missing.display()), "", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no-such.mkv") && stderr.contains("No such file"), "{stderr}");

    let corrupt = f.dir.join("corrupt.mkv");
    std::fs::write(&corrupt, b"\x1aE\xdf\xa3 this is not a matroska file at all").expect("write");
    let (out, _, _) = device(f, "corrupt", &format!("video:{}", corrupt.display()), "", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("corrupt.mkv") && stderr.contains("ffprobe failed"), "{stderr}");

    let absent = "[camera]\nffmpeg = \"/nonexistent/ffmpeg\"\nffprobe = \"/nonexistent/ffprobe\"\n";
    let (out, _, _) = device(f, "no-ffmpeg", &format!("video:{}", f.video.display()), absent, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent/ffprobe not found") && stderr.contains("`ffmpeg` package"), "{stderr}");
}

/// A stream over TCP (`video:tcp://…`, live): the test serves the MKV to each connection and
/// closes it, so the stream ends after 300 frames; the device reopens it (backoff, gap counted)
/// and goes on to its 450 frames.
#[test]
fn a_live_stream_that_ends_is_reopened_and_the_gap_counted() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bytes = std::fs::read(&f.video).expect("video");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let b = bytes.clone();
            std::thread::spawn(move || {
                // ffprobe hangs up after the header: a failed write is expected then.
                let _ = conn.write_all(&b);
            });
        }
    });
    let (out, predictions, summary) =
        device(f, "live", &format!("video:tcp://{addr}"), "", &["--frames", "450", "--fps", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = read_json::<RunReport>(&summary).expect("summary").summary;
    assert!(s.balanced() && s.captured == 450, "{s}");
    assert!(s.source_restarts >= 1 && s.source_gap_s > 0.0, "{s:?}");
    let got = lines(&predictions);
    assert_eq!(got.len(), 450);
    // After the restart the stream starts again from its first frame.
    for (i, l) in got.iter().enumerate().skip(300).take(100) {
        let PredictionLine::Result { top, .. } = l else { panic!("{l:?}") };
        assert_eq!(usize::from(top[0].class), f.expected[i - 300], "frame {i}");
    }
}

#[test]
fn a_sink_that_blocks_loses_counted_lines_and_the_pipeline_keeps_going() {
    let f = fixture();
    // A FIFO whose reader never reads: the writer fills the pipe (64 KiB) and blocks there.
    let fifo = f.dir.join("blocked.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        // Opening blocks until the device opens its end; then hold it, unread, until told.
        let file = std::fs::File::open(reader_path).expect("open fifo");
        let _ = hold_rx.recv();
        drop(file);
    });
    let frames = 600u64;
    let summary = f.dir.join("blocked-summary.json");
    let cfg = config(f, "blocked", "[predictions]\nqueue = 16\n");
    let out = Command::new(TANDEM)
        .args(["device", "--edge", &f.edge, "--plan", "0:pool2:f32", "--source", "fashion-mnist", "--series"])
        .arg(&f.series)
        .arg("--config")
        .arg(&cfg)
        .args(["--frames", &frames.to_string(), "--fps", "200", "--predictions"])
        .arg(&fifo)
        .arg("--summary-out")
        .arg(&summary)
        .output()
        .expect("run tandem device");
    let _ = hold_tx.send(());
    let _ = reader.join();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = read_json::<RunReport>(&summary).expect("summary").summary;
    assert!(s.balanced() && s.captured == frames, "{s}");
    // The pipeline never waited on the sink: nothing ran into the drain deadline.
    assert_eq!(s.dropped.get(&DropReason::Shutdown).copied().unwrap_or(0), 0, "{s}");
    assert_eq!(s.results_total() + s.dropped_total(), frames);
    let p = s.predictions.expect("predictions report");
    // Every line is either written or counted as dropped, and the full pipe dropped some.
    assert_eq!(p.written + p.dropped, frames, "{p:?}");
    assert!(p.dropped > 0 && p.written > 0, "{p:?}");
    // The pipe holds at most 64 KiB of ~300-byte lines, the queue 16 more.
    assert!(p.written < 400, "{p:?}");
}
