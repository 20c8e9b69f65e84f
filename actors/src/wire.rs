//! Frames over a byte stream, both ways, for the device's link and the edge's connections alike
//! (mini-redis' `Connection`, split in its two halves).
//!
//! - [`FrameReader`] is cancel-safe (`check → parse`): it keeps unparsed bytes in its own
//!   buffer, so dropping a pending [`FrameReader::next`] (e.g. in a `select!`) loses nothing. It
//!   never buffers more than one frame beyond what the header declares: `frame::check` enforces
//!   [`Limits`] on the header before the payload is read.
//! - [`FrameWriter`] owns "encode, write under a timeout, count the bytes": every frame either
//!   side sends goes through it, so a stalled peer always surfaces as [`WriteError::Timeout`]
//!   and the byte counters count exactly what went out.
//!
//! Header fields are read through codec ([`frame::peek_meta`]); nothing here knows offsets.

use std::time::Duration;

use prometheus::IntCounter;
use tandem_codec::frame;
use tandem_codec::{Body, Control, Frame, FrameError, FrameMeta, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What one read produced.
#[derive(Debug)]
pub enum Read {
    /// A valid frame and its length on the wire.
    Frame { frame: Frame, wire_len: usize },
    /// An invalid frame. `meta` is what the header said, when it could be read (for the
    /// frame id of the error reply). `resync` tells whether the stream is still usable: the
    /// header was valid (so its length is known and was skipped) and only the payload was bad
    /// (CRC, control message). Otherwise the stream is unusable from here.
    Bad { meta: Option<FrameMeta>, error: FrameError, resync: bool, wire_len: usize },
}

/// Why the stream ended.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Socket error.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed in the middle of a frame.
    #[error("connection closed inside a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
}

/// Reads frames from `R`.
#[derive(Debug)]
pub struct FrameReader<R> {
    rd: R,
    buf: Vec<u8>,
    start: usize,
    limits: Limits,
}

/// Best-effort provenance of a frame that failed validation (for the frame id of the error
/// reply); codec knows where the fields are.
fn header_meta(buf: &[u8]) -> Option<FrameMeta> {
    frame::peek_meta(buf).ok()
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader enforcing `limits`.
    pub fn new(rd: R, limits: Limits) -> Self {
        FrameReader { rd, buf: Vec::with_capacity(16 << 10), start: 0, limits }
    }

    /// Enforce `limits` from the next frame on (the edge reads `Hello` under small limits and
    /// widens them once the peer is authenticated).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The next frame; `Ok(None)` on a clean end of stream (between frames). Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Read>, ReadError> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            match frame::check(pending, &self.limits) {
                Ok(total) => {
                    let parsed = frame::parse(pending, &self.limits);
                    let meta = header_meta(pending);
                    self.consume(total);
                    return Ok(Some(match parsed {
                        Ok(frame) => Read::Frame { frame, wire_len: total },
                        Err(error) => Read::Bad { meta, error, resync: true, wire_len: total },
                    }));
                }
                Err(FrameError::Incomplete) => {}
                Err(error) => {
                    let meta = header_meta(pending);
                    let wire_len = pending.len();
                    // The stream cannot be resynchronised: drop what is buffered.
                    self.buf.clear();
                    self.start = 0;
                    return Ok(Some(Read::Bad { meta, error, resync: false, wire_len }));
                }
            }
            if self.start > 0 && self.start * 2 >= self.buf.len() {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(16 << 10);
            let n = self.rd.read_buf(&mut self.buf).await?;
            if n == 0 {
                let buffered = self.buf.len() - self.start;
                return if buffered == 0 { Ok(None) } else { Err(ReadError::Truncated { buffered }) };
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message could not be framed (a bound of the control protocol exceeded); nothing was
    /// written and the stream is still usable.
    #[error("encode: {0}")]
    Encode(#[from] FrameError),
    /// The peer did not take the bytes in time; the stream is unusable from here.
    #[error("write timed out after {} ms", after.as_millis())]
    Timeout {
        /// The write timeout.
        after: Duration,
    },
    /// Socket error; the stream is unusable from here.
    #[error("write: {0}")]
    Io(#[from] std::io::Error),
}

impl WriteError {
    /// Whether the stream can still be used (only an encoding failure leaves it intact).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, WriteError::Encode(_))
    }
}

/// Writes frames to `W`: each one whole, under a timeout, counted in bytes once it is out.
#[derive(Debug)]
pub struct FrameWriter<W> {
    wr: W,
    buf: Vec<u8>,
    timeout: Duration,
    sent: Option<IntCounter>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer giving every write (and the shutdown) `timeout`, counting nothing yet.
    pub fn new(wr: W, timeout: Duration) -> Self {
        FrameWriter { wr, buf: Vec::with_capacity(1024), timeout, sent: None }
    }

    /// Count the bytes of every frame written from now on in `sent`. Bytes written before (a
    /// device's `Hello`, an edge's refusal of a connection over its limit) stay uncounted.
    pub fn counting(mut self, sent: IntCounter) -> Self {
        self.sent = Some(sent);
        self
    }

    /// Frame `msg` (meta all zero) and write it; its length on the wire.
    pub async fn control(&mut self, msg: &Control) -> Result<usize, WriteError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = match frame::write_control(&FrameMeta::default(), msg, &mut buf) {
            Ok(_) => self.frame(&buf).await,
            Err(e) => Err(WriteError::Encode(e)),
        };
        self.buf = buf;
        result
    }

    /// Write a whole frame already encoded (a tensor frame from the encoder); its length.
    pub async fn frame(&mut self, bytes: &[u8]) -> Result<usize, WriteError> {
        match tokio::time::timeout(self.timeout, self.wr.write_all(bytes)).await {
            Ok(Ok(())) => {
                if let Some(sent) = &self.sent {
                    sent.inc_by(bytes.len() as u64);
                }
                Ok(bytes.len())
            }
            Ok(Err(e)) => Err(WriteError::Io(e)),
            Err(_) => Err(WriteError::Timeout { after: self.timeout }),
        }
    }

    /// Write `bytes` — part of a frame — and flush them, uncounted: how a fault test cuts a
    /// link in the middle of a frame. The stream is unusable afterwards.
    pub async fn write_partial(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let wr = &mut self.wr;
        match tokio::time::timeout(self.timeout, async {
            wr.write_all(bytes).await?;
            wr.flush().await
        })
        .await
        {
            Ok(r) => r.map_err(WriteError::Io),
            Err(_) => Err(WriteError::Timeout { after: self.timeout }),
        }
    }

    /// Close the write side (TLS: `close_notify`), under the timeout. Best effort: the peer may
    /// already be gone.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.timeout, self.wr.shutdown()).await;
    }
}

/// The control message in a frame, if it is one.
pub fn as_control(frame: &Frame) -> Option<&Control> {
    match &frame.body {
        Body::Control(c) => Some(c),
        Body::Tensor(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::IntCounter;
    use tandem_codec::control::MAX_REASON_LEN;
    use tandem_codec::{Control, Limits, RejectCode};

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(50);

    fn counter() -> IntCounter {
        IntCounter::new("test_bytes_total", "test").unwrap()
    }

    #[tokio::test]
    async fn a_control_frame_is_written_whole_and_counted() {
        let (near, far) = tokio::io::duplex(1 << 16);
        let sent = counter();
        let mut wr = FrameWriter::new(near, TIMEOUT).counting(sent.clone());
        let n = wr.control(&Control::Ping { nonce: 3 }).await.unwrap();
        let m = wr.control(&Control::Bye).await.unwrap();
        assert_eq!(sent.get(), (n + m) as u64);
        let mut reader = FrameReader::new(far, Limits::default());
        for (want, len) in [(Control::Ping { nonce: 3 }, n), (Control::Bye, m)] {
            match reader.next().await.unwrap() {
                Some(Read::Frame { frame, wire_len }) => {
                    assert_eq!(as_control(&frame), Some(&want));
                    assert_eq!(wire_len, len);
                }
                other => panic!("expected {want:?}, read {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_unencodable_message_writes_nothing_and_leaves_the_stream_usable() {
        let (near, far) = tokio::io::duplex(1 << 16);
        let sent = counter();
        let mut wr = FrameWriter::new(near, TIMEOUT).counting(sent.clone());
        let reject = Control::Reject { code: RejectCode::Other, reason: "r".repeat(MAX_REASON_LEN + 1) };
        let err = wr.control(&reject).await.unwrap_err();
        assert!(matches!(err, WriteError::Encode(_)) && !err.is_fatal(), "{err:?}");
        assert_eq!(sent.get(), 0);
        wr.control(&Control::Bye).await.unwrap();
        let mut reader = FrameReader::new(far, Limits::default());
        assert!(
            matches!(reader.next().await.unwrap(), Some(Read::Frame { frame, .. }) if as_control(&frame) == Some(&Control::Bye))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_is_a_timeout_and_nothing_is_counted() {
        // 64 bytes of buffer, nobody reading: a probe of 100 padding bytes cannot go out.
        let (near, _far) = tokio::io::duplex(64);
        let sent = counter();
        let mut wr = FrameWriter::new(near, TIMEOUT).counting(sent.clone());
        let err = wr.control(&Control::Probe { seq: 1, sent_at_us: 0, padding_len: 100 }).await.unwrap_err();
        assert!(matches!(err, WriteError::Timeout { after: TIMEOUT }) && err.is_fatal(), "{err:?}");
        assert_eq!(sent.get(), 0);
    }

    #[tokio::test]
    async fn bytes_before_counting_starts_stay_uncounted() {
        let (near, _far) = tokio::io::duplex(1 << 16);
        let mut wr = FrameWriter::new(near, TIMEOUT);
        wr.control(&Control::Bye).await.unwrap();
        let sent = counter();
        let mut wr = wr.counting(sent.clone());
        assert_eq!(sent.get(), 0);
        let n = wr.frame(&[0u8; 10]).await.unwrap();
        assert_eq!((n, sent.get()), (10, 10));
    }

    #[test]
    fn the_meta_of_a_short_or_foreign_header_is_unknown() {
        let mut buf = Vec::new();
        frame::write_control(&FrameMeta { frame_id: 9, ..FrameMeta::default() }, &Control::Bye, &mut buf).unwrap();
        assert_eq!(header_meta(&buf).map(|m| m.frame_id), Some(9));
        // Cut inside the meta varints (magic, version, type, then the frame id).
        assert_eq!(header_meta(&buf[..4]), None);
        assert_eq!(header_meta(b"GET / HTTP/1.1\r\n"), None);
    }
}
