//! Frames over a byte stream: a cancel-safe reader (`check → parse`, mini-redis style) and
//! helpers to write control messages.
//!
//! The reader keeps unparsed bytes in its own buffer, so dropping a pending
//! [`FrameReader::next`] (e.g. in a `select!`) loses nothing. It never buffers more than one
//! frame beyond what the header declares: `frame::check` enforces [`Limits`] on the header
//! before the payload is read.

use tandem_codec::frame::{self, HEADER_LEN};
use tandem_codec::{Body, Control, Frame, FrameError, FrameMeta, Limits};
use tokio::io::{AsyncRead, AsyncReadExt};

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

/// Best-effort frame id etc. from a header that failed validation (bytes 8..26).
fn header_meta(buf: &[u8]) -> Option<FrameMeta> {
    let h = buf.get(..26)?;
    if h.get(..4)? != frame::MAGIC {
        return None;
    }
    let u64_at = |o: usize| h.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let u32_at = |o: usize| h.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let u16_at = |o: usize| h.get(o..o + 2).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes);
    Some(FrameMeta { frame_id: u64_at(8)?, plan_epoch: u32_at(16)?, model_id: u32_at(20)?, point: u16_at(24)? })
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader enforcing `limits`.
    pub fn new(rd: R, limits: Limits) -> Self {
        FrameReader { rd, buf: Vec::with_capacity(16 << 10), start: 0, limits }
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

/// Append a control frame (meta all zero) to `out`; returns its length.
pub fn put_control(msg: Control, out: &mut Vec<u8>) -> Result<usize, FrameError> {
    frame::write(&Frame { meta: FrameMeta::default(), body: Body::Control(msg) }, out)
}

/// The control message in a frame, if it is one.
pub fn as_control(frame: &Frame) -> Option<&Control> {
    match &frame.body {
        Body::Control(c) => Some(c),
        Body::Tensor(_) => None,
    }
}

/// Header length, re-exported for byte accounting.
pub const FRAME_HEADER_LEN: usize = HEADER_LEN;
