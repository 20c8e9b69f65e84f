//! Opening a session: dial (timeout), the shaper, TLS, `Hello` → `HelloAck` — and the delays
//! between attempts.
//!
//! The handshake goes through the shaper too: it is part of the link. TLS runs over the shaper,
//! so the trace shapes the bytes TLS really sends. The handshake's bytes are not counted in
//! `tandem_link_bytes_total` (the session's are, from `HelloAck` on).
//!
//! [`Backoff`] computes the reconnect delays with `backon`'s exponential iterator (jitter on),
//! which the link's own loop sleeps on — it serves frames and commands while it waits, so
//! backon's retry driver does not fit.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Control, FrameError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::actor::LinkSettings;
use super::msg::ConnectError;
use crate::wire::{FrameReader, FrameWriter, Read, WriteError, as_control};

/// A byte stream to the edge: the socket, or a shaped pipe in front of it, maybe inside TLS.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(super) type Stream = Box<dyn Io>;

/// Dial the edge and shake hands; the session id and the stream, ready for frames.
pub(super) async fn connect(s: &LinkSettings) -> Result<(u64, Stream), ConnectError> {
    let tcp = tokio::time::timeout(s.connect_timeout, TcpStream::connect(&s.edge))
        .await
        .map_err(|_| ConnectError::Timeout { stage: "connect", after: s.connect_timeout })?
        .map_err(ConnectError::Unreachable)?;
    tcp.set_nodelay(true).map_err(ConnectError::Unreachable)?;
    let shaped: Stream = match &s.shaper {
        Some(shaper) => Box::new(shaper.wrap(tcp)),
        None => Box::new(tcp),
    };
    let mut stream: Stream = match &s.tls {
        None => shaped,
        Some(tls) => {
            let tls_stream = tokio::time::timeout(s.handshake_timeout, tls.connect(shaped))
                .await
                .map_err(|_| ConnectError::Timeout { stage: "TLS handshake", after: s.handshake_timeout })?
                .map_err(|source| ConnectError::Tls { server_name: tls.server_name(), source })?;
            Box::new(tls_stream)
        }
    };
    let session_id = tokio::time::timeout(s.handshake_timeout, handshake(s, &mut stream))
        .await
        .map_err(|_| ConnectError::Timeout { stage: "handshake", after: s.handshake_timeout })??;
    Ok((session_id, stream))
}

/// `Hello` → `HelloAck` (or `Reject`); the caller bounds it with the handshake timeout.
async fn handshake(s: &LinkSettings, stream: &mut Stream) -> Result<u64, ConnectError> {
    let hello = Control::Hello {
        protocol_version: PROTOCOL_VERSION,
        device_id: s.device_id.clone(),
        token: s.token.as_ref().map(|t| t.expose().to_owned()),
        results: s.results,
    };
    // The writer's own timeout is the handshake's: whichever fires, it is a handshake timeout.
    match FrameWriter::new(&mut *stream, s.handshake_timeout).control(&hello).await {
        Ok(_) => {}
        Err(WriteError::Timeout { .. }) => {
            return Err(ConnectError::Timeout { stage: "handshake", after: s.handshake_timeout });
        }
        Err(WriteError::Io(e)) => return Err(ConnectError::Handshake(format!("hello: {e}"))),
        Err(WriteError::Encode(e)) => return Err(ConnectError::Handshake(format!("hello: {e}"))),
    }
    let mut reader = FrameReader::new(stream, s.limits);
    match reader.next().await {
        Ok(Some(Read::Frame { frame, .. })) => match as_control(&frame) {
            Some(Control::HelloAck { protocol_version, session_id }) if *protocol_version == PROTOCOL_VERSION => {
                Ok(*session_id)
            }
            Some(Control::HelloAck { protocol_version, .. }) => Err(ConnectError::Handshake(format!(
                "edge speaks protocol {protocol_version}, we speak {PROTOCOL_VERSION}"
            ))),
            Some(Control::Reject { code, reason }) => {
                Err(ConnectError::Rejected { code: *code, reason: reason.clone() })
            }
            other => Err(ConnectError::Handshake(format!("unexpected handshake reply {other:?}"))),
        },
        // An edge answering in another frame-header version (a v1 edge's `Reject` of our
        // header, say): a version mismatch only an upgrade cures.
        Ok(Some(Read::Bad { error: FrameError::UnsupportedVersion { expected, got }, .. })) => {
            Err(ConnectError::FrameVersion { expected, got })
        }
        Ok(Some(Read::Bad { error, .. })) => {
            let hint = if s.tls.is_none() { " (does the edge expect TLS?)" } else { "" };
            Err(ConnectError::Handshake(format!("bad handshake frame: {error}{hint}")))
        }
        Ok(None) => {
            let hint = if s.tls.is_none() { " (an edge that expects TLS does this)" } else { "" };
            Err(ConnectError::Handshake(format!("edge closed the connection during the handshake{hint}")))
        }
        Err(e) => Err(ConnectError::Handshake(e.to_string())),
    }
}

/// The delays between connection attempts: from `min`, doubling up to `max`, each with a
/// random jitter of up to its own length added (backon's), capped at `max` — so a fleet of
/// devices that lost the same edge does not come back in lockstep. Never below `min`, never
/// above `max`; at the ceiling every attempt waits `max` exactly.
#[derive(Debug)]
pub(super) struct Backoff {
    builder: ExponentialBuilder,
    delays: <ExponentialBuilder as BackoffBuilder>::Backoff,
    max: Duration,
    /// After a failure only an operator can fix: every delay is `max` until a session is up.
    longest: bool,
}

impl Backoff {
    /// Delays from `min` to `max` (`min` is raised to `max` if above it).
    pub(super) fn new(min: Duration, max: Duration) -> Backoff {
        let builder = ExponentialBuilder::new()
            .with_min_delay(min.min(max))
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Backoff { builder, delays: builder.build(), max, longest: false }
    }

    /// The delay before the next attempt, after a failure retrying may cure.
    pub(super) fn next_delay(&mut self) -> Duration {
        if self.longest {
            return self.max;
        }
        // The iterator is unbounded (`without_max_times`); `max` covers the impossible end.
        self.delays.next().unwrap_or(self.max).min(self.max)
    }

    /// The delay after a failure retrying soon cannot cure (the edge refuses this device): the
    /// longest, and so is every delay after it until [`Backoff::reset`].
    pub(super) fn longest(&mut self) -> Duration {
        self.longest = true;
        self.max
    }

    /// A session is up: start again from `min`.
    pub(super) fn reset(&mut self) {
        self.delays = self.builder.build();
        self.longest = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_millis(1_500);

    /// backon doubles in f32 seconds: a microsecond of rounding either way is not a bug.
    const ROUNDING: Duration = Duration::from_micros(1);

    /// Each delay lies in [base, min(2 · base, MAX)] where base doubles from MIN up to MAX.
    fn assert_schedule(b: &mut Backoff, attempts: usize) {
        let mut base = MIN;
        for i in 0..attempts {
            let d = b.next_delay();
            assert!(d + ROUNDING >= base, "attempt {i}: {d:?} below the un-jittered {base:?}");
            let top = (base * 2 + ROUNDING).min(MAX);
            assert!(d <= top, "attempt {i}: {d:?} above {top:?}");
            assert!(d >= MIN && d <= MAX, "attempt {i}: {d:?} outside [{MIN:?}, {MAX:?}]");
            base = (base * 2).min(MAX);
        }
    }

    #[test]
    fn delays_grow_from_min_to_max_and_stay_within_them() {
        // Jitter is random: many schedules, each checked against the bounds.
        for _ in 0..200 {
            let mut b = Backoff::new(MIN, MAX);
            assert_schedule(&mut b, 12);
            // At the ceiling: exactly MAX, for as long as it takes.
            for _ in 0..20 {
                assert_eq!(b.next_delay(), MAX);
            }
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let firsts: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| Backoff::new(MIN, MAX).next_delay()).collect();
        assert!(firsts.len() > 1, "50 first delays all equal: {firsts:?}");
    }

    #[test]
    fn a_refusal_waits_the_longest_until_a_session_resets_it() {
        let mut b = Backoff::new(MIN, MAX);
        b.next_delay();
        assert_eq!(b.longest(), MAX);
        // A later ordinary failure does not shorten the wait again.
        assert_eq!(b.next_delay(), MAX);
        assert_eq!(b.next_delay(), MAX);
        b.reset();
        assert_schedule(&mut b, 6);
    }

    #[test]
    fn reset_starts_again_from_min() {
        let mut b = Backoff::new(MIN, MAX);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= MIN * 2);
    }

    #[test]
    fn min_equal_to_max_is_a_constant_delay() {
        let mut b = Backoff::new(MAX, MAX);
        for _ in 0..5 {
            assert_eq!(b.next_delay(), MAX);
        }
        // A min above the max is held to the max.
        assert_eq!(Backoff::new(MAX * 2, MAX).next_delay(), MAX);
    }
}
