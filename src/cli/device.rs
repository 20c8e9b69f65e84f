//! `tandem device`: the device pipeline — camera → front inference → encoder → link → edge.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use prometheus::Registry;
use tandem_actors::camera::CameraSource;
use tandem_actors::config::ControllerConfig;
use tandem_actors::config::{self, DeviceConfig};
use tandem_actors::controller::{Controller, ControllerMetrics, ControllerSettings, PricedPlan, SwapEvent, SwapResult};
use tandem_actors::device::{CameraGate, Device, DeviceSettings, PredictionsSettings, Queues};
use tandem_actors::emulation::Slowdown;
use tandem_actors::http::{listen_addr, serve_with_floor};
use tandem_actors::link::LinkState;
use tandem_actors::metrics::DeviceMetrics;
use tandem_actors::plan::PlanSpec;
use tandem_actors::report::{ControllerReport, DeviceReady, RunReport, write_json};
use tandem_actors::source::{Fit, Frames, SourceSpec};
use tandem_models::checkpoint;
use tandem_models::series::Series;

/// Human output: stdout, or stderr while stdout carries the predictions (`--predictions -`).
macro_rules! say {
    ($to_stderr:expr, $($arg:tt)*) => {
        if $to_stderr { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// Edge address HOST:PORT [config `edge`].
    #[arg(long)]
    edge: Option<String>,
    /// Series directory [config `series`].
    #[arg(long)]
    series: Option<PathBuf>,
    /// Plan MODEL_ID:POINT[:CODING], e.g. 3:pool2:q8-lz4; POINT `end` runs everything locally
    /// [config `plan`].
    #[arg(long)]
    plan: Option<String>,
    /// TOML config (see configs/device.toml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Camera frames per second [config `camera.fps`; default: a video's own rate, else 30].
    #[arg(long)]
    fps: Option<f64>,
    /// Stop after N frames [config `camera.frames`].
    #[arg(long, conflicts_with = "duration")]
    frames: Option<u64>,
    /// Stop after capturing this long (from the camera's start, after the start-up gate): 500ms,
    /// 60s, 2m, 1h 30m — a unit is required [config `camera.duration_ms`].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Write the final summary (frame accounting, latencies, bytes, controller status and
    /// calibration) to FILE as JSON, atomically, before exiting.
    #[arg(long, value_name = "FILE")]
    summary_out: Option<PathBuf>,
    /// Once the pipeline runs (and /metrics listens), write where /metrics is served to FILE as
    /// JSON, atomically (how `tandem soak --faults` finds the device's metrics).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics [config `metrics`].
    #[arg(long)]
    metrics: Option<String>,
    /// Frame source [config `camera.source`]: `fashion-mnist[:test|:train]` (default),
    /// `cifar10[:test|:train]`, `synthetic`, `images:DIR` (PNG/JPEG/BMP in name order),
    /// `video:PATH_OR_URL` (anything ffmpeg opens: mp4/mkv/avi, rtsp://, http://) or
    /// `v4l2:/dev/videoN` (webcam). Frames are converted to the model card's input.
    #[arg(long, value_parser = parse_source, value_name = "URI")]
    source: Option<SourceSpec>,
    /// Start an image directory or a video file again at its end [config `camera.loop`].
    #[arg(long = "loop")]
    looped: bool,
    /// Fit frames of another shape to the model's square input: crop (default) or letterbox
    /// [config `camera.fit`].
    #[arg(long, value_parser = parse_fit)]
    fit: Option<Fit>,
    /// Write one JSON line per frame — its prediction, or its drop reason — to FILE (`-` =
    /// stdout; the human output then goes to stderr) [config `predictions.file`].
    #[arg(long, value_name = "FILE")]
    predictions: Option<String>,
    /// Data set directory [config `camera.data_dir`].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print a live status line on stderr every second.
    #[arg(long)]
    status: bool,
    /// Stop (camera first, then drain, then the summary) when standard input closes: how
    /// `tandem run` and `tandem soak` forward a signal, and how the device ends with its parent
    /// even when the parent is killed outright.
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
    /// Present the token in this file to the edge (one line, chmod 600) [config `link.token_file`].
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Speak TLS to the edge, trusting the CA certificate(s) in this PEM file [config `link.tls_ca`].
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Name the edge's certificate must carry; default: the host of --edge [config `link.tls_server_name`].
    #[arg(long)]
    tls_server_name: Option<String>,
    #[command(flatten)]
    adapt: AdaptArgs,
}

/// The adaptation flags shared by `tandem device` and `tandem run`; each overrides its config field.
#[derive(Args, Debug)]
pub struct AdaptArgs {
    /// Controller: device profile [config `controller.device_profile`].
    #[arg(long)]
    device_profile: Option<PathBuf>,
    /// Controller: edge profile [config `controller.edge_profile`].
    #[arg(long)]
    edge_profile: Option<PathBuf>,
    /// Emulate a device R times slower than this machine (the paper: 10): front inference and
    /// encoding take R times as long, and the controller prices the device profile R times
    /// slower [config `slowdown`].
    #[arg(long)]
    slowdown: Option<f64>,
    /// Controller: accuracy floor, 0.92 or loss=0.018 [config `controller.floor`]; at runtime:
    /// `curl -X POST 'http://METRICS/floor?0.92'`.
    #[arg(long)]
    floor: Option<String>,
    /// Run the configured plan only: no controller even if the config has one.
    #[arg(long)]
    fixed_plan: bool,
    /// Shape the link with this trace (configs/links/*.toml) [config `link.trace`].
    #[arg(long)]
    trace: Option<PathBuf>,
}

impl AdaptArgs {
    /// Apply the flags given on the command line to a device config.
    pub fn apply(&self, cfg: &mut DeviceConfig) {
        if self.fixed_plan {
            cfg.controller = None;
        } else if self.device_profile.is_some() || self.edge_profile.is_some() || self.floor.is_some() {
            let c = cfg.controller.get_or_insert_with(Default::default);
            if self.device_profile.is_some() {
                c.device_profile.clone_from(&self.device_profile);
            }
            if self.edge_profile.is_some() {
                c.edge_profile.clone_from(&self.edge_profile);
            }
            if let Some(f) = &self.floor {
                c.floor.clone_from(f);
            }
        }
        if self.trace.is_some() {
            cfg.link.trace.clone_from(&self.trace);
        }
        if self.slowdown.is_some() {
            cfg.slowdown = self.slowdown;
        }
    }
}

/// `500ms`, `60s`, `2m`, `1h 30m` (humantime); a bare number is refused, like every quantity on
/// the command line (`tandem_planner::units`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    tandem_planner::units::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_source(s: &str) -> Result<SourceSpec, String> {
    s.parse().map_err(|e: tandem_actors::source::BadSource| e.to_string())
}

fn parse_fit(s: &str) -> Result<Fit, String> {
    match s {
        "crop" => Ok(Fit::Crop),
        "letterbox" => Ok(Fit::Letterbox),
        other => Err(format!("unknown fit {other:?} (crop or letterbox)")),
    }
}

pub fn run(a: DeviceArgs) -> anyhow::Result<()> {
    let mut cfg: DeviceConfig = match &a.config {
        Some(p) => config::load(p)?,
        None => DeviceConfig::default(),
    };
    if a.edge.is_some() {
        cfg.edge = a.edge;
    }
    if a.series.is_some() {
        cfg.series = a.series;
    }
    if a.plan.is_some() {
        cfg.plan = a.plan;
    }
    if a.metrics.is_some() {
        cfg.metrics = a.metrics;
    }
    if let Some(v) = a.fps {
        cfg.camera.fps = Some(v);
    }
    if a.looped {
        cfg.camera.looped = true;
    }
    if let Some(f) = a.fit {
        cfg.camera.fit = f;
    }
    if a.predictions.is_some() {
        cfg.predictions.file.clone_from(&a.predictions);
    }
    if let Some(v) = a.frames {
        cfg.camera.frames = Some(v);
        cfg.camera.duration_ms = None;
    }
    if let Some(d) = a.duration {
        cfg.camera.duration_ms = Some(d.as_millis().max(1) as u64);
        cfg.camera.frames = None;
    }
    if let Some(v) = a.source {
        cfg.camera.source = v;
    }
    if a.data.is_some() {
        cfg.camera.data_dir = a.data;
    }
    if a.token_file.is_some() {
        cfg.link.token_file = a.token_file;
    }
    if a.tls_ca.is_some() {
        cfg.link.tls_ca = a.tls_ca;
    }
    if a.tls_server_name.is_some() {
        cfg.link.tls_server_name = a.tls_server_name;
    }
    a.adapt.apply(&mut cfg);
    cfg.validate()?;
    let edge = cfg.edge.clone().context("no edge address: pass --edge HOST:PORT or set `edge` in the config")?;
    let series_dir =
        cfg.series.clone().context("no series directory: pass --series DIR or set `series` in the config")?;
    let plan_text =
        cfg.plan.clone().context("no plan: pass --plan MODEL_ID:POINT[:CODING] or set `plan` in the config")?;
    let series =
        Series::load(&series_dir).with_context(|| format!("reading the series in {}", series_dir.display()))?;
    let plan = plan_text.parse::<PlanSpec>()?.resolve(&series)?;
    let slowdown = cfg.emulation()?;
    let planner =
        cfg.controller.as_ref().map(|c| load_planner(c, slowdown.factor(), &series, &series_dir)).transpose()?;
    // The input the models were trained on: every member of a series shares the original's.
    let card_member = series.original().map_or(plan.model_id, |m| m.id);
    let card_dir = series.dir_of(&series_dir, series.member(card_member)?);
    let input = checkpoint::read_card(&card_dir)
        .with_context(|| format!("reading the model card in {}", card_dir.display()))?
        .input();
    let to_stderr = cfg.predictions.file.as_deref() == Some("-");
    let settings = DeviceSettings {
        series: series_dir,
        plan,
        camera: cfg.camera_settings(None),
        queues: Queues {
            front: cfg.queues.front,
            encoder: cfg.queues.encoder,
            link: cfg.queues.link,
            ledger: cfg.queues.ledger,
            samples: if planner.is_some() { 256 } else { 0 },
        },
        link: cfg.link_settings(edge.clone())?,
        drain: cfg.drain(),
        connect_wait: Duration::from_millis(cfg.link.connect_wait_ms),
        keep_results: false,
        slowdown,
        engine: cfg.engine,
        engine_threads: cfg.engine_threads,
        predictions: cfg.predictions.file.as_deref().map(|f| PredictionsSettings {
            sink: f.parse().unwrap_or_else(|never| match never {}),
            queue: cfg.predictions.queue,
            top_k: cfg.predictions.top_k,
        }),
        camera_gate: None,
    };
    if slowdown != Slowdown::NONE {
        say!(
            to_stderr,
            "device emulated {}x slower than this machine (front inference and encoding stretched)",
            slowdown.factor()
        );
    }
    let duration = cfg.camera.duration_ms.map(Duration::from_millis);
    let rt = runtime()?;
    let mut settings = settings;
    let report = rt.block_on(async move {
        // The trace's clock starts here, inside the runtime.
        settings.link.shaper = cfg.shaper()?;
        let shaper = settings.link.shaper.clone();
        if let Some(s) = &settings.link.shaper {
            say!(to_stderr, "link shaped by {} ({} steps, delay {}+{} ms)", cfg.link.trace.as_deref().unwrap_or(std::path::Path::new("?")).display(), s.trace().steps.len(), s.trace().delay_ms, s.trace().return_delay_ms);
        }
        // The link token also guards the control routes (`POST /floor`) of the HTTP endpoint.
        let control_token = settings.link.token.clone();
        let registry = Registry::new();
        let metrics = DeviceMetrics::register(&registry)?;
        let frames = Frames::open(&cfg.camera.source, &cfg.camera.source_options(), &input)
            .await
            .with_context(|| format!("opening the source {}", cfg.camera.source))?;
        settings.camera = cfg.camera_settings(frames.native_fps());
        let fps = settings.camera.fps;
        say!(to_stderr, "device: plan {plan_text} (model {}, point {}, {}), edge {edge}, source {} at {fps} fps", plan.model_id, plan.point, plan.coding, cfg.camera.source);
        let restart = cfg.camera.source.is_live().then(|| (cfg.camera.source.clone(), cfg.camera.source_options()));
        // Adaptive: the first frame waits for the controller's first plan (bounded).
        let gate_opener = match (&planner, &cfg.controller) {
            (Some(_), Some(c)) if c.first_plan_wait_ms > 0 => {
                let (opener, gate) = CameraGate::new(Duration::from_millis(c.first_plan_wait_ms));
                settings.camera_gate = Some(gate);
                Some(opener)
            }
            _ => None,
        };
        let mut device = Device::start(settings, CameraSource { frames, input, restart }, metrics.clone()).await?;
        let mut controller = None;
        if let (Some(planner), Some(ccfg)) = (planner, &cfg.controller) {
            let cmetrics = ControllerMetrics::register(&registry)?;
            let feedback = device.take_feedback().context("controller feedback queues")?;
            let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel::<SwapEvent>(64);
            // Plans that cannot keep up with the camera would drop frames: the planner avoids them.
            let mut settings = ControllerSettings { frame_interval: (fps.is_finite() && fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps)), ..ccfg.settings() };
            if gate_opener.is_some() {
                settings = settings.gated();
            }
            let c = Controller::spawn(settings, planner, device.plan_handle(), device.link_state(), device.link_commands(), feedback, cmetrics, metrics.clone(), Some(ev_tx))?;
            if let Some(opener) = gate_opener {
                c.open_on_first_decision(opener);
            }
            say!(to_stderr, "controller: floor {}, hysteresis {} / {} ms, min dwell {} ms", ccfg.floor, ccfg.margin_frac, ccfg.min_gain_ms, ccfg.min_dwell_ms);
            let started = Instant::now();
            let trace_clock = shaper.clone();
            tokio::spawn(async move {
                while let Some(e) = ev_rx.recv().await {
                    let on_trace = trace_clock.as_ref().map(|s| format!(" [trace t={:.2}s, now {:.1} Mbit/s]", s.elapsed().as_secs_f64(), s.rate_bps_now() / 1e6)).unwrap_or_default();
                    let coding = e.plan.coding.as_deref().unwrap_or("local");
                    let what = match e.result {
                        SwapResult::Applied => "swap",
                        SwapResult::Failed => "swap FAILED (rolled back)",
                        SwapResult::LinkDown => "swap aborted (link down)",
                    };
                    say!(to_stderr,
                        "[{:>5.1}s] {what} epoch {}: model {} {} {coding}, predicted {:.1} ms — bandwidth {:.2} Mbit/s (took {:.0} ms){on_trace}",
                        started.elapsed().as_secs_f64(), e.epoch, e.plan.model_id, e.plan.point_name, e.plan.predicted.total_ms, e.bandwidth_bps / 1e6, e.took.as_secs_f64() * 1e3
                    );
                    // Why: what the planner weighed at that estimate.
                    let why: Vec<String> = e.ranked.iter().enumerate().map(|(i, r)| format!("#{} {}", i + 1, PricedPlan::from(r))).collect();
                    say!(to_stderr, "         planner's best: {}", why.join(" | "));
                }
            });
            controller = Some(c);
        }
        let http = match &cfg.metrics {
            Some(m) => Some(serve_with_floor(resolve(&listen_addr(m)).await?, registry.clone(), controller.as_ref().map(|c| c.floor_setter()), control_token.clone()).await?),
            None => None,
        };
        if let Some(path) = &a.ready_file {
            write_json(path, &DeviceReady { metrics: http.as_ref().map(|h| h.addr) })?;
        }
        if let Some(h) = &http {
            say!(to_stderr, "metrics on http://{}/metrics{}", h.addr, if controller.is_some() { format!(", accuracy floor: POST http://{}/floor?0.92", h.addr) } else { String::new() });
        }
        let stopper = device.stopper();
        let mut capturing = device.capturing();
        let stdin_closed = a.stop_on_stdin_eof.then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                // Read to EOF; the parent closes our stdin when it wants us to stop.
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = tx.send(());
            });
            rx
        });
        tokio::spawn(async move {
            let parent = async {
                match stdin_closed {
                    Some(rx) => {
                        let _ = rx.await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let asked = async {
                tokio::select! {
                    _ = terminated() => {}
                    _ = parent => {}
                }
                tracing::info!("stopping: camera first, then the pipeline drains");
            };
            match duration {
                // The duration is of capture: it starts when the camera does (after the gate).
                Some(d) => tokio::select! {
                    _ = async {
                        let _ = capturing.wait_for(|c| *c).await;
                        tokio::time::sleep(d).await
                    } => {}
                    _ = asked => {}
                },
                None => asked.await,
            }
            stopper.stop();
        });
        if a.status {
            let snapshot = device.snapshot();
            let link = device.link_state();
            let plan = device.plan().subscribe();
            let (restarts, gap) = (metrics.source_restarts.clone(), metrics.source_gap_seconds.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let tty = std::io::stderr().is_terminal();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let c = *snapshot.borrow();
                    let p = *plan.borrow();
                    let state = match *link.borrow() {
                        LinkState::Up { .. } => "up".to_string(),
                        LinkState::Rejected { code } => format!("REJECTED by the edge: {code:?} (local)"),
                        LinkState::Connecting | LinkState::Down => "DOWN (local)".to_string(),
                    };
                    let source = match restarts.get() {
                        0 => String::new(),
                        n => format!(", source restarted {n}x (gap {:.1} s)", gap.get()),
                    };
                    let line = format!(
                        "[{:>5.1}s] results {} (edge {}, local {}), dropped {}, link {state}, plan epoch {} {}{source}",
                        started.elapsed().as_secs_f64(), c.edge + c.local, c.edge, c.local, c.dropped, p.epoch, p.choice
                    );
                    if tty { eprint!("\r{line}\x1b[K") } else { eprintln!("{line}") }
                }
            });
        }
        let summary = device.finish().await?;
        let mut report = RunReport { summary, controller: None };
        if let Some(c) = controller {
            report.controller = Some(ControllerReport::from(&*c.status().borrow()));
            c.stop().await;
        }
        if let Some(h) = http {
            h.stop();
        }
        anyhow::Ok(report)
    })?;
    if a.status && std::io::stderr().is_terminal() {
        eprintln!();
    }
    if let Some(path) = &a.summary_out {
        write_json(path, &report)?;
    }
    say!(to_stderr, "{report}");
    anyhow::ensure!(report.summary.balanced(), "the accounting does not balance");
    if let Some(e) = &report.summary.source_error {
        anyhow::bail!("the source failed: {e}");
    }
    Ok(())
}

/// The tokio runtime of the networked subcommands: two workers (the machines are small; the
/// inference threads are separate OS threads).
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Resolve `host:port` to one socket address.
pub(super) async fn resolve(addr: &str) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub(super) async fn terminated() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The controller's planner from its profiles (device profile slowed by the emulated `slowdown`, so
/// that prices match the runtime). The
/// profiles must describe this series — same model ids, names and points — or every plan the
/// controller picked would name models the edge cannot serve.
fn load_planner(
    c: &ControllerConfig,
    slowdown: f64,
    series: &Series,
    series_dir: &std::path::Path,
) -> anyhow::Result<tandem_planner::Planner> {
    let read = tandem_lab::profiles::read_profile;
    let (Some(dp), Some(ep)) = (&c.device_profile, &c.edge_profile) else {
        anyhow::bail!("the controller needs --device-profile and --edge-profile")
    };
    let mut device = read(dp)?;
    if slowdown != 1.0 {
        device = device.slowed(slowdown)?;
    }
    let edge = read(ep)?;
    let profiles = tandem_planner::combine(&device, &edge)?;
    for m in profiles.models() {
        let member = series.member(m.model_id).ok();
        anyhow::ensure!(
            member.is_some_and(|s| s.name == m.name && s.elements.len() == m.points.len()),
            "profile {} describes model {} ({:?}), which series {} does not hold with that name and {} points: re-run `tandem profile` on this series",
            dp.display(),
            m.model_id,
            m.name,
            series_dir.display(),
            m.points.len()
        );
    }
    Ok(tandem_planner::Planner::new(profiles, c.settings().hysteresis)?)
}
