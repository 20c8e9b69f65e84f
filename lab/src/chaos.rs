//! The fault-injecting half of `tandem soak --faults`: runs the [`FaultSpec`]'s schedule against
//! a [`Pair`] whose device talks through a [`ChaosProxy`], scrapes the device's `/metrics` every
//! [`SCRAPE_EVERY`], and turns what it saw into [`FaultRecord`]s ([`crate::faults::recovery`]).
//! The soak's loop drives it: [`Injector::due`] says when to call [`Injector::inject`] (or
//! [`Injector::end_window`]), [`Injector::scrape`] runs on its own tick.

use std::net::SocketAddr;
use std::time::Instant;

use tandem_actors::report::{DeviceReady, ReportFileError, read_json};

use crate::Tandem;
use crate::faults::{DeviceSample, FaultKind, FaultRecord, FaultSpec, Planned, recovery};
use crate::pair::Pair;
use crate::proxy::ChaosProxy;
use crate::scrape::{device_sample, get_metrics};

/// Longest wait for the proxy to report a cut or a corrupt byte as done: the device sends a
/// frame a camera interval, so anything longer means no traffic (link down, device stuck).
const INJECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the soak loop should do next for the faults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Due {
    /// Inject the next planned fault at this time (s since the device started).
    Inject(f64),
    /// Close the open collapse or slow window at this time.
    EndWindow(f64),
    /// Nothing left.
    Nothing,
}

/// One fault under way or done, with the two samples its recovery is measured from.
struct Entry {
    record: FaultRecord,
    before: Option<DeviceSample>,
    reference: Option<DeviceSample>,
}

/// The schedule, the proxy and what was seen.
pub struct Injector {
    proxy: ChaosProxy,
    hold_s: f64,
    plan: Vec<Planned>,
    next: usize,
    /// The open window: its entry index and when it closes.
    window: Option<(usize, f64)>,
    entries: Vec<Entry>,
    samples: Vec<DeviceSample>,
    metrics: Option<SocketAddr>,
    /// Scrapes that failed (the device's endpoint did not answer in time, …).
    pub scrape_errors: u64,
    started: Instant,
}

impl Injector {
    /// The schedule of `spec` over a run of `duration`, with `proxy` in front of the edge.
    pub fn new(spec: &FaultSpec, duration: std::time::Duration, proxy: ChaosProxy, started: Instant) -> Self {
        Self {
            proxy,
            hold_s: spec.hold.as_secs_f64(),
            plan: spec.schedule(duration),
            next: 0,
            window: None,
            entries: Vec::new(),
            samples: Vec::new(),
            metrics: None,
            scrape_errors: 0,
            started,
        }
    }

    /// The planned faults.
    pub fn plan(&self) -> &[Planned] {
        &self.plan
    }

    /// The proxy (the device connects to its address).
    pub fn proxy(&self) -> &ChaosProxy {
        &self.proxy
    }

    /// Restart the clock: seconds count from now (the device's start).
    pub fn start_clock(&mut self, started: Instant) {
        self.started = started;
    }

    fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The next thing to do.
    pub fn due(&self) -> Due {
        if let Some((_, end)) = self.window {
            Due::EndWindow(end)
        } else if let Some(p) = self.plan.get(self.next) {
            Due::Inject(p.at)
        } else {
            Due::Nothing
        }
    }

    /// Scrape the device's `/metrics` once (once its ready file says where); the sample, if any.
    pub async fn scrape(&mut self, pair: &Pair) -> Option<DeviceSample> {
        if self.metrics.is_none() {
            match read_json::<DeviceReady>(pair.device_ready_file()) {
                Ok(ready) => self.metrics = ready.metrics,
                Err(ReportFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    eprintln!("[soak] {e:#}");
                    self.scrape_errors += 1;
                }
            }
        }
        let addr = self.metrics?;
        let got = get_metrics(addr).await.and_then(|text| device_sample(&text, self.now_s()));
        match got {
            Ok(s) => {
                self.samples.push(s);
                Some(s)
            }
            Err(e) => {
                self.scrape_errors += 1;
                eprintln!("[soak] scraping the device: {e:#}");
                None
            }
        }
    }

    /// Inject the next planned fault (its time has come).
    pub async fn inject(&mut self, pair: &mut Pair, tandem: &Tandem) {
        let Some(&planned) = self.plan.get(self.next) else { return };
        self.next += 1;
        let mut record = FaultRecord {
            kind: planned.kind,
            planned_s: planned.at,
            injected_s: None,
            reference_s: None,
            recovered_s: None,
            recovery_s: None,
            note: String::new(),
        };
        let before = self.scrape(pair).await;
        if before.is_none() {
            record.note = "the device's /metrics could not be read before the fault".into();
            self.entries.push(Entry { record, before, reference: None });
            return;
        }
        let mut reference = None;
        match planned.kind {
            FaultKind::Cut | FaultKind::Corrupt => {
                let queued = if planned.kind == FaultKind::Cut { self.proxy.cut() } else { self.proxy.corrupt() };
                match queued {
                    Err(e) => record.note = format!("{e:#}"),
                    Ok(()) => match tokio::time::timeout(INJECT_TIMEOUT, self.proxy.injected()).await {
                        Ok(Some(inj)) if inj.kind == planned.kind => {
                            record.injected_s =
                                Some(inj.at.into_std().saturating_duration_since(self.started).as_secs_f64());
                            reference = self.scrape(pair).await;
                        }
                        Ok(other) => record.note = format!("the proxy reported {other:?}"),
                        Err(_) => record.note = format!("no traffic to inject into within {INJECT_TIMEOUT:?}"),
                    },
                }
            }
            FaultKind::Kill => match pair.kill_edge().await {
                Err(e) => record.note = format!("{e:#}"),
                Ok(()) => {
                    record.injected_s = Some(self.now_s());
                    reference = self.scrape(pair).await;
                    let t0 = Instant::now();
                    match pair.restart_edge(tandem).await {
                        Ok(()) => record.note = format!("edge restarted in {:.2} s", t0.elapsed().as_secs_f64()),
                        Err(e) => record.note = format!("the edge could not be restarted: {e:#}"),
                    }
                }
            },
            FaultKind::Collapse | FaultKind::Slow => {
                if planned.kind == FaultKind::Collapse {
                    self.proxy.set_collapse(true);
                } else {
                    self.proxy.set_slow(true);
                }
                let at = self.now_s();
                record.injected_s = Some(at);
                self.window = Some((self.entries.len(), at + self.hold_s));
            }
        }
        if let Some(r) = reference {
            record.reference_s = Some(r.t_s);
        } else if !planned.kind.is_windowed() && record.injected_s.is_some() {
            record.note.push_str("; the device's /metrics could not be read after the fault");
        }
        self.entries.push(Entry { record, before, reference });
    }

    /// Close the open window (its time has come); recovery is measured from here.
    pub async fn end_window(&mut self, pair: &Pair) {
        let Some((i, _)) = self.window.take() else { return };
        self.proxy.set_collapse(false);
        self.proxy.set_slow(false);
        let reference = self.scrape(pair).await;
        if let Some(e) = self.entries.get_mut(i) {
            e.reference = reference;
            e.record.reference_s = reference.map(|r| r.t_s);
        }
    }

    /// Every planned fault as it went: recovery times computed, the ones never reached noted.
    pub fn finish(mut self) -> (Vec<FaultRecord>, Vec<DeviceSample>) {
        if self.window.is_some() {
            // The run ended inside a window: nothing to measure from.
            self.window = None;
        }
        let mut out = Vec::new();
        for e in self.entries {
            let mut r = e.record;
            if let (Some(before), Some(reference)) = (e.before, e.reference) {
                r.recovered_s = recovery(r.kind, &before, &reference, &self.samples);
                r.recovery_s = r.recovered_s.map(|t| t - reference.t_s);
            }
            out.push(r);
        }
        for p in &self.plan[self.next..] {
            out.push(FaultRecord {
                kind: p.kind,
                planned_s: p.at,
                injected_s: None,
                reference_s: None,
                recovered_s: None,
                recovery_s: None,
                note: "the run ended before it was due".into(),
            });
        }
        (out, self.samples)
    }
}
