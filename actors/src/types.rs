//! The runtime's shared vocabulary: small closed value types that several parts name — where a
//! result was computed ([`Origin`]), pipeline stages ([`Stage`]), why a frame was dropped
//! ([`DropReason`]), why a session could not be opened ([`ConnectFailure`]) or was refused
//! ([`RejectReason`]), and the plan in force ([`PlanChoice`], [`ActivePlan`]).
//!
//! This module depends on nothing else in the crate, so every other module may use it:
//! `types` ← `metrics` ← the actors. Each enum's serde name is its metric label
//! ([`Stage::as_str`] and friends), so a serialised summary and `/metrics` use the same words.

use std::fmt;

use serde::{Deserialize, Serialize};
use tandem_codec::Coding;

/// A pipeline stage, the `stage` label of `tandem_stage_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Capture → front inference starts (camera queue wait).
    CameraQueue,
    /// Head inference on the device.
    Front,
    /// Quantise + compress + frame (the front → encoder queue wait is not included).
    Encode,
    /// Encoded → first byte written (encoder → link queue, in-flight window).
    LinkQueue,
    /// First byte written → result read, minus the edge's decode and inference time: the
    /// network and the edge's queues.
    Transfer,
    /// Edge: frame read → an inference thread picks it up.
    EdgeQueue,
    /// Edge: decode of the tensor.
    EdgeDecode,
    /// Edge: tail inference.
    EdgeInfer,
    /// Whole-model inference on the device (plan `end`, or the link is down).
    Local,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 9] = [
        Stage::CameraQueue,
        Stage::Front,
        Stage::Encode,
        Stage::LinkQueue,
        Stage::Transfer,
        Stage::EdgeQueue,
        Stage::EdgeDecode,
        Stage::EdgeInfer,
        Stage::Local,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::CameraQueue => "camera_queue",
            Stage::Front => "front",
            Stage::Encode => "encode",
            Stage::LinkQueue => "link_queue",
            Stage::Transfer => "transfer",
            Stage::EdgeQueue => "edge_queue",
            Stage::EdgeDecode => "edge_decode",
            Stage::EdgeInfer => "edge_infer",
            Stage::Local => "local",
        }
    }
}

/// Where a result was computed, the `origin` label of `tandem_results_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Head on the device, tail on the edge.
    Edge,
    /// Whole model on the device.
    Local,
    /// Sent to the edge, but the link went down before the answer: finished on the device
    /// (the tail run locally on the head's output), within its deadline.
    RerunLocal,
}

impl Origin {
    /// Every origin.
    pub const ALL: [Origin; 3] = [Origin::Edge, Origin::Local, Origin::RerunLocal];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Edge => "edge",
            Origin::Local => "local",
            Origin::RerunLocal => "rerun_local",
        }
    }
}

/// Why a frame ended without a result. The `reason` label of `tandem_frames_dropped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The camera found front inference busy (its queue full) and dropped a frame.
    CameraOverrun,
    /// The link to the edge was down, or went down while the frame was in flight.
    LinkDown,
    /// The edge answered with a `FrameError`.
    EdgeError,
    /// No result within the per-frame deadline.
    Deadline,
    /// Still in the pipeline when the shutdown deadline passed.
    Shutdown,
    /// The codec refused the tensor (non-finite values).
    EncodeError,
    /// The model could not be loaded or run on the device.
    ModelError,
    /// A stage panicked on this frame (on the device, or the edge answered `FrameError { panic }`);
    /// the stage was restarted ([`crate::supervise`]).
    Panic,
}

impl DropReason {
    /// How many reasons there are.
    pub const COUNT: usize = 8;

    /// Every reason, in declaration order (`ALL[r.index()] == r`).
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::CameraOverrun,
        DropReason::LinkDown,
        DropReason::EdgeError,
        DropReason::Deadline,
        DropReason::Shutdown,
        DropReason::EncodeError,
        DropReason::ModelError,
        DropReason::Panic,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::CameraOverrun => "camera_overrun",
            DropReason::LinkDown => "link_down",
            DropReason::EdgeError => "edge_error",
            DropReason::Deadline => "deadline",
            DropReason::Shutdown => "shutdown",
            DropReason::EncodeError => "encode_error",
            DropReason::ModelError => "model_error",
            DropReason::Panic => "panic",
        }
    }

    /// Position in [`DropReason::ALL`], for per-reason arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A supervised thread: the `stage` label of `tandem_restarts_total` ([`crate::supervise`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Supervised {
    /// An edge inference thread.
    EdgeWorker,
    /// The edge's model store.
    EdgeStore,
    /// The device's front-inference thread.
    Front,
    /// The device's encoder thread.
    Encoder,
}

impl Supervised {
    /// The edge's supervised threads.
    pub const EDGE: [Supervised; 2] = [Supervised::EdgeWorker, Supervised::EdgeStore];
    /// The device's supervised threads.
    pub const DEVICE: [Supervised; 2] = [Supervised::Front, Supervised::Encoder];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Supervised::EdgeWorker => "edge_worker",
            Supervised::EdgeStore => "edge_store",
            Supervised::Front => "front",
            Supervised::Encoder => "encoder",
        }
    }
}

/// Why a session could not be opened: the `reason` label of `tandem_link_connect_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectFailure {
    /// TCP connect failed.
    Unreachable,
    /// Connect, TLS or handshake timeout.
    Timeout,
    /// TLS handshake failed (certificate, name, or the edge does not speak TLS).
    Tls,
    /// The edge refused the token.
    Unauthorized,
    /// The edge does not speak our protocol version.
    Protocol,
    /// The edge is at its connection limit.
    Busy,
    /// Refused for another reason.
    Rejected,
    /// The handshake failed otherwise.
    Handshake,
}

impl ConnectFailure {
    /// Every reason.
    pub const ALL: [ConnectFailure; 8] = [
        ConnectFailure::Unreachable,
        ConnectFailure::Timeout,
        ConnectFailure::Tls,
        ConnectFailure::Unauthorized,
        ConnectFailure::Protocol,
        ConnectFailure::Busy,
        ConnectFailure::Rejected,
        ConnectFailure::Handshake,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Unreachable => "unreachable",
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Tls => "tls",
            ConnectFailure::Unauthorized => "unauthorized",
            ConnectFailure::Protocol => "protocol",
            ConnectFailure::Busy => "busy",
            ConnectFailure::Rejected => "rejected",
            ConnectFailure::Handshake => "handshake",
        }
    }

    /// Whether retrying soon is pointless until an operator acts (wrong token, wrong version,
    /// wrong certificate): the link then waits its longest backoff between attempts and logs
    /// the first failure at ERROR.
    pub const fn needs_operator(self) -> bool {
        matches!(self, ConnectFailure::Unauthorized | ConnectFailure::Protocol | ConnectFailure::Tls)
    }
}

/// Why the edge refused a connection: the `reason` label of `tandem_edge_rejections_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Over the connection limit (`Reject { Busy }`).
    Busy,
    /// A protocol version this edge does not speak (`Reject { UnsupportedProtocol }`).
    Protocol,
    /// A missing or wrong token (`Reject { BadToken }`).
    Unauthorized,
    /// No `Hello` in time, or something else first.
    Handshake,
    /// The TLS handshake failed or timed out.
    Tls,
    /// Closed at accept: the address is banned for bad tokens (no handshake is spent on it).
    Banned,
    /// Closed at accept: this address already has its share of handshakes in progress.
    PeerLimit,
    /// Closed at accept: the pool of handshakes in progress (all addresses) is full.
    HandshakesFull,
}

impl RejectReason {
    /// Every reason.
    pub const ALL: [RejectReason; 8] = [
        RejectReason::Busy,
        RejectReason::Protocol,
        RejectReason::Unauthorized,
        RejectReason::Handshake,
        RejectReason::Tls,
        RejectReason::Banned,
        RejectReason::PeerLimit,
        RejectReason::HandshakesFull,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Busy => "busy",
            RejectReason::Protocol => "protocol",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::Handshake => "handshake",
            RejectReason::Tls => "tls",
            RejectReason::Banned => "banned",
            RejectReason::PeerLimit => "peer_limit",
            RejectReason::HandshakesFull => "handshakes_full",
        }
    }
}

/// A choice of model, split and coding, without an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlanChoice {
    /// Series member id (the model id on the wire).
    pub model_id: u32,
    /// Partition point index: the device runs layers `0..point`, the edge `point..end`.
    pub point: u16,
    /// How the tensor at `point` is coded (ignored when `point` is the model's `end`).
    pub coding: Coding,
}

/// The plan in force, stamped with the epoch it was published under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActivePlan {
    /// Increases with every publish; 1 is the first plan.
    pub epoch: u32,
    /// What to run.
    pub choice: PlanChoice,
}

impl fmt::Display for PlanChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.model_id, self.point, self.coding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde name of `value`, through TOML (a bare enum serialises as a string).
    fn serde_name<T: Serialize>(value: T) -> String {
        match toml::Value::try_from(value).unwrap() {
            toml::Value::String(s) => s,
            other => panic!("expected a string, got {other:?}"),
        }
    }

    #[test]
    fn serde_names_are_the_metric_labels() {
        for s in Stage::ALL {
            assert_eq!(serde_name(s), s.as_str());
        }
        for o in Origin::ALL {
            assert_eq!(serde_name(o), o.as_str());
        }
        for r in DropReason::ALL {
            assert_eq!(serde_name(r), r.as_str());
        }
        for f in ConnectFailure::ALL {
            assert_eq!(serde_name(f), f.as_str());
        }
        for r in RejectReason::ALL {
            assert_eq!(serde_name(r), r.as_str());
        }
    }

    #[test]
    fn drop_reasons_deserialise_from_their_labels_and_index_all() {
        #[derive(Deserialize)]
        struct Wrap {
            r: DropReason,
        }
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            let w: Wrap = toml::from_str(&format!("r = \"{}\"", r.as_str())).unwrap();
            assert_eq!(w.r, r);
            assert_eq!(r.index(), i);
        }
        assert!(toml::from_str::<Wrap>("r = \"CameraOverrun\"").is_err());
    }
}
