//! An in-process link shaper: a token bucket whose rate follows a bandwidth trace, plus a one-way
//! delay in each direction, between the link actor and its TCP socket.
//!
//! [`Shaper::wrap`] puts pump tasks between the caller and a byte stream (a `TcpStream` in the
//! runtime, a `tokio::io::duplex` pipe in tests) and hands back the caller's end of an in-memory
//! pipe. Bytes in each direction are **paced** — a byte leaves only when that direction's bucket
//! holds a token for it — then held for the one-way delay (`delay_ms` device → edge,
//! `return_delay_ms` edge → device) and written on. So the socket really sees the trace's rate, and
//! the link's `write_all` blocks when the bucket is empty (backpressure through a bounded pipe and
//! a bounded delay line). Both directions follow the same trace, as the planner's link model has one
//! bandwidth for the tensor and the result.
//!
//! All time is `tokio::time`, so the shaper runs under `#[tokio::test(start_paused = true)]`.
//! The decisions — the rate at a time ([`Trace::rate_bps_at`]) and how long to wait for tokens
//! ([`TokenBucket`]) — are pure functions of their arguments.
//!
//! # Trace files (`configs/links/*.toml`)
//!
//! ```toml
//! bucket_bytes = 0          # token bucket depth (burst after idle), bytes; default 0 = pure serialisation
//! delay_ms = 5              # device → edge one-way delay; default 0
//! return_delay_ms = 5       # edge → device one-way delay; default 0
//! repeat_ms = 20000         # optional: the trace loops with this period
//!
//! [[step]]                  # from at_ms on, the rate is mbps (reached linearly over ramp_ms)
//! at_ms = 0
//! mbps = 10.0
//! [[step]]
//! at_ms = 3000
//! mbps = 1.0
//! ramp_ms = 0               # default 0: a step
//!
//! [jitter]                  # optional: bursty, seeded multiplicative noise on top of the steps
//! seed = 7
//! period_ms = 200           # a new factor every period
//! spread = 0.6              # factor drawn uniformly in [1 - spread, 1 + spread]
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::ActorError;

/// Lowest rate a trace may ask for (1 kbit/s): a zero rate would never deliver a byte.
pub const MIN_RATE_BPS: f64 = 1e3;
/// Bytes moved per pump step at most (about one jumbo segment).
const QUANTUM: usize = 8 * 1024;
/// Bytes scheduled as one unit (a packet).
const MTU: usize = 1500;
/// Half of tokio's timer resolution (see [`release`]).
const HALF_TICK: Duration = Duration::from_micros(500);
/// Chunks held in each delay line (full: the pump waits — backpressure).
const DELAY_LINE: usize = 256;
/// Capacity of the in-memory pipe between the link and the pumps, bytes: like a socket's send
/// buffer, large enough that a probe burst does not block the link's loop in `write_all` (it
/// must keep reading replies to time them).
const PIPE_BYTES: usize = 256 * 1024;

/// One segment of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Start of the step, ms since the trace started.
    pub at_ms: u64,
    /// Rate from here on, Mbit/s.
    pub mbps: f64,
    /// Reach `mbps` linearly from the previous step's rate over this long. Default 0.
    #[serde(default)]
    pub ramp_ms: u64,
}

/// Seeded multiplicative noise (a bursty, cellular-like link).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jitter {
    /// Seed: the same seed gives the same trace.
    pub seed: u64,
    /// A new factor every this many ms.
    pub period_ms: u64,
    /// Factors are uniform in `[1 - spread, 1 + spread]`; must be in `0..1`.
    pub spread: f64,
}

/// A bandwidth trace (see the module docs for the file format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// Token bucket depth, bytes. Default 0: every byte is serialised at the rate, as on a real
    /// link of that rate. A bucket deeper than a frame lets an occasional frame out all at once,
    /// and neither the estimator nor the planner then sees the trace's rate.
    #[serde(default = "default_bucket")]
    pub bucket_bytes: u64,
    /// Device → edge one-way delay, ms. Default 0.
    #[serde(default)]
    pub delay_ms: u64,
    /// Edge → device one-way delay, ms. Default 0.
    #[serde(default)]
    pub return_delay_ms: u64,
    /// Loop the trace with this period; unset = the last step lasts forever.
    #[serde(default)]
    pub repeat_ms: Option<u64>,
    /// The steps, `at_ms` strictly increasing, the first at 0.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
    /// Optional noise.
    #[serde(default)]
    pub jitter: Option<Jitter>,
}

fn default_bucket() -> u64 {
    0
}

impl Trace {
    /// A constant rate (tests, `--fixed` measurements).
    pub fn constant(mbps: f64) -> Trace {
        Trace {
            bucket_bytes: default_bucket(),
            delay_ms: 0,
            return_delay_ms: 0,
            repeat_ms: None,
            steps: vec![Step { at_ms: 0, mbps, ramp_ms: 0 }],
            jitter: None,
        }
    }

    /// Parse and validate.
    pub fn from_toml_str(text: &str) -> Result<Trace, ActorError> {
        let t: Trace = toml::from_str(text).map_err(|e| ActorError::Config(format!("link trace: {e}")))?;
        t.validate()?;
        Ok(t)
    }

    /// Read, parse and validate a trace file.
    pub fn load(path: &Path) -> Result<Trace, ActorError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ActorError::Config(format!("reading {}: {e}", path.display())))?;
        Trace::from_toml_str(&text).map_err(|e| ActorError::Config(format!("{}: {e}", path.display())))
    }

    /// Cross-field rules.
    pub fn validate(&self) -> Result<(), ActorError> {
        let bad = |m: String| Err(ActorError::Config(format!("link trace: {m}")));
        if self.steps.is_empty() {
            return bad("at least one [[step]] is needed".into());
        }
        if self.steps[0].at_ms != 0 {
            return bad("the first step must be at at_ms = 0".into());
        }
        for w in self.steps.windows(2) {
            if w[1].at_ms <= w[0].at_ms {
                return bad(format!(
                    "steps must be in strictly increasing at_ms order ({} then {})",
                    w[0].at_ms, w[1].at_ms
                ));
            }
            if w[0].ramp_ms > w[1].at_ms - w[0].at_ms {
                return bad(format!("the ramp of the step at {} ms runs past the next step", w[0].at_ms));
            }
        }
        for s in &self.steps {
            if !(s.mbps.is_finite() && s.mbps * 1e6 >= MIN_RATE_BPS && s.mbps <= 100_000.0) {
                return bad(format!("mbps must be in [0.001, 100000], got {} at {} ms", s.mbps, s.at_ms));
            }
        }
        if self.bucket_bytes > 64 << 20 {
            return bad(format!("bucket_bytes must be at most 64 MiB, got {}", self.bucket_bytes));
        }
        if self.delay_ms > 10_000 || self.return_delay_ms > 10_000 {
            return bad("delays must be at most 10000 ms".into());
        }
        if let Some(r) = self.repeat_ms
            && r <= self.steps.last().map_or(0, |s| s.at_ms)
        {
            return bad("repeat_ms must be beyond the last step".into());
        }
        if let Some(j) = &self.jitter
            && (j.period_ms == 0 || !(0.0..1.0).contains(&j.spread))
        {
            return bad("jitter needs period_ms >= 1 and spread in [0, 1)".into());
        }
        Ok(())
    }

    /// The rate at `t` since the trace started, bits per second. Pure.
    pub fn rate_bps_at(&self, t: Duration) -> f64 {
        let mut ms = t.as_secs_f64() * 1e3;
        if let Some(r) = self.repeat_ms {
            ms %= r as f64;
        }
        let i = self.steps.iter().rposition(|s| s.at_ms as f64 <= ms).unwrap_or(0);
        let s = &self.steps[i];
        let mut mbps = s.mbps;
        if i > 0 && s.ramp_ms > 0 {
            let into = ms - s.at_ms as f64;
            if into < s.ramp_ms as f64 {
                let prev = self.steps[i - 1].mbps;
                mbps = prev + (s.mbps - prev) * into / s.ramp_ms as f64;
            }
        }
        if let Some(j) = &self.jitter {
            let period = (t.as_millis() as u64) / j.period_ms;
            let u = unit(j.seed, period);
            mbps *= 1.0 - j.spread + 2.0 * j.spread * u;
        }
        (mbps * 1e6).max(MIN_RATE_BPS)
    }
}

/// A deterministic uniform number in `[0, 1)` from (seed, index): splitmix64.
fn unit(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A token bucket in bytes, kept as a departure schedule so that late timers lose nothing.
/// Pure: time and rate are passed in.
///
/// Bytes leave one after another at the rate (serialisation); after an idle spell up to
/// `depth` bytes may leave at once (the bucket filled while idle). While sending continuously
/// the schedule, not the clock, sets each departure, so oversleeping a millisecond-granular
/// timer delays a chunk but does not lower the rate.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    depth: f64,
    /// When the wire is free again (the last scheduled bit has left).
    next_free: Duration,
}

impl TokenBucket {
    /// A full bucket of `depth` bytes at time `now`.
    pub fn new(depth: u64, now: Duration) -> TokenBucket {
        TokenBucket { depth: depth as f64, next_free: now }
    }

    /// Bytes arrive after the sender was idle: at most `depth` bytes of credit.
    pub fn arrive(&mut self, now: Duration, rate_bps: f64) {
        let credit = Duration::from_secs_f64(self.depth * 8.0 / rate_bps.max(MIN_RATE_BPS));
        self.next_free = self.next_free.max(now.saturating_sub(credit));
    }

    /// Schedule `bytes` at `rate_bps`: when their last bit has left.
    pub fn schedule(&mut self, bytes: usize, rate_bps: f64) -> Duration {
        self.next_free += Duration::from_secs_f64(bytes as f64 * 8.0 / rate_bps.max(MIN_RATE_BPS));
        self.next_free
    }
}

/// A trace and the instant it started; cloned into every connection so the trace runs on across
/// reconnections.
#[derive(Clone, PartialEq)]
pub struct Shaper {
    trace: Arc<Trace>,
    origin: Instant,
}

impl fmt::Debug for Shaper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shaper")
            .field("steps", &self.trace.steps.len())
            .field("delay_ms", &self.trace.delay_ms)
            .finish()
    }
}

impl Shaper {
    /// Start `trace` now (`tokio::time::Instant`).
    pub fn new(trace: Trace) -> Shaper {
        Shaper { trace: Arc::new(trace), origin: Instant::now() }
    }

    /// The trace.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Time since the trace started.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    /// The rate in force now, bits per second.
    pub fn rate_bps_now(&self) -> f64 {
        self.trace.rate_bps_at(self.elapsed())
    }

    /// Shape `io`: returns the caller's end of a pipe whose writes reach `io` paced and delayed
    /// and whose reads come from `io` delayed. Spawns four tasks that end when either side closes.
    pub fn wrap<S>(&self, io: S) -> DuplexStream
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (near, far) = tokio::io::duplex(PIPE_BYTES);
        let (far_rd, far_wr) = tokio::io::split(far);
        let (io_rd, io_wr) = tokio::io::split(io);
        let up_delay = Duration::from_millis(self.trace.delay_ms);
        let down_delay = Duration::from_millis(self.trace.return_delay_ms);
        let (up_tx, up_rx) = mpsc::channel(DELAY_LINE);
        let (down_tx, down_rx) = mpsc::channel(DELAY_LINE);
        tokio::spawn(pace(far_rd, up_tx, self.clone(), up_delay));
        tokio::spawn(release(up_rx, io_wr));
        tokio::spawn(pace(io_rd, down_tx, self.clone(), down_delay));
        tokio::spawn(release(down_rx, far_wr));
        near
    }
}

/// Read what the link writes, let it through at the trace's rate, stamp it with its release time.
async fn pace<R: AsyncRead + Unpin>(mut rd: R, out: mpsc::Sender<(Vec<u8>, Instant)>, shaper: Shaper, delay: Duration) {
    let mut bucket = TokenBucket::new(shaper.trace.bucket_bytes, shaper.elapsed());
    let mut buf = vec![0u8; QUANTUM];
    let mut busy = false;
    loop {
        // Only a read that had to wait means the sender was idle (and the bucket filled).
        let n = match futures_read(&mut rd, &mut buf, &mut busy).await {
            Some(n) => n,
            None => return,
        };
        if !busy {
            let now = shaper.elapsed();
            bucket.arrive(now, shaper.trace.rate_bps_at(now));
        }
        for chunk in buf[..n].chunks(MTU) {
            let rate = shaper.trace.rate_bps_at(shaper.elapsed());
            let leaves = bucket.schedule(chunk.len(), rate);
            let now = shaper.elapsed();
            // The chunk's delay runs from its scheduled departure, not from when this task woke:
            // tokio timers fire up to a millisecond late, and stamping the wake-up time would add
            // that lateness once here and again in the delay line.
            let departs = if leaves > now {
                tokio::time::sleep(leaves - now).await;
                shaper.origin + leaves
            } else {
                Instant::now()
            };
            if out.send((chunk.to_vec(), departs + delay)).await.is_err() {
                return;
            }
        }
        busy = true;
    }
}

/// Read once; `busy` is set false when the read had to wait for data (the sender was idle).
async fn futures_read<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut [u8], busy: &mut bool) -> Option<usize> {
    use std::future::Future;
    use std::task::Poll;
    let mut read = std::pin::pin!(rd.read(buf));
    let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let r = match first {
        Poll::Ready(r) => r,
        Poll::Pending => {
            *busy = false;
            read.await
        }
    };
    match r {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Write each chunk once its release time has come; shut the writer down at the end.
///
/// tokio's timer wheel rounds a deadline up to the next millisecond, so sleeping until `at` would
/// release every chunk 0–1 ms late — a bias of about half a millisecond per direction that the
/// emulated link does not have. Asking for half a tick earlier centres the error on zero (a chunk
/// leaves within ±0.5 ms of its time); a whole-millisecond `at`, as in the paused-time tests, is
/// still released exactly on time.
async fn release<W: AsyncWrite + Unpin>(mut rx: mpsc::Receiver<(Vec<u8>, Instant)>, mut wr: W) {
    while let Some((chunk, at)) = rx.recv().await {
        tokio::time::sleep_until(at.checked_sub(HALF_TICK).unwrap_or(at)).await;
        if wr.write_all(&chunk).await.is_err() {
            return;
        }
    }
    // The other side may be gone already.
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_trace() -> Trace {
        Trace::from_toml_str(
            "bucket_bytes = 4096\n[[step]]\nat_ms = 0\nmbps = 10.0\n[[step]]\nat_ms = 1000\nmbps = 1.0\n",
        )
        .unwrap()
    }

    #[test]
    fn traces_validate_and_interpolate() {
        let t = step_trace();
        assert_eq!(t.rate_bps_at(Duration::from_millis(999)), 10e6);
        assert_eq!(t.rate_bps_at(Duration::from_millis(1000)), 1e6);
        let ramp = Trace::from_toml_str("[[step]]\nat_ms = 0\nmbps = 10.0\n[[step]]\nat_ms = 1000\nmbps = 2.0\nramp_ms = 1000\n[[step]]\nat_ms = 2000\nmbps = 2.0\n").unwrap();
        assert!((ramp.rate_bps_at(Duration::from_millis(1500)) - 6e6).abs() < 1.0);
        assert!(Trace::from_toml_str("[[step]]\nat_ms = 5\nmbps = 1.0\n").is_err());
        assert!(Trace::from_toml_str("[[step]]\nat_ms = 0\nmbps = 0.0\n").is_err());
        assert!(Trace::from_toml_str("[[step]]\nat_ms = 0\nmbsp = 1.0\n").is_err());
        for f in ["step-10-1", "high-middle-low", "ramp", "cellular"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/links/{f}.toml"));
            Trace::load(&path).unwrap();
        }
    }

    #[test]
    fn jitter_is_seeded_and_bounded() {
        let mut t = Trace::constant(4.0);
        t.jitter = Some(Jitter { seed: 3, period_ms: 100, spread: 0.5 });
        let a: Vec<f64> = (0..50).map(|i| t.rate_bps_at(Duration::from_millis(i * 100))).collect();
        let b: Vec<f64> = (0..50).map(|i| t.rate_bps_at(Duration::from_millis(i * 100))).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&r| (2e6..=6e6).contains(&r)));
        assert!(a.iter().any(|&r| r < 3e6) && a.iter().any(|&r| r > 5e6));
    }

    #[test]
    fn the_bucket_serialises_and_credits_idle_time() {
        let ms = Duration::from_millis;
        let mut b = TokenBucket::new(1000, ms(0));
        // 8000 bit/s: 1000 bytes take a second.
        assert_eq!(b.schedule(1000, 8000.0), ms(1000));
        assert_eq!(b.schedule(500, 8000.0), ms(1500));
        // Idle until 10 s: at most a full bucket (1 s) of credit.
        b.arrive(ms(10_000), 8000.0);
        assert_eq!(b.schedule(1000, 8000.0), ms(10_000));
        assert_eq!(b.schedule(1000, 8000.0), ms(11_000));
        // Arriving while still busy changes nothing.
        b.arrive(ms(10_500), 8000.0);
        assert_eq!(b.schedule(0, 8000.0), ms(11_000));
    }

    /// Push `total` bytes through a shaped pipe; return (simulated) seconds until the far end
    /// has read them all.
    async fn push(shaper: &Shaper, total: usize) -> f64 {
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let mut near = shaper.wrap(a);
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            let data = vec![7u8; total];
            near.write_all(&data).await.unwrap();
            near
        });
        let mut got = 0;
        let mut buf = vec![0u8; 8192];
        while got < total {
            let n = b.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got += n;
        }
        let secs = start.elapsed().as_secs_f64();
        drop(writer.await.unwrap());
        secs
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_per_simulated_second_follow_the_rate() {
        for mbps in [1.0, 10.0] {
            let mut trace = Trace::constant(mbps);
            trace.bucket_bytes = 4096;
            let shaper = Shaper::new(trace);
            let total = (mbps * 1e6 / 8.0 * 2.0) as usize; // two seconds' worth
            let secs = push(&shaper, total).await;
            let rate = total as f64 * 8.0 / secs;
            // The bucket starts full: a 4 KiB head start.
            assert!((rate / (mbps * 1e6) - 1.0).abs() < 0.02, "{mbps} Mbit/s: got {rate} bit/s over {secs} s");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_changes_the_rate_and_delay_adds_up() {
        let mut trace = step_trace();
        trace.delay_ms = 50;
        let shaper = Shaper::new(trace);
        // First second at 10 Mbit/s: 1.25 MB; then 125 kB more takes one more second at 1 Mbit/s.
        let secs = push(&shaper, 1_250_000 + 125_000).await;
        assert!((secs - 2.05).abs() < 0.03, "took {secs} s");
        // Return direction: paced at the same rate, then held for the return delay. 12,500 bytes
        // at 1 Mbit/s take 100 ms to serialise, plus 30 ms.
        let mut trace = Trace::constant(1.0);
        trace.return_delay_ms = 30;
        let shaper = Shaper::new(trace);
        let (mut far, near_io) = tokio::io::duplex(64 * 1024);
        let mut near = shaper.wrap(near_io);
        let start = Instant::now();
        let sent = vec![5u8; 12_500];
        far.write_all(&sent).await.unwrap();
        let mut buf = vec![0u8; sent.len()];
        near.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, sent);
        assert_eq!(start.elapsed(), Duration::from_millis(130));
    }
}
