//! The faults `tandem soak --faults` injects: what they are, when they come, and when the device
//! has recovered from one. Pure: parsing, the seeded schedule and recovery detection are tested
//! without a runtime; [`crate::proxy`] and [`crate::soak`] do the injecting.
//!
//! # The spec
//! `--faults every=30s,seed=7` (keys in any order, each at most once, unknown keys refused):
//! - `every` (required): mean time between two faults. Fault *i* (0, 1, …) starts at
//!   `start + i·every + j`, the jitter `j` drawn uniformly from `[−every/4, +every/4]`.
//! - `seed` (default 0): seeds the jitter and the order of the kinds (`StdRng`), so a schedule is
//!   reproducible.
//! - `start` (default = `every`): when fault 0 is due, seconds after the device started.
//! - `hold` (default 3 s): how long a bandwidth collapse or a slow edge lasts.
//! - `kinds` (default all five): `+`-separated subset of `cut`, `kill`, `corrupt`, `collapse`,
//!   `slow`. The kinds come in rounds: each round is a seeded shuffle of all the listed kinds, so
//!   any `k` consecutive faults (`k` = number of kinds) contain every kind once.
//!
//! Faults stop early enough to be seen recovering: none starts later than
//! `duration − hold − `[`TAIL`]. `every` must be at least twice `hold` and `hold` at least 1 s,
//! so two faults never overlap.
//!
//! # Recovery
//! The soak scrapes the device's `/metrics` (`tandem_results_total{origin="edge"}`,
//! `tandem_link_connects_total`) every [`SCRAPE_EVERY`] into [`DeviceSample`]s. A fault is
//! recovered at the first sample after its reference sample (taken right after a cut, kill or
//! corrupt byte, or right at the end of a collapse or slow window) whose edge results exceed the
//! reference's — for a cut or a kill, whose old session is gone, only once the device has also
//! opened a new session (its connects exceed those of the sample before the injection).
//! Recovery time = that sample's time − the reference's. [`recovery`] computes it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

/// No fault starts later than this before the end of its hold and the end of the run: time left
/// to see it recover.
pub const TAIL: Duration = Duration::from_secs(5);
/// How often the soak scrapes the device's metrics (the resolution of a recovery time).
pub const SCRAPE_EVERY: Duration = Duration::from_millis(100);

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The chaos proxy resets the connection in the middle of a device → edge frame.
    Cut,
    /// The edge process gets SIGKILL; a new one is started on the same address.
    Kill,
    /// The proxy flips one byte of a device → edge frame in flight.
    Corrupt,
    /// The proxy throttles device → edge to [`COLLAPSE_BYTES_PER_S`] for `hold`.
    Collapse,
    /// The proxy holds each edge → device chunk [`SLOW_DELAY`] for `hold`.
    Slow,
}

/// Device → edge rate during a bandwidth collapse: 8 kB/s (64 kbit/s).
pub const COLLAPSE_BYTES_PER_S: u64 = 8_000;
/// What a slow edge adds to each reply chunk.
pub const SLOW_DELAY: Duration = Duration::from_millis(400);

impl FaultKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [FaultKind; 5] = [Self::Cut, Self::Kill, Self::Corrupt, Self::Collapse, Self::Slow];

    /// Its name in a spec and in the output files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cut => "cut",
            Self::Kill => "kill",
            Self::Corrupt => "corrupt",
            Self::Collapse => "collapse",
            Self::Slow => "slow",
        }
    }

    /// Whether the fault lasts `hold` (and recovery is measured from its end).
    pub fn is_windowed(self) -> bool {
        matches!(self, Self::Collapse | Self::Slow)
    }

    /// Whether the fault ends the device's session (recovery needs a new one).
    pub fn ends_session(self) -> bool {
        matches!(self, Self::Cut | Self::Kill)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown fault kind {s:?} (expected one of cut, kill, corrupt, collapse, slow)"))
    }
}

/// `--faults …`, parsed (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// Mean time between faults.
    pub every: Duration,
    /// Seed of the jitter and the kind order.
    pub seed: u64,
    /// When fault 0 is due (default: `every`).
    pub start: Option<Duration>,
    /// Length of a collapse or a slow window.
    pub hold: Duration,
    /// The kinds injected, each once per round.
    pub kinds: Vec<FaultKind>,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let dur = |key: &str, v: &str| {
            tandem_planner::units::parse_duration(v).map_err(|e| format!("--faults {key}={v}: {e}"))
        };
        let (mut every, mut seed, mut start, mut hold, mut kinds) = (None, None, None, None, None);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("--faults: {part:?} is not KEY=VALUE (e.g. every=30s,seed=7)"))?;
            let fresh = match key {
                "every" => every.replace(dur(key, value)?).is_none(),
                "seed" => {
                    seed.replace(value.parse::<u64>().map_err(|e| format!("--faults seed={value}: {e}"))?).is_none()
                }
                "start" => start.replace(dur(key, value)?).is_none(),
                "hold" => hold.replace(dur(key, value)?).is_none(),
                "kinds" => {
                    let mut list: Vec<FaultKind> = Vec::new();
                    for k in value.split('+') {
                        let k: FaultKind = k.trim().parse()?;
                        if list.contains(&k) {
                            return Err(format!("--faults kinds: {k} listed twice"));
                        }
                        list.push(k);
                    }
                    kinds.replace(list).is_none()
                }
                other => {
                    return Err(format!("--faults: unknown key {other:?} (expected every, seed, start, hold, kinds)"));
                }
            };
            if !fresh {
                return Err(format!("--faults: {key} given twice"));
            }
        }
        let spec = FaultSpec {
            every: every.ok_or("--faults needs every=DURATION (e.g. every=30s)")?,
            seed: seed.unwrap_or(0),
            start,
            hold: hold.unwrap_or(Duration::from_secs(3)),
            kinds: kinds.unwrap_or_else(|| FaultKind::ALL.to_vec()),
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl FaultSpec {
    /// The cross-field rules: faults cannot overlap, windows are long enough to matter.
    pub fn validate(&self) -> Result<(), String> {
        if self.hold < Duration::from_secs(1) {
            return Err(format!("--faults hold={:?} is shorter than 1 s", self.hold));
        }
        if self.every < 2 * self.hold {
            return Err(format!(
                "--faults every={:?} is less than twice hold={:?}: faults could overlap",
                self.every, self.hold
            ));
        }
        Ok(())
    }

    /// The faults of a run of `duration` (see the module docs), in time order.
    pub fn schedule(&self, duration: Duration) -> Vec<Planned> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let every = self.every.as_secs_f64();
        let start = self.start.unwrap_or(self.every).as_secs_f64();
        let last = duration.as_secs_f64() - self.hold.as_secs_f64() - TAIL.as_secs_f64();
        let mut round: Vec<FaultKind> = Vec::new();
        let mut out = Vec::new();
        for i in 0u32.. {
            let jitter = rand::Rng::random_range(&mut rng, -0.25..=0.25) * every;
            let at = (start + f64::from(i) * every + jitter).max(0.0);
            if start + f64::from(i) * every - 0.25 * every > last {
                break;
            }
            if round.is_empty() {
                round = self.kinds.clone();
                round.shuffle(&mut rng);
                round.reverse();
            }
            let kind = round.pop();
            if at > last {
                continue;
            }
            if let Some(kind) = kind {
                out.push(Planned { at, kind });
            }
        }
        out
    }
}

/// A fault the schedule plans.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Planned {
    /// Seconds since the device started.
    pub at: f64,
    /// What is injected.
    pub kind: FaultKind,
}

/// One scrape of the device's metrics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DeviceSample {
    /// Seconds since the device started.
    pub t_s: f64,
    /// `tandem_results_total{origin="edge"}`.
    pub edge_results: u64,
    /// `tandem_link_connects_total`.
    pub connects: u64,
}

/// When the device recovered from a fault of `kind`: the time (seconds since the device
/// started) of the first of `later` (samples, in time order; those up to `reference` are
/// skipped) with more edge results than `reference`. For a fault that ends the session (a cut,
/// a kill), a reply of the old session may still arrive after the reference: such a fault
/// recovers only once the device has opened a new session (more connects than `before`, the
/// last sample before the injection) and the edge results then grow past the sample before the
/// one that first shows it. `None`: it never did.
pub fn recovery(
    kind: FaultKind,
    before: &DeviceSample,
    reference: &DeviceSample,
    later: &[DeviceSample],
) -> Option<f64> {
    let later: Vec<&DeviceSample> = later.iter().filter(|s| s.t_s > reference.t_s).collect();
    if !kind.ends_session() {
        return later.iter().find(|s| s.edge_results > reference.edge_results).map(|s| s.t_s);
    }
    let n = later.iter().position(|s| s.connects > before.connects)?;
    let base = match n.checked_sub(1).and_then(|i| later.get(i)) {
        Some(prev) => prev.edge_results,
        None => reference.edge_results,
    };
    later.get(n..)?.iter().find(|s| s.edge_results > base).map(|s| s.t_s)
}

/// One fault as it happened; a row of `faults.csv` and a `[[faults]]` table of the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultRecord {
    /// What was injected.
    pub kind: FaultKind,
    /// When the schedule planned it, s since the device started.
    pub planned_s: f64,
    /// When it took effect (the byte cut or flipped, the edge dead, the window opened); `None`:
    /// it could not be injected (see `note`).
    pub injected_s: Option<f64>,
    /// Recovery is measured from here: the injection, or the end of a window.
    pub reference_s: Option<f64>,
    /// When the device was again getting edge results.
    pub recovered_s: Option<f64>,
    /// `recovered_s − reference_s`, seconds.
    pub recovery_s: Option<f64>,
    /// Why it was not injected or what else happened (empty when nothing).
    pub note: String,
}

impl FaultRecord {
    /// A CSV row under [`FaultRecord::CSV_HEADER`].
    pub fn csv_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        format!(
            "{},{:.3},{},{},{},{},{}",
            self.kind,
            self.planned_s,
            opt(self.injected_s),
            opt(self.reference_s),
            opt(self.recovered_s),
            opt(self.recovery_s),
            self.note.replace(',', ";")
        )
    }

    /// The header of `faults.csv`.
    pub const CSV_HEADER: &'static str = "kind,planned_s,injected_s,reference_s,recovered_s,recovery_s,note";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec of the one-minute faulted soak in tests/soak.rs.
    const CI_SPEC: &str = "every=8s,start=12s,seed=1,hold=3s";

    fn spec(s: &str) -> FaultSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_spec_parses_strictly() {
        let s = spec("every=30s,seed=7");
        assert_eq!(s.every, Duration::from_secs(30));
        assert_eq!((s.seed, s.start, s.hold), (7, None, Duration::from_secs(3)));
        assert_eq!(s.kinds, FaultKind::ALL.to_vec());
        let s = spec("kinds=kill+cut, hold=2s, every=8s, start=5s");
        assert_eq!(s.kinds, vec![FaultKind::Kill, FaultKind::Cut]);
        assert_eq!((s.start, s.hold), (Some(Duration::from_secs(5)), Duration::from_secs(2)));
        for (bad, why) in [
            ("seed=7", "needs every"),
            ("every=30s,every=20s", "given twice"),
            ("every=30s,often=1", "unknown key"),
            ("every=30", "every=30"),
            ("every=30s,kinds=cut+fire", "unknown fault kind"),
            ("every=30s,kinds=cut+cut", "listed twice"),
            ("every=30s,hold=500ms", "shorter than 1 s"),
            ("every=5s,hold=3s", "overlap"),
            ("every=30s,seed", "KEY=VALUE"),
        ] {
            let e = bad.parse::<FaultSpec>().expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_schedule_is_seeded_jittered_and_leaves_time_to_recover() {
        let s = spec("every=30s,seed=7");
        let hour = Duration::from_secs(3600);
        let a = s.schedule(hour);
        assert_eq!(a, s.schedule(hour), "same seed, same schedule");
        assert_ne!(a, spec("every=30s,seed=8").schedule(hour), "another seed, another schedule");
        assert!((115..=120).contains(&a.len()), "about one every 30 s: {}", a.len());
        for (i, p) in a.iter().enumerate() {
            let due = 30.0 * (i + 1) as f64;
            assert!((p.at - due).abs() <= 7.5 + 1e-9, "fault {i} at {} (due {due})", p.at);
            assert!(p.at <= 3600.0 - 3.0 - 5.0, "{p:?}");
        }
        assert!(a.windows(2).all(|w| w[1].at - w[0].at >= 15.0 - 1e-9), "jitter never brings two within every/2");
        let jitters: Vec<f64> = a.iter().enumerate().map(|(i, p)| p.at - 30.0 * (i + 1) as f64).collect();
        assert!(jitters.iter().any(|j| *j > 2.0) && jitters.iter().any(|j| *j < -2.0), "{jitters:?}");
    }

    #[test]
    fn every_kind_comes_once_per_round() {
        let s = spec("every=8s,seed=3");
        let a = s.schedule(Duration::from_secs(3600));
        for round in a.chunks_exact(5) {
            let mut kinds: Vec<FaultKind> = round.iter().map(|p| p.kind).collect();
            kinds.sort();
            assert_eq!(kinds, FaultKind::ALL.to_vec(), "{round:?}");
        }
        let orders: std::collections::BTreeSet<Vec<FaultKind>> =
            a.chunks_exact(5).map(|r| r.iter().map(|p| p.kind).collect()).collect();
        assert!(orders.len() > 1, "the order is shuffled, not fixed");
        // The CI soak (tests/soak.rs): 60 s, a fault every 8 s from 12 s, has every kind in it.
        let ci = spec(CI_SPEC).schedule(Duration::from_secs(60));
        let mut kinds: Vec<FaultKind> = ci.iter().map(|p| p.kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds, FaultKind::ALL.to_vec(), "{ci:?}");
        assert!(ci.iter().all(|p| p.at <= 60.0 - 3.0 - 5.0), "{ci:?}");
    }

    fn samples(v: &[(f64, u64, u64)]) -> Vec<DeviceSample> {
        v.iter().map(|&(t_s, edge_results, connects)| DeviceSample { t_s, edge_results, connects }).collect()
    }

    #[test]
    fn recovery_waits_for_new_edge_results_and_a_new_session_after_a_cut() {
        let s = samples(&[
            (10.0, 100, 1), // before
            (10.1, 101, 1), // reference, right after the cut
            (10.2, 102, 1), // a late reply on the old session: not a recovery after a cut
            (10.3, 102, 2), // reconnected, nothing yet
            (10.4, 103, 2), // recovered
            (10.5, 110, 2),
        ]);
        assert_eq!(recovery(FaultKind::Cut, &s[0], &s[1], &s[2..]), Some(10.4));
        assert_eq!(recovery(FaultKind::Kill, &s[0], &s[1], &s[2..]), Some(10.4));
        // A corrupt byte or a window does not end the session: the next edge result counts.
        assert_eq!(recovery(FaultKind::Corrupt, &s[0], &s[1], &s[2..]), Some(10.2));
        assert_eq!(recovery(FaultKind::Slow, &s[0], &s[1], &s[2..]), Some(10.2));
    }

    #[test]
    fn a_fault_that_never_recovers_is_none() {
        let s = samples(&[(1.0, 5, 1), (1.1, 5, 1), (2.0, 5, 2), (3.0, 5, 3), (4.0, 5, 3)]);
        assert_eq!(recovery(FaultKind::Kill, &s[0], &s[1], &s[2..]), None, "reconnects without results");
        let s = samples(&[(1.0, 5, 1), (1.1, 5, 1), (2.0, 9, 1)]);
        assert_eq!(recovery(FaultKind::Cut, &s[0], &s[1], &s[2..]), None, "results without a new session");
        assert_eq!(recovery(FaultKind::Collapse, &s[0], &s[1], &[]), None);
        // Samples at or before the reference never count.
        let s = samples(&[(1.0, 5, 1), (2.0, 9, 2)]);
        assert_eq!(recovery(FaultKind::Cut, &s[0], &s[1], &s), None);
    }
}
