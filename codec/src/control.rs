//! The control protocol: messages carried by control frames as postcard payloads.
//!
//! Session: device → `Hello`, edge → `HelloAck` or `Reject`. Plans: controller → `PlanSwitch`,
//! edge → `PlanAck` (the new epoch is used from the next tensor frame). Data: for every tensor
//! frame the edge answers `InferResult` or `FrameError`. Bandwidth: `Probe` (followed, inside the
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

/// Version of the control protocol, exchanged in `Hello`/`HelloAck`.
pub const PROTOCOL_VERSION: u16 = 1;
/// Longest `Hello::device_id`, bytes.
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Longest `Hello::token`, bytes.
pub const MAX_TOKEN_LEN: usize = 256;
/// Longest `Reject::reason`, bytes.
pub const MAX_REASON_LEN: usize = 256;
/// Most logits in an `InferResult`.
pub const MAX_LOGITS: usize = 4096;
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
        class: u16,
        confidence: f32,
        #[serde(deserialize_with = "bounded::f32s::<_, MAX_LOGITS>")]
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
        match self {
            Control::Hello { device_id, token, .. } => {
                bound("device_id", MAX_DEVICE_ID_LEN, device_id.len())?;
                bound("token", MAX_TOKEN_LEN, token.as_ref().map_or(0, String::len))
            }
            Control::Reject { reason, .. } => bound("reason", MAX_REASON_LEN, reason.len()),
            Control::InferResult { logits, .. } => bound("logits", MAX_LOGITS, logits.len()),
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

    pub fn f32s<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<Vec<f32>, D::Error> {
        struct V<const N: usize>(PhantomData<()>);
        impl<'de, const N: usize> Visitor<'de> for V<N> {
            type Value = Vec<f32>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} f32 values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > N {
                    return Err(de::Error::invalid_length(hint, &self));
                }
                let mut out = Vec::with_capacity(hint);
                while let Some(x) = seq.next_element::<f32>()? {
                    if out.len() == N {
                        return Err(de::Error::invalid_length(N + 1, &self));
                    }
                    out.push(x);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<N>(PhantomData))
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
        let raw = postcard::to_allocvec(&Control::Hello { protocol_version: 1, device_id: long, token: None })
            .expect("serialise");
        assert!(matches!(Control::decode(&raw), Err(ControlError::Postcard(_))));

        let logits = vec![0.5f32; MAX_LOGITS + 1];
        let msg = Control::InferResult {
            frame_id: 1,
            epoch: 1,
            class: 0,
            confidence: 0.5,
            logits,
            edge_decode_us: 0,
            edge_infer_us: 0,
        };
        let raw = postcard::to_allocvec(&msg).expect("serialise");
        assert!(matches!(Control::decode(&raw), Err(ControlError::Postcard(_))));
        assert!(matches!(msg.encode(&mut Vec::new()), Err(ControlError::TooLong { field: "logits", .. })));
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
