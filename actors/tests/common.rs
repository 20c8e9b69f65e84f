use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus::Registry;
use tandem_actors::camera::{CameraSettings, WhenFull};
use tandem_actors::config::{DeviceConfig, EdgeConfig};
use tandem_actors::device::{Device, DeviceHandle, DeviceSettings, Queues};
use tandem_actors::edge::{EdgeHandle, EdgeServer};
use tandem_actors::ledger::Snapshot;
use tandem_actors::metrics::{DeviceMetrics, EdgeMetrics};
use tandem_actors::plan::{PlanChoice, PlanSpec};
use tandem_actors::testkit;
use tandem_codec::frame;
use tandem_codec::{Body, Control, Frame, FrameMeta, Limits};
use tandem_models::series::Series;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Guard against hangs only; nothing waits for it to pass.
pub const GUARD: Duration = Duration::from_secs(60);

pub async fn guarded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

pub struct TestSeries {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub series: Series,
}

pub fn series() -> TestSeries {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let series = testkit::tiny_series(&path).expect("tiny series");
    TestSeries { _dir: dir, path, series }
}

pub fn plan(s: &TestSeries, text: &str) -> PlanChoice {
    text.parse::<PlanSpec>().expect("plan").resolve(&s.series).expect("resolve")
}

pub fn edge_config() -> EdgeConfig {
    EdgeConfig { workers: 2, queue: 4, ..EdgeConfig::default() }
}

pub async fn start_edge_on(listener: TcpListener, series: &Path, cfg: &EdgeConfig) -> (EdgeHandle, Registry) {
    cfg.validate().expect("edge config");
    let registry = Registry::new();
    let metrics = EdgeMetrics::register(&registry).expect("edge metrics");
    let edge = EdgeServer::start(listener, cfg.settings(series.to_path_buf()).expect("edge settings"), metrics)
        .await
        .expect("edge starts");
    (edge, registry)
}

pub async fn start_edge(series: &Path, cfg: &EdgeConfig) -> (EdgeHandle, Registry) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    start_edge_on(listener, series, cfg).await
}

/// Device settings with small, test-friendly timeouts.
pub fn device_settings(s: &TestSeries, edge: &str, plan_text: &str, fps: f64, frames: Option<u64>) -> DeviceSettings {
    let mut cfg = DeviceConfig::default();
    cfg.link.backoff_min_ms = 10;
    cfg.link.backoff_max_ms = 200;
    cfg.link.connect_timeout_ms = 500;
    cfg.link.deadline_ms = 20_000;
    cfg.validate().expect("device config");
    DeviceSettings {
        series: s.path.clone(),
        plan: plan(s, plan_text),
        camera: CameraSettings { fps, frames, when_full: WhenFull::DropOldest },
        queues: Queues { front: 1, encoder: 2, link: 2, ledger: 1024, samples: 64 },
        link: cfg.link_settings(edge.to_string()).expect("link settings"),
        drain: Duration::from_secs(20),
        connect_wait: Duration::from_secs(10),
        keep_results: true,
        slowdown: tandem_actors::emulation::Slowdown::NONE,
        engine: tandem_engine::Choice::Auto,
        engine_threads: None,
        predictions: None,
        camera_gate: None,
    }
}

pub async fn start_device(settings: DeviceSettings, frames: usize) -> (DeviceHandle, Registry) {
    let registry = Registry::new();
    let metrics = DeviceMetrics::register(&registry).expect("device metrics");
    let device = Device::start(settings, testkit::synthetic_frames(frames), metrics).await.expect("device starts");
    (device, registry)
}

/// Wait until the device's counts satisfy `pred`.
pub async fn wait_counts(device: &DeviceHandle, what: &str, pred: impl FnMut(&Snapshot) -> bool) -> Snapshot {
    let mut rx = device.snapshot();
    guarded(what, async { *rx.wait_for(pred).await.expect("ledger alive") }).await
}

/// A raw protocol client, for forging frames.
pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub async fn connect(addr: std::net::SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawClient { stream, buf: Vec::new() }
    }

    /// Connect from the local address `from` (any of 127.0.0.0/8 on loopback: another peer).
    pub async fn connect_from(from: std::net::IpAddr, addr: std::net::SocketAddr) -> RawClient {
        let stream = connect_from(from, addr).await;
        stream.set_nodelay(true).expect("nodelay");
        RawClient { stream, buf: Vec::new() }
    }

    pub async fn send_control(&mut self, msg: Control) {
        let mut out = Vec::new();
        frame::write(&Frame { meta: FrameMeta::default(), body: Body::Control(msg) }, &mut out).expect("frame");
        self.stream.write_all(&out).await.expect("write");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Next control message, or None when the edge closed the connection.
    pub async fn recv(&mut self) -> Option<Control> {
        guarded("a reply from the edge", async {
            loop {
                match frame::check(&self.buf, &Limits::default()) {
                    Ok(n) => {
                        let f = frame::parse(&self.buf, &Limits::default()).expect("edge frames are valid");
                        self.buf.drain(..n);
                        match f.body {
                            Body::Control(c) => return Some(c),
                            Body::Tensor(_) => panic!("edge sent a tensor"),
                        }
                    }
                    Err(tandem_codec::FrameError::Incomplete) => {}
                    Err(e) => panic!("bad frame from edge: {e}"),
                }
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
    }

    pub async fn hello(addr: std::net::SocketAddr) -> RawClient {
        let mut c = RawClient::connect(addr).await;
        c.send_control(Control::Hello {
            protocol_version: tandem_codec::control::PROTOCOL_VERSION,
            device_id: "raw".into(),
            token: None,
            results: tandem_codec::ResultSpec::default(),
        })
        .await;
        match c.recv().await {
            Some(Control::HelloAck { .. }) => c,
            other => panic!("expected HelloAck, got {other:?}"),
        }
    }
}

/// A valid tensor frame of `shape` (NCHW) with `meta`.
pub fn tensor_frame(meta: FrameMeta, shape: &[usize], coding: tandem_codec::Coding) -> Vec<u8> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| ((i % 7) as f32) * 0.25).collect();
    let t = tandem_codec::encode(&data, shape, coding).expect("encode");
    let mut out = Vec::new();
    frame::write(&Frame { meta, body: Body::Tensor(t) }, &mut out).expect("frame");
    out
}

/// GET a path over HTTP/1.1; returns (status line, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    guarded("an HTTP response", async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).await.expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        let (head, body) = text.split_once("\r\n\r\n").expect("header end");
        (head.lines().next().unwrap_or_default().to_string(), body.to_string())
    })
    .await
}

/// A TCP connection to `addr` from the local address `from` (port chosen by the kernel).
pub async fn connect_from(from: std::net::IpAddr, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(std::net::SocketAddr::new(from, 0)).expect("bind a loopback address");
    socket.connect(addr).await.expect("connect")
}
