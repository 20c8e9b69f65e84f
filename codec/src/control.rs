//! The control protocol: messages carried by control frames as postcard payloads.
//!
//! Session: device → `Hello` (which also says what results it wants: [`ResultSpec`]), edge →
//! `HelloAck` or `Reject`. Plans: controller → `PlanSwitch`, edge → `PlanAck` (the new epoch is
//! used from the next tensor frame). Data: for every tensor frame the edge answers `InferResult`
//! — the top-k classes with their softmax probabilities, computed at the edge, and the logits
//! only when the device asked for them — or `FrameError`. Bandwidth: `Probe` (followed, inside the
//! same frame payload, by `padding_len` zero bytes) → `ProbeReply`. Liveness: `Ping`/`Pong`.
//! `Bye` ends the session.
//!
//! Codes are closed enums; the only free text is `Reject::reason`, bounded like every other
//! string and list. Bounds are enforced while deserialising (before anything larger than the
//! bound is allocated) and again before sending.
//!
//! postcard encodes enum variants by index: **append new variants at the end** and bump
//! [`PROTOCOL_VERSION`] when changing a message.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::coding::Coding;
use crate::error::{CodecError, ControlError, FrameError};

/// Version of the control protocol, exchanged in `Hello`/`HelloAck`. 2: `Hello` carries a
/// [`ResultSpec`], `InferResult` the top-k ([`ClassProb`]) and optional logits.
pub const PROTOCOL_VERSION: u16 = 2;
/// Longest `Hello::device_id`, bytes.
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Longest `Hello::token`, bytes.
pub const MAX_TOKEN_LEN: usize = 256;
/// Longest `Reject::reason`, bytes.
pub const MAX_REASON_LEN: usize = 256;
/// Most logits in an `InferResult`.
pub const MAX_LOGITS: usize = 4096;
/// Most classes in an `InferResult`'s top-k (and largest [`ResultSpec::top_k`]).
pub const MAX_TOP_K: usize = 32;

/// What every `InferResult` of a session carries; the device asks in `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResultSpec {
    /// Classes per result, most probable first (1..=[`MAX_TOP_K`]; fewer when the model has
    /// fewer classes). Default 3.
    pub top_k: u8,
    /// Every logit too (a 1000-class model: 4 KB per result). Default false.
    pub logits: bool,
}

impl Default for ResultSpec {
    fn default() -> Self {
        ResultSpec { top_k: 3, logits: false }
    }
}

/// One class of a result's top-k: index and softmax probability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassProb {
    pub class: u16,
    pub p: f32,
}

impl ClassProb {
    /// Softmax of `logits`, the `k` most probable classes (at least one when there are logits),
    /// most probable first; ties keep the lower index first (like argmax). Pure.
    pub fn top_k(logits: &[f32], k: usize) -> Vec<ClassProb> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        let p = |i: usize| exps.get(i).copied().unwrap_or(0.0);
        idx.sort_by(|&a, &b| p(b).total_cmp(&p(a)).then(a.cmp(&b)));
        idx.into_iter()
            .take(k.max(1))
            .map(|i| ClassProb {
                class: u16::try_from(i).unwrap_or(u16::MAX),
                p: if sum > 0.0 { p(i) / sum } else { 0.0 },
            })
            .collect()
    }
}
/// Largest `Probe::padding_len`, bytes.
pub const MAX_PROBE_PADDING: u32 = 16 << 20;

/// A control message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// Device opens a session.
    Hello {
        protocol_version: u16,
        #[serde(deserialize_with = "bounded::string::<_, MAX_DEVICE_ID_LEN>")]
        device_id: String,
        #[serde(deserialize_with = "bounded::opt_string::<_, MAX_TOKEN_LEN>")]
        token: Option<String>,
        /// What the edge's results should carry.
        results: ResultSpec,
    },
    /// Edge accepts the session.
    HelloAck {
        protocol_version: u16,
        session_id: u64,
    },
    /// Edge refuses the session; `reason` is for humans (≤ [`MAX_REASON_LEN`] bytes).
    Reject {
        code: RejectCode,
        #[serde(deserialize_with = "bounded::string::<_, MAX_REASON_LEN>")]
        reason: String,
    },
    /// Switch to a new plan from the next tensor frame on.
    PlanSwitch {
        epoch: u32,
        model_id: u32,
        point: u16,
        coding: Coding,
    },
    /// Outcome of a `PlanSwitch`.
    PlanAck {
        epoch: u32,
        result: PlanResult,
    },
    /// Edge's answer to one tensor frame.
    InferResult {
        frame_id: u64,
        epoch: u32,
        /// The session's `top_k` most probable classes, most probable first (at least one).
        #[serde(deserialize_with = "bounded::vec::<_, ClassProb, MAX_TOP_K>")]
        top: Vec<ClassProb>,
        /// Every logit when the session asked for them ([`ResultSpec::logits`]), else empty.
        #[serde(deserialize_with = "bounded::vec::<_, f32, MAX_LOGITS>")]
        logits: Vec<f32>,
        edge_decode_us: u32,
        edge_infer_us: u32,
    },
    /// Edge could not process one tensor frame.
    FrameError {
        frame_id: u64,
        code: ErrorCode,
    },
    /// Bandwidth probe; the frame payload continues with `padding_len` zero bytes.
    Probe {
        seq: u32,
        sent_at_us: u64,
        padding_len: u32,
    },
    /// Echo of a probe; `received_len` is the probe frame's total length as received.
    ProbeReply {
        seq: u32,
        sent_at_us: u64,
        received_len: u32,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// Orderly end of session.
    Bye,
}

/// Why a session was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectCode {
    UnsupportedProtocol,
    BadToken,
    Busy,
    UnknownDevice,
    Other,
}

/// Outcome of a plan switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlanResult {
    Applied,
    UnknownModel,
    BadPoint,
    UnsupportedCoding,
    /// The epoch is not newer than the current one.
    StaleEpoch,
    Busy,
}

/// Why the edge dropped a tensor frame. Also usable as a metrics `reason` label
/// ([`ErrorCode::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    Checksum,
    Malformed,
    UnsupportedVersion,
    TooLarge,
    /// The frame's plan epoch is not the edge's current one.
    StalePlan,
    UnknownModel,
    BadPoint,
    Decode,
    Inference,
    Overloaded,
    Internal,
    /// The edge's inference thread panicked on this frame (and was restarted). Last, so the
    /// earlier codes keep their encoding.
    Panic,
}

impl ErrorCode {
    /// Stable snake_case name (for metric labels and logs).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Checksum => "checksum",
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::StalePlan => "stale_plan",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::BadPoint => "bad_point",
            ErrorCode::Decode => "decode",
            ErrorCode::Inference => "inference",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::Panic => "panic",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&FrameError> for ErrorCode {
    fn from(e: &FrameError) -> Self {
        match e {
            FrameError::Checksum { .. } => ErrorCode::Checksum,
            FrameError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            FrameError::TooLarge { .. } => ErrorCode::TooLarge,
            FrameError::Codec(c) => ErrorCode::from(c),
            _ => ErrorCode::Malformed,
        }
    }
}

impl From<&CodecError> for ErrorCode {
    fn from(e: &CodecError) -> Self {
        match e {
            CodecError::TooLarge { .. } | CodecError::RankTooLarge { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::Decode,
        }
    }
}

impl Control {
    /// Payload bytes that must follow the postcard message in the frame.
    pub fn padding_len(&self) -> usize {
        match self {
            Control::Probe { padding_len, .. } => *padding_len as usize,
            _ => 0,
        }
    }

    /// Checks the protocol's bounds (also applied while decoding).
    pub fn validate(&self) -> Result<(), ControlError> {
        fn bound(field: &'static str, limit: usize, got: usize) -> Result<(), ControlError> {
            if got > limit { Err(ControlError::TooLong { field, limit, got }) } else { Ok(()) }
        }
        fn at_least(field: &'static str, min: usize, got: usize) -> Result<(), ControlError> {
            if got < min { Err(ControlError::TooShort { field, min, got }) } else { Ok(()) }
        }
        match self {
            Control::Hello { device_id, token, results, .. } => {
                bound("device_id", MAX_DEVICE_ID_LEN, device_id.len())?;
                bound("token", MAX_TOKEN_LEN, token.as_ref().map_or(0, String::len))?;
                at_least("top_k", 1, results.top_k.into())?;
                bound("top_k", MAX_TOP_K, results.top_k.into())
            }
            Control::Reject { reason, .. } => bound("reason", MAX_REASON_LEN, reason.len()),
            Control::InferResult { top, logits, .. } => {
                at_least("top", 1, top.len())?;
                bound("top", MAX_TOP_K, top.len())?;
                bound("logits", MAX_LOGITS, logits.len())
            }
            Control::Probe { padding_len, .. } => {
                bound("padding_len", MAX_PROBE_PADDING as usize, *padding_len as usize)
            }
            _ => Ok(()),
        }
    }

    /// Appends the message (and probe padding) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ControlError> {
        self.validate()?;
        postcard::to_extend(self, Appender(out))?;
        out.resize(out.len().saturating_add(self.padding_len()), 0);
        Ok(())
    }

    /// Decodes a whole control payload: one message, then exactly its padding.
    pub fn decode(payload: &[u8]) -> Result<Control, ControlError> {
        let (msg, rest) = postcard::take_from_bytes::<Control>(payload)?;
        msg.validate()?;
        if rest.len() != msg.padding_len() {
            return Err(ControlError::Trailing { expected: msg.padding_len(), got: rest.len() });
        }
        Ok(msg)
    }
}

/// `Extend<u8>` onto a borrowed Vec (postcard's `to_extend` takes its writer by value).
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Deserialisers that refuse over-long strings and lists before allocating them.
mod bounded {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

    struct Str<const N: usize>(String);

    impl<'de, const N: usize> Deserialize<'de> for Str<N> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<const N: usize>;
            impl<const N: usize> Visitor<'_> for V<N> {
                type Value = Str<N>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "a string of at most {N} bytes")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<N>, E> {
                    if v.len() > N {
                        return Err(E::invalid_length(v.len(), &self));
                    }
                    Ok(Str(v.to_owned()))
                }
            }
            d.deserialize_str(V::<N>)
        }
    }

    pub fn string<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<String, D::Error> {
        Str::<N>::deserialize(d).map(|s| s.0)
    }

    pub fn opt_string<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<Option<String>, D::Error> {
        Option::<Str<N>>::deserialize(d).map(|o| o.map(|s| s.0))
    }

    pub fn vec<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(d: D) -> Result<Vec<T>, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > N {
                    return Err(de::Error::invalid_length(hint, &self));
                }
                let mut out = Vec::with_capacity(hint);
                while let Some(x) = seq.next_element::<T>()? {
                    if out.len() == N {
                        return Err(de::Error::invalid_length(N + 1, &self));
                    }
                    out.push(x);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: &Control) -> Control {
        let mut buf = Vec::new();
        msg.encode(&mut buf).expect("encode");
        Control::decode(&buf).expect("decode")
    }

    #[test]
    fn bounds_are_enforced_on_decode_not_just_encode() {
        // Hand-build a Hello whose device id exceeds the bound (encode would refuse it).
        let long = "d".repeat(MAX_DEVICE_ID_LEN + 1);
        let raw = postcard::to_allocvec(&Control::Hello {
            protocol_version: 1,
            device_id: long,
            token: None,
            results: ResultSpec::default(),
        })
        .expect("serialise");
        assert!(matches!(Control::decode(&raw), Err(ControlError::Postcard(_))));

        let logits = vec![0.5f32; MAX_LOGITS + 1];
        let top = vec![ClassProb { class: 0, p: 0.5 }];
        let msg = Control::InferResult { frame_id: 1, epoch: 1, top, logits, edge_decode_us: 0, edge_infer_us: 0 };
        let raw = postcard::to_allocvec(&msg).expect("serialise");
        assert!(matches!(Control::decode(&raw), Err(ControlError::Postcard(_))));
        assert!(matches!(msg.encode(&mut Vec::new()), Err(ControlError::TooLong { field: "logits", .. })));

        let top = vec![ClassProb { class: 0, p: 0.5 }; MAX_TOP_K + 1];
        let msg = Control::InferResult {
            frame_id: 1,
            epoch: 1,
            top,
            logits: Vec::new(),
            edge_decode_us: 0,
            edge_infer_us: 0,
        };
        let raw = postcard::to_allocvec(&msg).expect("serialise");
        assert!(matches!(Control::decode(&raw), Err(ControlError::Postcard(_))));
        let none = Control::InferResult {
            frame_id: 1,
            epoch: 1,
            top: Vec::new(),
            logits: Vec::new(),
            edge_decode_us: 0,
            edge_infer_us: 0,
        };
        let raw = postcard::to_allocvec(&none).expect("serialise");
        assert!(matches!(Control::decode(&raw), Err(ControlError::TooShort { field: "top", min: 1, got: 0 })));
        let zero_k = Control::Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: "d".into(),
            token: None,
            results: ResultSpec { top_k: 0, logits: false },
        };
        assert!(matches!(zero_k.encode(&mut Vec::new()), Err(ControlError::TooShort { field: "top_k", .. })));
    }

    #[test]
    fn top_k_is_the_softmax_of_the_logits_most_probable_first() {
        let logits = [1.0f32, 3.0, 3.0, -2.0, 0.5];
        let top = ClassProb::top_k(&logits, 3);
        let classes: Vec<u16> = top.iter().map(|c| c.class).collect();
        // The tie between 1 and 2 keeps the lower index first.
        assert_eq!(classes, [1, 2, 0]);
        let z: f32 = logits.iter().map(|l| (l - 3.0).exp()).sum();
        for c in &top {
            let want = (logits[usize::from(c.class)] - 3.0).exp() / z;
            assert!((c.p - want).abs() < 1e-6, "{c:?} vs {want}");
        }
        let all: f32 = ClassProb::top_k(&logits, 10).iter().map(|c| c.p).sum();
        assert!((all - 1.0).abs() < 1e-6 && ClassProb::top_k(&logits, 10).len() == 5);
        assert_eq!(ClassProb::top_k(&logits, 0).len(), 1);
        // Huge logits do not overflow.
        assert!(ClassProb::top_k(&[1e30, 0.0], 2).iter().all(|c| c.p.is_finite()));
    }

    #[test]
    fn probe_padding_travels_in_the_payload() {
        let probe = Control::Probe { seq: 7, sent_at_us: 123, padding_len: 1000 };
        let mut buf = Vec::new();
        probe.encode(&mut buf).expect("encode");
        assert!(buf.len() > 1000);
        assert_eq!(Control::decode(&buf).expect("decode"), probe);
        buf.pop();
        assert!(matches!(Control::decode(&buf), Err(ControlError::Trailing { expected: 1000, got: 999 })));
        assert_eq!(round_trip(&Control::Bye), Control::Bye);
    }
}
