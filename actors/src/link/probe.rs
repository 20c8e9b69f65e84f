//! The active probe's state machine: what a [`LinkCommand::Probe`] does between the command and
//! its [`ProbeReport`].
//!
//! ```text
//!  Idle ──request──▶ Queued ──start (link idle, or PROBE_WAIT_MAX)──▶ Pinged ──Pong──▶ Bursting
//!   ▲                                                                   │              │
//!   └──────────── report (every ProbeReply in, or the deadline) ◀───────┴──────────────┘
//! ```
//!
//! A probe asked for while frames are in flight waits until they are answered — the link takes
//! no new frame meanwhile — so that its ping and bursts meet an idle link; after
//! [`PROBE_WAIT_MAX`] it starts anyway, so a slow edge cannot hold frames back for long. The
//! bursts are written only once the `Pong` is in: written right behind the ping, a burst would
//! share the ping's packets and its round trip would include the burst's serialisation (12 ms
//! per 1,500 bytes at 1 Mbit/s). Frames wait for that pong too (at most [`PROBE_WAIT_MAX`], in
//! case it is lost): a frame sent then would sit in front of the bursts.
//!
//! [`Prober`] holds no socket and reads no clock: the session loop passes `now` in, writes what
//! the methods hand back, and tells it what it wrote and read. So the whole protocol is tested
//! without a runtime.
//!
//! [`LinkCommand::Probe`]: super::LinkCommand::Probe

use std::time::{Duration, Instant};

use tandem_codec::Control;
use tandem_codec::control::MAX_PROBE_PADDING;
use tokio::sync::oneshot;

use super::msg::{Burst, LinkError, ProbeReport};

/// The longest a probe waits for the frames in flight to be answered before it starts anyway,
/// and the longest frames wait for a probe's pong.
pub(super) const PROBE_WAIT_MAX: Duration = Duration::from_millis(250);

/// Bursts per probe, at most.
const MAX_BURSTS: u32 = 16;

type Reply = oneshot::Sender<Result<ProbeReport, LinkError>>;

/// A probe asked for and not started.
#[derive(Debug)]
struct Queued {
    since: Instant,
    burst_bytes: u32,
    count: u32,
    reply: Reply,
}

/// A probe in progress: its `Ping` written; once that is answered, `count` bursts, answered in
/// order.
#[derive(Debug)]
struct Running {
    nonce: u64,
    ping_sent: Instant,
    rtt: Option<Duration>,
    /// Padding per burst.
    padding_len: u32,
    /// Per burst written: wire bytes and when its first byte was written (empty until the pong).
    sent: Vec<(u64, Instant)>,
    /// Per burst: its transfer time and whether it ran from the previous reply, once its reply
    /// is in (one slot per burst to send).
    times: Vec<Option<(Duration, bool)>>,
    last_reply: Option<Instant>,
    reply: Reply,
}

impl Running {
    /// Answer with the bursts that came back (missing ones are simply absent).
    fn report(self, now: Instant) {
        let bursts = self
            .sent
            .iter()
            .zip(&self.times)
            .filter_map(|(&(bytes, _), t)| t.map(|(took, queued)| Burst { bytes, took, queued }))
            .collect();
        // The controller may have stopped waiting.
        let _ = self.reply.send(Ok(ProbeReport { rtt: self.rtt, bursts, at: now }));
    }
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    Queued(Queued),
    Running(Running),
}

/// One session's probe (at most one at a time).
#[derive(Debug, Default)]
pub(super) struct Prober {
    state: State,
}

impl Prober {
    /// A `Probe` command: queued (it starts at [`Prober::start`]), or answered `Busy` here when
    /// a probe is already queued or running.
    pub(super) fn request(&mut self, burst_bytes: u32, count: u32, reply: Reply, now: Instant) {
        if !matches!(self.state, State::Idle) {
            let _ = reply.send(Err(LinkError::Busy));
            return;
        }
        self.state = State::Queued(Queued { since: now, burst_bytes, count, reply });
    }

    /// If a queued probe may start now — nothing in flight, or it waited [`PROBE_WAIT_MAX`] —
    /// the `Ping` to write (nonce `nonce`, sent at `now`); the probe is running from here.
    pub(super) fn start(&mut self, frames_in_flight: bool, nonce: u64, now: Instant) -> Option<Control> {
        let State::Queued(q) = &self.state else { return None };
        if frames_in_flight && now.saturating_duration_since(q.since) < PROBE_WAIT_MAX {
            return None;
        }
        let State::Queued(q) = std::mem::take(&mut self.state) else { return None };
        let count = q.count.clamp(1, MAX_BURSTS) as usize;
        self.state = State::Running(Running {
            nonce,
            ping_sent: now,
            rtt: None,
            padding_len: q.burst_bytes.min(MAX_PROBE_PADDING),
            sent: Vec::with_capacity(count),
            times: vec![None; count],
            last_reply: None,
            reply: q.reply,
        });
        Some(Control::Ping { nonce })
    }

    /// Whether the link must not take a new frame now: a probe is queued, or its ping is
    /// unanswered (for at most [`PROBE_WAIT_MAX`]).
    pub(super) fn holds_frames(&self, now: Instant) -> bool {
        match &self.state {
            State::Idle => false,
            State::Queued(_) => true,
            State::Running(p) => p.rtt.is_none() && now.saturating_duration_since(p.ping_sent) < PROBE_WAIT_MAX,
        }
    }

    /// Whether a probe is on the wire (a frame written now would not be a fair sample).
    pub(super) fn is_running(&self) -> bool {
        matches!(self.state, State::Running(_))
    }

    /// A `Pong`: if it answers the running probe's ping, the round trip is taken and the bursts
    /// to write now are returned, in order (tell [`Prober::burst_sent`] about each). Any other
    /// pong (a keepalive's, a late one) gives nothing.
    pub(super) fn on_pong(&mut self, nonce: u64, now: Instant) -> Vec<Control> {
        let State::Running(p) = &mut self.state else { return Vec::new() };
        if p.nonce != nonce || p.rtt.is_some() {
            return Vec::new();
        }
        p.rtt = Some(now.saturating_duration_since(p.ping_sent));
        let padding_len = p.padding_len;
        (0..p.times.len() as u32).map(|seq| Control::Probe { seq, sent_at_us: 0, padding_len }).collect()
    }

    /// The next burst went out: `bytes` on the wire, its first byte written at `start`.
    pub(super) fn burst_sent(&mut self, bytes: u64, start: Instant) {
        if let State::Running(p) = &mut self.state
            && p.sent.len() < p.times.len()
        {
            p.sent.push((bytes, start));
        }
    }

    /// A `ProbeReply` for burst `seq`, read at `now`; the probe is reported once every burst is
    /// answered.
    pub(super) fn on_reply(&mut self, seq: u32, now: Instant) {
        let State::Running(p) = &mut self.state else { return };
        let Some(&(_, start)) = p.sent.get(seq as usize) else { return };
        // Bursts queue behind each other: time each from when the link could start on it (its
        // first byte, or the previous reply).
        let queued = p.last_reply.is_some_and(|r| r > start);
        let from = if queued { p.last_reply.unwrap_or(start) } else { start };
        if let Some(slot) = p.times.get_mut(seq as usize) {
            *slot = Some((now.saturating_duration_since(from), queued));
        }
        p.last_reply = Some(now);
        if p.times.iter().all(Option::is_some) {
            self.report(now);
        }
    }

    /// The session's periodic sweep: a probe running longer than `deadline` since its ping is
    /// reported with what came back.
    pub(super) fn on_tick(&mut self, deadline: Duration, now: Instant) {
        if let State::Running(p) = &self.state
            && now.saturating_duration_since(p.ping_sent) > deadline
        {
            self.report(now);
        }
    }

    /// The session ended: a queued or running probe is answered `Down`.
    pub(super) fn session_ended(&mut self) {
        let reply = match std::mem::take(&mut self.state) {
            State::Idle => return,
            State::Queued(q) => q.reply,
            State::Running(p) => p.reply,
        };
        let _ = reply.send(Err(LinkError::Down));
    }

    fn report(&mut self, now: Instant) {
        if let State::Running(p) = std::mem::take(&mut self.state) {
            p.report(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn requested(count: u32, now: Instant) -> (Prober, oneshot::Receiver<Result<ProbeReport, LinkError>>) {
        let (tx, rx) = oneshot::channel();
        let mut p = Prober::default();
        p.request(1_000, count, tx, now);
        (p, rx)
    }

    #[test]
    fn a_second_request_is_busy_and_the_first_goes_on() {
        let t0 = Instant::now();
        let (mut p, mut first) = requested(2, t0);
        let (tx, mut second) = oneshot::channel();
        p.request(1_000, 2, tx, t0);
        assert_eq!(second.try_recv().unwrap(), Err(LinkError::Busy));
        assert!(first.try_recv().is_err(), "the first probe was answered");
        assert!(p.start(false, 1, t0).is_some());
        let (tx, mut third) = oneshot::channel();
        p.request(1_000, 2, tx, t0);
        assert_eq!(third.try_recv().unwrap(), Err(LinkError::Busy));
    }

    #[test]
    fn a_queued_probe_waits_for_the_frames_in_flight_at_most_probe_wait_max() {
        let t0 = Instant::now();
        let (mut p, _rx) = requested(1, t0);
        assert!(p.holds_frames(t0));
        assert!(p.start(true, 1, t0 + PROBE_WAIT_MAX - MS).is_none());
        assert!(!p.is_running());
        assert_eq!(p.start(true, 7, t0 + PROBE_WAIT_MAX), Some(Control::Ping { nonce: 7 }));
        assert!(p.is_running());
        // Started: nothing more to start.
        assert!(p.start(false, 8, t0 + PROBE_WAIT_MAX).is_none());
    }

    #[test]
    fn frames_wait_for_the_pong_at_most_probe_wait_max() {
        let t0 = Instant::now();
        let (mut p, _rx) = requested(1, t0);
        p.start(false, 1, t0).unwrap();
        assert!(p.holds_frames(t0 + PROBE_WAIT_MAX - MS));
        assert!(!p.holds_frames(t0 + PROBE_WAIT_MAX), "a lost pong holds frames for ever");
        assert_eq!(p.on_pong(1, t0 + 5 * MS).len(), 1);
        assert!(!p.holds_frames(t0 + 6 * MS));
        assert!(p.is_running());
    }

    #[test]
    fn only_the_probes_own_pong_releases_the_bursts_once() {
        let t0 = Instant::now();
        let (mut p, _rx) = requested(3, t0);
        p.start(false, 4, t0).unwrap();
        assert!(p.on_pong(3, t0 + MS).is_empty(), "a keepalive's pong");
        let bursts = p.on_pong(4, t0 + 2 * MS);
        let seqs: Vec<u32> = bursts
            .iter()
            .map(|b| match b {
                Control::Probe { seq, padding_len: 1_000, .. } => *seq,
                other => panic!("not a burst: {other:?}"),
            })
            .collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert!(p.on_pong(4, t0 + 3 * MS).is_empty(), "a repeated pong");
    }

    #[test]
    fn burst_counts_and_padding_are_clamped() {
        let t0 = Instant::now();
        let (tx, _rx) = oneshot::channel();
        let mut p = Prober::default();
        p.request(u32::MAX, 100, tx, t0);
        p.start(false, 1, t0).unwrap();
        let bursts = p.on_pong(1, t0);
        assert_eq!(bursts.len(), MAX_BURSTS as usize);
        assert!(matches!(bursts[0], Control::Probe { padding_len: MAX_PROBE_PADDING, .. }));
        let (mut p, _rx) = requested(0, t0);
        p.start(false, 1, t0).unwrap();
        assert_eq!(p.on_pong(1, t0).len(), 1);
    }

    #[test]
    fn the_report_times_each_burst_from_its_first_byte_or_the_previous_reply() {
        let t0 = Instant::now();
        let (mut p, mut rx) = requested(2, t0);
        p.start(false, 1, t0).unwrap();
        p.on_pong(1, t0 + 10 * MS);
        p.burst_sent(1_100, t0 + 10 * MS);
        p.burst_sent(1_100, t0 + 11 * MS);
        p.on_reply(0, t0 + 20 * MS);
        assert!(rx.try_recv().is_err(), "reported before every burst was answered");
        // The second burst queued behind the first: timed from the first's reply.
        p.on_reply(1, t0 + 23 * MS);
        let report = rx.try_recv().unwrap().unwrap();
        assert_eq!(report.rtt, Some(10 * MS));
        assert_eq!(
            report.bursts,
            [Burst { bytes: 1_100, took: 10 * MS, queued: false }, Burst { bytes: 1_100, took: 3 * MS, queued: true }]
        );
        assert_eq!(report.at, t0 + 23 * MS);
        assert!(!p.is_running());
    }

    #[test]
    fn replies_for_bursts_not_sent_are_ignored() {
        let t0 = Instant::now();
        let (mut p, mut rx) = requested(2, t0);
        p.start(false, 1, t0).unwrap();
        p.on_pong(1, t0 + MS);
        p.burst_sent(500, t0 + MS);
        p.on_reply(1, t0 + 2 * MS);
        p.on_reply(9, t0 + 2 * MS);
        assert!(rx.try_recv().is_err());
        assert!(p.is_running());
    }

    #[test]
    fn past_the_deadline_the_probe_reports_what_came_back() {
        let deadline = 100 * MS;
        let t0 = Instant::now();
        let (mut p, mut rx) = requested(2, t0);
        p.start(false, 1, t0).unwrap();
        p.on_pong(1, t0 + MS);
        p.burst_sent(500, t0 + MS);
        p.burst_sent(500, t0 + MS);
        p.on_reply(0, t0 + 5 * MS);
        p.on_tick(deadline, t0 + deadline);
        assert!(rx.try_recv().is_err(), "reported at the deadline, not after it");
        p.on_tick(deadline, t0 + deadline + MS);
        let report = rx.try_recv().unwrap().unwrap();
        assert_eq!(report.bursts, [Burst { bytes: 500, took: 4 * MS, queued: false }]);
        assert!(!p.is_running());
    }

    #[test]
    fn a_lost_pong_reports_no_round_trip_at_the_deadline() {
        let t0 = Instant::now();
        let (mut p, mut rx) = requested(2, t0);
        p.start(false, 1, t0).unwrap();
        p.on_tick(10 * MS, t0 + 11 * MS);
        let report = rx.try_recv().unwrap().unwrap();
        assert_eq!((report.rtt, report.bursts.len()), (None, 0));
    }

    #[test]
    fn the_end_of_the_session_answers_down() {
        let t0 = Instant::now();
        let (mut queued, mut rx) = requested(1, t0);
        queued.session_ended();
        assert_eq!(rx.try_recv().unwrap(), Err(LinkError::Down));
        let (mut running, mut rx) = requested(1, t0);
        running.start(false, 1, t0).unwrap();
        running.session_ended();
        assert_eq!(rx.try_recv().unwrap(), Err(LinkError::Down));
        assert!(!running.holds_frames(t0));
        Prober::default().session_ended();
    }
}
