use std::time::{Duration, Instant};

use tandem_codec::{PlanResult, RejectCode};
use tokio::sync::{mpsc, oneshot};

use crate::types::ActivePlan;
pub use crate::types::ConnectFailure;

/// Session state, published on a `watch` (front inference reads it between frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting or in the handshake.
    Connecting,
    /// Session established.
    Up {
        /// Id the edge gave the session.
        session_id: u64,
    },
    /// Not connected; waiting to retry.
    Down,
    /// The edge refused the session (a wrong token, an old protocol, its connection limit):
    /// retrying with backoff, running locally meanwhile. Stays until a session is up or the
    /// next attempt fails for another reason.
    Rejected {
        /// What the edge said.
        code: RejectCode,
    },
}

impl LinkState {
    /// Whether frames can be offloaded now.
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Up { .. })
    }
}

/// Why an attempt to open a session failed. Carries what a log line needs; the metric label is
/// [`ConnectError::failure`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (nobody listening, no route, …).
    #[error("connect: {0}")]
    Unreachable(#[source] std::io::Error),
    /// A stage of the set-up did not finish in time.
    #[error("{stage} timed out after {} ms", after.as_millis())]
    Timeout {
        /// `connect`, `TLS handshake` or `handshake`.
        stage: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The TLS handshake failed.
    #[error(
        "TLS handshake with {server_name:?} failed: {source} (is the edge serving TLS, with a certificate for this name signed by the configured CA?)"
    )]
    Tls {
        /// The name the edge's certificate had to carry.
        server_name: String,
        /// rustls' verdict.
        #[source]
        source: std::io::Error,
    },
    /// The edge answered `Reject`.
    #[error("the edge rejected the session: {code:?} ({reason}){}", reject_hint(*code))]
    Rejected {
        /// Its code.
        code: RejectCode,
        /// Its reason, as sent (bounded).
        reason: String,
    },
    /// The edge's reply is in another frame-header version than this device's.
    #[error(
        "the edge answers in frame header version {got}, this device speaks version {expected} — the device and the edge run incompatible versions"
    )]
    FrameVersion {
        /// This build's version.
        expected: u16,
        /// The edge's.
        got: u16,
    },
    /// The handshake failed otherwise (connection closed, unexpected or corrupt reply).
    #[error("handshake: {0}")]
    Handshake(String),
}

fn reject_hint(code: RejectCode) -> &'static str {
    match code {
        RejectCode::BadToken => " — check that link.token_file holds the edge's token",
        RejectCode::UnsupportedProtocol => " — the device and the edge run incompatible versions",
        RejectCode::Busy => " — the edge is at its connection limit",
        RejectCode::UnknownDevice | RejectCode::Other => "",
    }
}

impl ConnectError {
    /// The metric label for this failure.
    pub fn failure(&self) -> ConnectFailure {
        match self {
            ConnectError::Unreachable(_) => ConnectFailure::Unreachable,
            ConnectError::Timeout { .. } => ConnectFailure::Timeout,
            ConnectError::Tls { .. } => ConnectFailure::Tls,
            ConnectError::Rejected { code: RejectCode::BadToken, .. } => ConnectFailure::Unauthorized,
            ConnectError::Rejected { code: RejectCode::UnsupportedProtocol, .. } => ConnectFailure::Protocol,
            ConnectError::Rejected { code: RejectCode::Busy, .. } => ConnectFailure::Busy,
            ConnectError::Rejected { .. } => ConnectFailure::Rejected,
            ConnectError::FrameVersion { .. } => ConnectFailure::Protocol,
            ConnectError::Handshake(_) => ConnectFailure::Handshake,
        }
    }
}

/// Why a link command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No session with the edge.
    #[error("the link to the edge is down")]
    Down,
    /// A probe is already in progress.
    #[error("a probe is already in progress")]
    Busy,
}

/// One probe burst, as timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    /// Wire bytes.
    pub bytes: u64,
    /// From when the link could start on it — its first byte, or the previous burst's reply if
    /// that came later — to its `ProbeReply`.
    pub took: Duration,
    /// Whether `took` runs from the previous burst's reply: the burst queued behind it, so its
    /// time is its serialisation alone (no round trip in it).
    pub queued: bool,
}

/// What an active probe measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// `Ping` → `Pong` round trip, if the pong came back.
    pub rtt: Option<Duration>,
    /// Per burst answered, in order. A bare receipt: no edge compute to subtract.
    pub bursts: Vec<Burst>,
    /// When the report was made.
    pub at: Instant,
}

/// Control-plane commands for the link (for the controller of the adaptation issue).
#[derive(Debug)]
pub enum LinkCommand {
    /// Ask the edge to prepare `plan` (load the tail) and report its `PlanAck`. Publishing the
    /// plan to the data plane after `Applied` is the caller's move (switch at a frame boundary,
    /// roll back on anything else).
    Prepare {
        /// The plan to announce.
        plan: ActivePlan,
        /// The edge's answer.
        reply: oneshot::Sender<Result<PlanResult, LinkError>>,
    },
    /// Measure the link actively: a `Ping`, then `count` `Probe` frames of `burst_bytes` padding,
    /// sent like frames (through the shaper), each answered by the edge's `ProbeReply`.
    Probe {
        /// Padding per burst, bytes.
        burst_bytes: u32,
        /// Bursts (1..=16).
        count: u32,
        /// The measurements.
        reply: oneshot::Sender<Result<ProbeReport, LinkError>>,
    },
}

/// The link's command inbox: bounded (4). Full-policy: **Block** (`send().await`); commands
/// are rare and must not be lost.
pub fn command_queue() -> (mpsc::Sender<LinkCommand>, mpsc::Receiver<LinkCommand>) {
    mpsc::channel(4)
}

/// One frame's transfer: what the bandwidth estimator is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferSample {
    /// Frame bytes on the wire (header + payload).
    pub bytes: u64,
    /// First byte written → result read, minus the edge's reported decode + inference time.
    pub duration: Duration,
    /// When the result was read.
    pub at: Instant,
}

/// The transfer-sample queue: bounded. Full-policy: **DropNewest** (`try_send`): samples are
/// advisory and a lagging consumer must not slow the link.
pub fn sample_queue(capacity: usize) -> (mpsc::Sender<TransferSample>, mpsc::Receiver<TransferSample>) {
    mpsc::channel(capacity.max(1))
}
