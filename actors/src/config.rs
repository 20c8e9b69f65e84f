//! The TOML configs of both roles (`configs/edge.toml`, `configs/device.toml`, and the demo's
//! `[edge]` + `[device]` sections). Every field is documented and has a named default; unknown
//! fields are refused; [`EdgeConfig::validate`] / [`DeviceConfig::validate`] check ranges and
//! cross-field rules after parsing. Durations are `*_ms` fields: whole milliseconds (`2000`) or a
//! duration string (`"2s"`, `"250ms"`), see [`crate::millis`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tandem_codec::control::MAX_TOP_K;
use tandem_codec::{Limits, ResultSpec};

use crate::camera::{CameraSettings, WhenFull};
use crate::edge::EdgeSettings;
use crate::error::ActorError;
use crate::link::LinkSettings;
use crate::source::{Fit, SourceOptions, SourceSpec};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), ActorError> {
    if ok { Ok(()) } else { Err(ActorError::Config(msg())) }
}

/// Read and parse a TOML file into `T`.
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ActorError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ActorError::Config(format!("reading {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ActorError::Config(format!("{}: {e}", path.display())))
}

/// `configs/edge.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Address to accept devices on. Default `127.0.0.1:7878`.
    pub listen: String,
    /// Series directory (`series.toml` + model dirs). Required here or as `--series`.
    pub series: Option<PathBuf>,
    /// Address to serve `/metrics` on; unset = no metrics endpoint.
    pub metrics: Option<String>,
    /// Authenticated devices served at once; more are rejected (`Reject { Busy }`, after their
    /// handshake). Default 16.
    pub max_connections: usize,
    /// Connections whose handshake (TLS + Hello) is in progress, over all peers; more are closed
    /// at accept (`handshakes_full`). Default 64.
    pub max_handshakes: usize,
    /// Handshakes in progress from one peer address; more are closed at accept (`peer_limit`).
    /// Default 4.
    pub max_handshakes_per_peer: usize,
    /// Wrong or missing tokens in a row that ban an address (its connections are closed at
    /// accept, `banned`); 0 = never ban. Default 3.
    pub bad_token_strikes: u32,
    /// First ban; each further ban of the same address doubles, up to `ban_max_ms`. Default 1000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub ban_min_ms: u64,
    /// Longest ban. Default 300000 (5 min).
    #[serde(deserialize_with = "crate::millis::de")]
    pub ban_max_ms: u64,
    /// Inference threads. Default 2.
    pub workers: usize,
    /// Tensor frames queued or in inference over all devices (full: the reading connection
    /// waits, pushing back over TCP). Default 8.
    pub queue: usize,
    /// Replies queued per connection (full: the reply is dropped and counted). Default 64.
    pub outbox: usize,
    /// Close a connection silent for this long. Default 30000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub idle_timeout_ms: u64,
    /// Time a new connection has, from accept, to finish TLS (when configured) and say Hello.
    /// Default 1000: a device on any real link needs a few round trips; a stranger holding
    /// connections open gets its pending slot back within a second.
    #[serde(deserialize_with = "crate::millis::de")]
    pub handshake_timeout_ms: u64,
    /// Timeout for writing one reply. Default 5000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub write_timeout_ms: u64,
    /// Largest frame payload accepted, bytes. Default 16 MiB.
    pub max_payload_bytes: u64,
    /// File holding the shared token devices must present (one line; keep it `chmod 600`).
    /// Unset = no authentication. A file rather than a value so the secret is never on a
    /// command line.
    pub token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM, leaf first). Set together with `tls_key`; unset = plain TCP.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Inference engine of the tails: `auto` (ONNX Runtime where its library loads, else burn
    /// with a warning), `onnxruntime` (refuse to start without it) or `burn`. Default `auto`.
    pub engine: tandem_engine::Choice,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: "127.0.0.1:7878".into(),
            series: None,
            metrics: None,
            max_connections: 16,
            max_handshakes: 64,
            max_handshakes_per_peer: 4,
            bad_token_strikes: 3,
            ban_min_ms: 1_000,
            ban_max_ms: 300_000,
            workers: 2,
            queue: 8,
            outbox: 64,
            idle_timeout_ms: 30_000,
            handshake_timeout_ms: 1_000,
            write_timeout_ms: 5_000,
            max_payload_bytes: 16 << 20,
            token_file: None,
            tls_cert: None,
            tls_key: None,
            engine: tandem_engine::Choice::Auto,
        }
    }
}

impl EdgeConfig {
    /// Range checks.
    pub fn validate(&self) -> Result<(), ActorError> {
        check(self.max_connections >= 1, || "max_connections must be at least 1".into())?;
        check(self.max_handshakes >= 1 && self.max_handshakes_per_peer >= 1, || {
            "max_handshakes and max_handshakes_per_peer must be at least 1".into()
        })?;
        check(self.max_handshakes_per_peer <= self.max_handshakes, || {
            "max_handshakes_per_peer cannot exceed max_handshakes".into()
        })?;
        check(self.ban_min_ms >= 1 && self.ban_min_ms <= self.ban_max_ms, || {
            "ban_min_ms must be at least 1 and at most ban_max_ms".into()
        })?;
        check((1..=64).contains(&self.workers), || format!("workers must be in 1..=64, got {}", self.workers))?;
        check(self.queue >= 1, || "queue must be at least 1".into())?;
        check(self.outbox >= 1, || "outbox must be at least 1".into())?;
        check(self.idle_timeout_ms >= 100, || "idle_timeout_ms must be at least 100".into())?;
        check(self.handshake_timeout_ms >= 10, || "handshake_timeout_ms must be at least 10".into())?;
        check(self.write_timeout_ms >= 10, || "write_timeout_ms must be at least 10".into())?;
        check((1024..=1 << 30).contains(&self.max_payload_bytes), || {
            "max_payload_bytes must be in 1 KiB..=1 GiB".into()
        })?;
        check(self.tls_cert.is_some() == self.tls_key.is_some(), || "tls_cert and tls_key must be set together".into())
    }

    /// Runtime settings, with the series directory resolved; reads the token and TLS files.
    pub fn settings(&self, series: PathBuf) -> Result<EdgeSettings, ActorError> {
        let token = self.token_file.as_deref().map(crate::security::Token::load).transpose()?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::security::ServerTls::load(cert, key)?),
            (None, None) => None,
            _ => return Err(ActorError::Config("tls_cert and tls_key must be set together".into())),
        };
        Ok(EdgeSettings {
            series,
            max_connections: self.max_connections,
            admission: crate::edge::AdmissionRules {
                pending_total: self.max_handshakes,
                pending_per_peer: self.max_handshakes_per_peer,
                strikes: self.bad_token_strikes,
                ban_min: ms(self.ban_min_ms),
                ban_max: ms(self.ban_max_ms),
            },
            workers: self.workers,
            queue: self.queue,
            outbox: self.outbox,
            idle_timeout: ms(self.idle_timeout_ms),
            handshake_timeout: ms(self.handshake_timeout_ms),
            write_timeout: ms(self.write_timeout_ms),
            limits: Limits { max_payload_bytes: self.max_payload_bytes, ..Limits::default() },
            token,
            tls,
            engine: self.engine,
        })
    }
}

/// `[camera]` of the device config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// Frame source URI ([`crate::source`]): `fashion-mnist[:test|:train]` (default),
    /// `cifar10[:test|:train]`, `synthetic`, `images:DIR`, `video:PATH_OR_URL` (anything ffmpeg
    /// opens: files, `rtsp://`, `http://`) or `v4l2:/dev/videoN`.
    pub source: SourceSpec,
    /// Data set directory; default Debian's `/usr/share/datasets/fashion-mnist`.
    pub data_dir: Option<PathBuf>,
    /// Frames per second. Unset: a video's own rate, else 30.
    pub fps: Option<f64>,
    /// Stop after this many frames; unset = run until `duration_ms`, the end of a file source,
    /// or Ctrl-C.
    pub frames: Option<u64>,
    /// Stop after capturing this long (counted from the camera's start, after the start-up
    /// gate); unset = run until `frames`, the end of a file source, or Ctrl-C.
    #[serde(deserialize_with = "crate::millis::de_opt")]
    pub duration_ms: Option<u64>,
    /// `drop-oldest` (default) or `drop-newest`: what the camera drops when front inference is busy.
    pub when_full: WhenFull,
    /// Start an image directory or a video file again at its end. Default false (data sets
    /// always loop).
    #[serde(rename = "loop")]
    pub looped: bool,
    /// `crop` (default: scale the short side, cut the middle) or `letterbox` (scale the long
    /// side, pad black): how frames of another shape are fitted to the model's square input.
    pub fit: Fit,
    /// The ffmpeg binary for `video:` and `v4l2:` sources. Default `ffmpeg` (on `PATH`;
    /// Debian's `ffmpeg` package).
    pub ffmpeg: PathBuf,
    /// The ffprobe binary (same package). Default `ffprobe`.
    pub ffprobe: PathBuf,
}

/// The default camera rate when neither the config, the command line nor the source gives one.
pub const DEFAULT_FPS: f64 = 30.0;

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            source: SourceSpec::default(),
            data_dir: None,
            fps: None,
            frames: None,
            duration_ms: None,
            when_full: WhenFull::DropOldest,
            looped: false,
            fit: Fit::Crop,
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
        }
    }
}

impl CameraConfig {
    /// The configured rate, or [`DEFAULT_FPS`].
    pub fn fps_or_default(&self) -> f64 {
        self.fps.unwrap_or(DEFAULT_FPS)
    }

    /// How to open the source.
    pub fn source_options(&self) -> SourceOptions {
        SourceOptions {
            data_dir: self.data_dir.clone(),
            looped: self.looped,
            fit: self.fit,
            ffmpeg: self.ffmpeg.clone(),
            ffprobe: self.ffprobe.clone(),
            fps: self.fps,
        }
    }
}

/// `[predictions]` of the device config: one JSON line per frame ([`crate::predictions`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionsConfig {
    /// File to write (`-` = stdout; a FIFO works). Unset = no predictions file.
    pub file: Option<String>,
    /// Lines queued for the writer; when full (the sink is slower than the pipeline) a line is
    /// dropped and counted in `tandem_predictions_dropped_total`. Default 1024.
    pub queue: usize,
    /// Classes per result line, most probable first. Default 3.
    pub top_k: usize,
}

impl Default for PredictionsConfig {
    fn default() -> Self {
        PredictionsConfig { file: None, queue: 1024, top_k: 3 }
    }
}

/// `[queues]` of the device config: capacities of the pipeline's bounded queues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// camera → front (full: the camera drops, `camera_overrun`). Default 1.
    pub front: usize,
    /// front → encoder (full: front waits). Default 2.
    pub encoder: usize,
    /// encoder → link (full: encoder waits). Default 2.
    pub link: usize,
    /// outcomes → ledger (full: the stage waits). Default 1024.
    pub ledger: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { front: 1, encoder: 2, link: 2, ledger: 1024 }
    }
}

/// `[link]` of the device config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// Frames sent and not yet answered, at most (full: the link stops reading its queue). Default 4.
    pub max_in_flight: usize,
    /// Drop a frame with no result this long after capture (`deadline`). Default 2000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub deadline_ms: u64,
    /// TCP connect timeout. Default 1000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub connect_timeout_ms: u64,
    /// Hello → HelloAck timeout. Default 2000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub handshake_timeout_ms: u64,
    /// Timeout for writing one frame. Default 2000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub write_timeout_ms: u64,
    /// First reconnect delay; doubles up to `backoff_max_ms`, each delay plus a random jitter of up
    /// to its own length (never above `backoff_max_ms`). Default 100.
    #[serde(deserialize_with = "crate::millis::de")]
    pub backoff_min_ms: u64,
    /// Largest reconnect delay. Default 1500: an edge back after an outage is reached again within
    /// 2 s (the reliability target), at one connection attempt per 1.5 s while it is down.
    #[serde(deserialize_with = "crate::millis::de")]
    pub backoff_max_ms: u64,
    /// Ping after this long without sending (must be below the edge's idle timeout). Default 5000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub keepalive_ms: u64,
    /// At start, wait this long for the session before the camera starts (frames meanwhile would
    /// run locally). Default 2000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub connect_wait_ms: u64,
    /// Shape the link in-process with this bandwidth trace (`configs/links/*.toml`: token
    /// bucket + one-way delays; see `tandem_actors::link::shaper`). Unset = the bare socket.
    pub trace: Option<PathBuf>,
    /// File holding the token to present to the edge (one line). Unset = none.
    pub token_file: Option<PathBuf>,
    /// Speak TLS to the edge, trusting the CA certificate(s) in this PEM file. Unset = plain TCP.
    pub tls_ca: Option<PathBuf>,
    /// The name the edge's certificate must carry (DNS name or IP). Default: the host part of
    /// `edge`.
    pub tls_server_name: Option<String>,
    /// Classes in each edge result, most probable first, with softmax probabilities computed
    /// at the edge (1..=32). The device asks for at least `predictions.top_k` when it writes
    /// predictions. Default 3.
    pub result_top_k: u8,
    /// Ask the edge for every logit in each result too (10 classes: +40 B a result; 1000: +4 KB).
    /// Default false.
    pub result_logits: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            max_in_flight: 4,
            deadline_ms: 2_000,
            connect_timeout_ms: 1_000,
            handshake_timeout_ms: 2_000,
            write_timeout_ms: 2_000,
            backoff_min_ms: 100,
            backoff_max_ms: 1_500,
            keepalive_ms: 5_000,
            connect_wait_ms: 2_000,
            trace: None,
            token_file: None,
            tls_ca: None,
            tls_server_name: None,
            result_top_k: ResultSpec::default().top_k,
            result_logits: ResultSpec::default().logits,
        }
    }
}

/// `[controller]` of the device config: present = adaptive (the controller picks and swaps
/// plans; `plan` is only the first one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Device profile (`tandem profile --role device`). Required.
    pub device_profile: Option<PathBuf>,
    /// Edge profile (`tandem profile --role edge`). Required.
    pub edge_profile: Option<PathBuf>,
    /// Accuracy floor: `"loss=0.018"` (at most 1.8 points below the original; the default) or
    /// `"0.92"` (absolute). Changeable at runtime: `POST /floor?0.92` on the metrics server.
    pub floor: String,
    /// Planner hysteresis: relative gain needed to switch. Default 0.10.
    pub margin_frac: f64,
    /// Planner hysteresis: absolute gain needed to switch, ms. Default 1.0.
    pub min_gain_ms: f64,
    /// No second swap within this long of a swap. Default 2000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub min_dwell_ms: u64,
    /// Re-plan period. Default 50.
    #[serde(deserialize_with = "crate::millis::de")]
    pub tick_ms: u64,
    /// Bytes below which a frame's transfer is no bandwidth sample. Default 2048 (the
    /// estimator's own default, 16 KiB, is larger than most split tensors).
    pub min_sample_bytes: u64,
    /// Probe when no bandwidth sample came for this long (small frames leave a fast link
    /// unobserved). Default 3000. A drop shows sooner: small frames whose round trip grows
    /// trigger a probe at once (the estimator's delay trigger), so this only bounds how late a
    /// rise is seen, and what probes cost a slow link.
    #[serde(deserialize_with = "crate::millis::de")]
    pub probe_every_ms: u64,
    /// Probe burst size cap, bytes. Default 8192.
    pub probe_burst_bytes: u64,
    /// Bursts per probe. Default 2.
    pub probe_count: u32,
    /// Price plans with what finished frames measured (measured ÷ profiled time of device
    /// inference, encoding and edge compute) instead of the profiles alone. Default true.
    pub calibrate: bool,
    /// Hold the camera until the controller has measured the link and decided its first plan,
    /// at most this long; then the first frame already runs that plan. 0 = start at once with
    /// the configured `plan`. Default 3000.
    #[serde(deserialize_with = "crate::millis::de")]
    pub first_plan_wait_ms: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            device_profile: None,
            edge_profile: None,
            floor: "loss=0.018".into(),
            margin_frac: 0.10,
            min_gain_ms: 1.0,
            min_dwell_ms: 2_000,
            tick_ms: 50,
            min_sample_bytes: 2048,
            probe_every_ms: 3000,
            probe_burst_bytes: 8192,
            probe_count: 2,
            calibrate: true,
            first_plan_wait_ms: 3_000,
        }
    }
}

impl ControllerConfig {
    /// Range checks.
    pub fn validate(&self) -> Result<(), ActorError> {
        check(self.device_profile.is_some() && self.edge_profile.is_some(), || {
            "controller needs device_profile and edge_profile".into()
        })?;
        check(crate::controller::policy::parse_floor(&self.floor).is_some(), || {
            format!("controller.floor {:?}: expected 0.92 or loss=0.018", self.floor)
        })?;
        check(
            self.margin_frac.is_finite()
                && self.margin_frac >= 0.0
                && self.min_gain_ms.is_finite()
                && self.min_gain_ms >= 0.0,
            || "controller margins must be non-negative".into(),
        )?;
        check(self.tick_ms >= 5, || "controller.tick_ms must be at least 5".into())?;
        check(self.min_sample_bytes >= 64, || "controller.min_sample_bytes must be at least 64".into())?;
        check(self.probe_every_ms >= 50 && (1..=16).contains(&self.probe_count), || {
            "controller.probe_every_ms must be >= 50 and probe_count in 1..=16".into()
        })?;
        check(self.probe_burst_bytes >= self.min_sample_bytes, || {
            "controller.probe_burst_bytes must be at least min_sample_bytes".into()
        })
    }

    /// Runtime settings.
    pub fn settings(&self) -> crate::controller::ControllerSettings {
        let d = crate::controller::ControllerSettings::default();
        crate::controller::ControllerSettings {
            estimator: tandem_bandwidth_probe::Config {
                min_sample_bytes: self.min_sample_bytes,
                stale_after_ms: self.probe_every_ms,
                probe_count: self.probe_count,
                probe_initial_bytes: self.probe_burst_bytes,
                ..d.estimator.clone()
            },
            max_probe_burst: self.probe_burst_bytes,
            hysteresis: tandem_planner::Hysteresis { margin_frac: self.margin_frac, min_gain_ms: self.min_gain_ms },
            floor: crate::controller::policy::parse_floor(&self.floor).unwrap_or(d.floor),
            tick: ms(self.tick_ms),
            min_dwell: ms(self.min_dwell_ms),
            calibrate: self.calibrate,
            ..d
        }
    }
}

/// `configs/device.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Edge address `host:port`. Required here or as `--edge`.
    pub edge: Option<String>,
    /// Series directory. Required here or as `--series`.
    pub series: Option<PathBuf>,
    /// Plan `MODEL_ID:POINT[:CODING]`, e.g. `3:pool2:q8-lz4`. Required here or as `--plan`.
    pub plan: Option<String>,
    /// Name sent to the edge in Hello. Default `device`.
    pub device_id: Option<String>,
    /// Address to serve `/metrics` on; unset = none.
    pub metrics: Option<String>,
    /// Drain deadline at shutdown: frames still in the pipeline after it are dropped as
    /// `shutdown`. Default 3000.
    #[serde(deserialize_with = "crate::millis::de_opt")]
    pub drain_ms: Option<u64>,
    /// Emulate a device R times slower than this machine, as the paper does: front inference
    /// and encoding are stretched to R times their measured time, and the controller prices the
    /// device profile R times slower (`Profile::slowed`). Unset = 1 (this machine as it is).
    pub slowdown: Option<f64>,
    /// Frame source and rate.
    pub camera: CameraConfig,
    /// Predictions out.
    pub predictions: PredictionsConfig,
    /// Queue capacities.
    pub queues: QueueConfig,
    /// Session with the edge.
    pub link: LinkConfig,
    /// Adaptation; unset = the fixed `plan`.
    pub controller: Option<ControllerConfig>,
    /// Inference engine of the heads (see [`EdgeConfig::engine`]). Default `auto`.
    pub engine: tandem_engine::Choice,
    /// Intra-op threads of the heads' engine (ONNX Runtime); unset = every core of this
    /// machine. With `slowdown`, the emulated device is R times slower than this many cores, so
    /// a one-core board class is emulated with `engine_threads = 1` (and its profile made with
    /// `tandem profile --threads 1`).
    pub engine_threads: Option<usize>,
}

impl DeviceConfig {
    /// Range checks and cross-field rules (run after CLI overrides are applied).
    pub fn validate(&self) -> Result<(), ActorError> {
        let c = &self.camera;
        check(c.fps.is_none_or(|f| f.is_finite() && f > 0.0 && f <= 10_000.0), || {
            format!("camera.fps must be in (0, 10000], got {:?}", c.fps)
        })?;
        check(self.engine_threads.is_none_or(|t| (1..=256).contains(&t)), || {
            format!("engine_threads must be in 1..=256, got {:?}", self.engine_threads)
        })?;
        let p = &self.predictions;
        check(p.queue >= 1 && p.top_k >= 1, || "predictions.queue and predictions.top_k must be at least 1".into())?;
        check(c.frames != Some(0), || "camera.frames must be at least 1".into())?;
        check(c.duration_ms != Some(0), || "camera.duration_ms must be at least 1".into())?;
        let q = &self.queues;
        check(q.front >= 1 && q.encoder >= 1 && q.link >= 1, || "queue capacities must be at least 1".into())?;
        check(q.ledger >= 16, || "queues.ledger must be at least 16".into())?;
        let l = &self.link;
        check((1..=MAX_TOP_K).contains(&usize::from(l.result_top_k)), || {
            format!("link.result_top_k must be in 1..={MAX_TOP_K}, got {}", l.result_top_k)
        })?;
        check(p.file.is_none() || p.top_k <= MAX_TOP_K || l.result_logits, || {
            format!(
                "predictions.top_k = {} exceeds the {MAX_TOP_K} classes an edge result carries: set link.result_logits = true",
                p.top_k
            )
        })?;
        check((1..=1024).contains(&l.max_in_flight), || "link.max_in_flight must be in 1..=1024".into())?;
        check(l.deadline_ms >= 10, || "link.deadline_ms must be at least 10".into())?;
        check(l.connect_timeout_ms >= 10 && l.handshake_timeout_ms >= 10 && l.write_timeout_ms >= 10, || {
            "link timeouts must be at least 10 ms".into()
        })?;
        check(l.backoff_min_ms >= 1 && l.backoff_min_ms <= l.backoff_max_ms, || {
            "link.backoff_min_ms must be in 1..=backoff_max_ms".into()
        })?;
        check(l.keepalive_ms >= 100, || "link.keepalive_ms must be at least 100".into())?;
        check(l.tls_server_name.is_none() || l.tls_ca.is_some(), || "link.tls_server_name needs link.tls_ca".into())?;
        check(self.drain_ms.is_none_or(|d| d >= 10), || "drain_ms must be at least 10".into())?;
        self.emulation()?;
        if let Some(c) = &self.controller {
            c.validate()?;
        }
        check(self.device_id.as_ref().is_none_or(|d| d.len() <= tandem_codec::control::MAX_DEVICE_ID_LEN), || {
            "device_id too long (64 bytes at most)".into()
        })
    }

    /// Camera settings; `native_fps` is the source's own rate, used when `camera.fps` is unset.
    pub fn camera_settings(&self, native_fps: Option<f64>) -> CameraSettings {
        let fps = self.camera.fps.or(native_fps.filter(|f| f.is_finite() && *f > 0.0)).unwrap_or(DEFAULT_FPS);
        CameraSettings { fps, frames: self.camera.frames, when_full: self.camera.when_full }
    }

    /// Link settings for the edge at `edge`; reads the token and TLS CA files.
    pub fn link_settings(&self, edge: String) -> Result<LinkSettings, ActorError> {
        let l = &self.link;
        let token = l.token_file.as_deref().map(crate::security::Token::load).transpose()?;
        let tls = match &l.tls_ca {
            Some(ca) => Some(crate::security::ClientTls::load(
                ca,
                l.tls_server_name.as_deref().unwrap_or(crate::security::host_of(&edge)),
            )?),
            None => None,
        };
        Ok(LinkSettings {
            edge,
            device_id: self.device_id.clone().unwrap_or_else(|| "device".into()),
            connect_timeout: ms(l.connect_timeout_ms),
            handshake_timeout: ms(l.handshake_timeout_ms),
            write_timeout: ms(l.write_timeout_ms),
            backoff_min: ms(l.backoff_min_ms),
            backoff_max: ms(l.backoff_max_ms),
            max_in_flight: l.max_in_flight,
            deadline: ms(l.deadline_ms),
            keepalive: ms(l.keepalive_ms),
            limits: Limits::default(),
            shaper: None,
            token,
            tls,
            results: self.result_spec(),
        })
    }

    /// What the device asks the edge's results to carry: `link.result_top_k` classes, or
    /// `predictions.top_k` when it writes predictions and that is more (at most
    /// [`MAX_TOP_K`]), and the logits when `link.result_logits` is set.
    pub fn result_spec(&self) -> ResultSpec {
        let wanted = if self.predictions.file.is_some() { self.predictions.top_k } else { 0 };
        let top_k = usize::from(self.link.result_top_k).max(wanted).clamp(1, MAX_TOP_K);
        // Clamped to MAX_TOP_K = 32, so it fits a u8.
        ResultSpec { top_k: top_k as u8, logits: self.link.result_logits }
    }

    /// The link trace, loaded and validated (`None` when `link.trace` is unset). The trace's
    /// clock starts when the returned [`crate::link::Shaper`] is made: call this at start-up.
    pub fn shaper(&self) -> Result<Option<crate::link::Shaper>, ActorError> {
        self.link.trace.as_deref().map(|p| crate::link::Trace::load(p).map(crate::link::Shaper::new)).transpose()
    }

    /// The emulated device speed (`slowdown`, checked).
    pub fn emulation(&self) -> Result<crate::emulation::Slowdown, ActorError> {
        self.slowdown.map_or(Ok(crate::emulation::Slowdown::NONE), crate::emulation::Slowdown::new)
    }

    /// Drain deadline.
    pub fn drain(&self) -> Duration {
        ms(self.drain_ms.unwrap_or(3_000))
    }
}

/// `configs/demo.toml`: both roles for `tandem run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Series directory for both roles (overrides theirs); `--series` overrides this.
    pub series: Option<PathBuf>,
    /// The edge process.
    pub edge: EdgeConfig,
    /// The device process (`edge` is filled in with the edge's address).
    pub device: DeviceConfig,
}

impl DemoConfig {
    /// Both sections' checks.
    pub fn validate(&self) -> Result<(), ActorError> {
        self.edge.validate()?;
        self.device.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused_and_defaults_apply() {
        let d: DeviceConfig = toml::from_str("plan = \"0:pool1:q8-lz4\"\n[camera]\nfps = 10.0\n").unwrap();
        assert_eq!(d.camera.fps, Some(10.0));
        assert_eq!(d.camera_settings(Some(25.0)).fps, 10.0, "the config's rate wins over the source's");
        assert_eq!(DeviceConfig::default().camera_settings(Some(25.0)).fps, 25.0);
        assert_eq!(DeviceConfig::default().camera_settings(None).fps, DEFAULT_FPS);
        let v: DeviceConfig = toml::from_str(
            "[camera]\nsource = \"video:a.mkv\"\nloop = true\nfit = \"letterbox\"\n[predictions]\nfile = \"-\"\n",
        )
        .unwrap();
        assert_eq!(v.camera.source, SourceSpec::Video { input: "a.mkv".into() });
        assert!(v.camera.looped);
        assert!(toml::from_str::<DeviceConfig>("[camera]\nsource = \"webcam\"\n").is_err());
        assert_eq!(d.queues, QueueConfig::default());
        d.validate().unwrap();
        assert!(toml::from_str::<DeviceConfig>("[camera]\nfsp = 10.0\n").is_err());
        assert!(toml::from_str::<EdgeConfig>("wrokers = 2\n").is_err());
        let mut bad = d.clone();
        bad.link.backoff_min_ms = 10_000;
        assert!(bad.validate().is_err());
        assert!(EdgeConfig { workers: 0, ..EdgeConfig::default() }.validate().is_err());
        // The emulated device can only be slower than this machine.
        let slow = DeviceConfig { slowdown: Some(10.0), ..d.clone() };
        assert_eq!(slow.emulation().unwrap().factor(), 10.0);
        for r in [0.5, 0.0, f64::NAN] {
            assert!(DeviceConfig { slowdown: Some(r), ..d.clone() }.validate().is_err(), "slowdown {r} accepted");
        }
        // A one-core device class.
        let one: DeviceConfig = toml::from_str("engine_threads = 1\n").unwrap();
        assert_eq!(one.engine_threads, Some(1));
        one.validate().unwrap();
        assert!(DeviceConfig { engine_threads: Some(0), ..d.clone() }.validate().is_err());
    }

    #[test]
    fn security_files_are_checked_and_named_in_errors() {
        let e: EdgeConfig = toml::from_str("token_file = \"/nonexistent/edge.token\"\n").unwrap();
        e.validate().unwrap();
        let err = e.settings(PathBuf::from("series")).unwrap_err().to_string();
        assert!(err.contains("token file /nonexistent/edge.token"), "{err}");
        let half = EdgeConfig { tls_cert: Some("c.pem".into()), ..EdgeConfig::default() };
        assert!(half.validate().unwrap_err().to_string().contains("tls_cert and tls_key"));
        let d: DeviceConfig = toml::from_str("[link]\ntls_server_name = \"edge\"\n").unwrap();
        assert!(d.validate().unwrap_err().to_string().contains("tls_ca"));
        let d: DeviceConfig = toml::from_str("[link]\ntls_ca = \"/nonexistent/ca.pem\"\n").unwrap();
        let err = d.link_settings("127.0.0.1:7878".into()).unwrap_err().to_string();
        assert!(err.contains("TLS CA /nonexistent/ca.pem"), "{err}");
        assert!(toml::from_str::<DeviceConfig>("[link]\ntoken = \"inline\"\n").is_err(), "secrets only from files");
        // Round trip (`tandem run` writes the sections back out): unset files stay unset.
        let text = toml::to_string(&EdgeConfig::default()).unwrap();
        assert_eq!(toml::from_str::<EdgeConfig>(&text).unwrap(), EdgeConfig::default());
    }
}
