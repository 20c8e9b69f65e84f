//! Supervision without a framework, for the blocking threads (the edge's inference workers and
//! model store, the device's front and encoder): a panic is caught at the job boundary
//! ([`catch`]), the job is answered or recorded as `panic`, and the thread's state is rebuilt —
//! a restart — after a backoff. A budget bounds restarts: more than [`Budget::max_restarts`]
//! within [`Budget::window`] and the process fails loudly ([`fail_loudly`]: logged at ERROR,
//! then aborted), since a thread that panics on every job would otherwise spin and hide it.
//!
//! The decision ([`Restarts::on_panic`]) is pure, with the clock passed in; the threads only
//! call it. Counted in `tandem_restarts_total{stage}` ([`Supervised`]).

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::types::Supervised;

/// How many restarts a supervised thread gets, and how long it waits before each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Restarts allowed within `window`; one more fails the process.
    pub max_restarts: usize,
    /// The sliding window the restarts are counted over.
    pub window: Duration,
    /// Wait before the first restart in a row; doubles per restart still in the window…
    pub backoff_min: Duration,
    /// …up to this.
    pub backoff_max: Duration,
}

impl Default for Budget {
    /// 5 restarts a minute, 10 ms doubling to 1 s: a rare panic costs one frame and a few
    /// milliseconds; a thread that panics on every job fails the process within a few seconds.
    fn default() -> Budget {
        Budget {
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// The restarts of one thread within the budget's window.
#[derive(Debug)]
pub struct Restarts {
    budget: Budget,
    recent: VecDeque<Instant>,
}

/// The budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// Restarts within the window, this one included.
    pub restarts: usize,
}

impl Restarts {
    /// No restarts yet.
    pub fn new(budget: Budget) -> Restarts {
        Restarts { budget, recent: VecDeque::new() }
    }

    /// A panic at `now`: the backoff before restarting, or [`Exhausted`].
    pub fn on_panic(&mut self, now: Instant) -> Result<Duration, Exhausted> {
        while self.recent.front().is_some_and(|&t| now.saturating_duration_since(t) >= self.budget.window) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let n = self.recent.len();
        if n > self.budget.max_restarts {
            return Err(Exhausted { restarts: n });
        }
        let doublings = u32::try_from(n - 1).unwrap_or(u32::MAX).min(20);
        Ok(self.budget.backoff_min.saturating_mul(1 << doublings).min(self.budget.backoff_max))
    }
}

/// Run one job, catching a panic: `Err(message)` when it panicked.
///
/// `AssertUnwindSafe`: what the job borrows is the thread's own state, which the caller throws
/// away (rebuilds) after a panic, so nothing observes it half-updated.
pub fn catch<T>(job: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(job)).map_err(|payload| message(payload.as_ref()))
}

/// The text a panic was raised with.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

/// After a caught panic in `stage`: wait out the backoff (this is the thread's own time, it
/// serves nothing meanwhile), or, past the budget, fail the process.
pub fn after_panic(stage: Supervised, restarts: &mut Restarts, why: &str) {
    match restarts.on_panic(Instant::now()) {
        Ok(backoff) => {
            tracing::error!(
                stage = stage.as_str(),
                panic = why,
                backoff_ms = backoff.as_millis() as u64,
                "thread panicked; restarting it"
            );
            std::thread::sleep(backoff);
        }
        Err(e) => fail_loudly(stage, e, why),
    }
}

/// Past the restart budget: log at ERROR and abort the process (an orchestrator — systemd,
/// `tandem run`'s parent — sees it die and can restart it clean). A process limping on with a
/// thread that panics on every job would lose every frame quietly.
pub fn fail_loudly(stage: Supervised, e: Exhausted, why: &str) -> ! {
    tracing::error!(stage = stage.as_str(), restarts = e.restarts, panic = why, "restart budget exhausted; aborting");
    eprintln!("tandem: {} panicked {} times within its restart window ({why}); aborting", stage.as_str(), e.restarts);
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            max_restarts: 3,
            window: Duration::from_secs(10),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(25),
        }
    }

    #[test]
    fn restarts_back_off_and_the_budget_is_per_window() {
        let t0 = Instant::now();
        let mut r = Restarts::new(budget());
        assert_eq!(r.on_panic(t0), Ok(Duration::from_millis(10)));
        assert_eq!(r.on_panic(t0 + Duration::from_secs(1)), Ok(Duration::from_millis(20)));
        assert_eq!(r.on_panic(t0 + Duration::from_secs(2)), Ok(Duration::from_millis(25)), "capped");
        assert_eq!(r.on_panic(t0 + Duration::from_secs(3)), Err(Exhausted { restarts: 4 }));
        // Once the early ones leave the window, there is budget again.
        let mut r = Restarts::new(budget());
        for i in 0..3 {
            assert!(r.on_panic(t0 + Duration::from_secs(i)).is_ok());
        }
        assert!(r.on_panic(t0 + Duration::from_secs(11)).is_ok(), "two left the window");
        assert_eq!(r.on_panic(t0 + Duration::from_secs(11)).map(|_| ()), Ok(()));
        assert!(r.on_panic(t0 + Duration::from_secs(11)).is_err());
    }

    #[test]
    fn a_panic_is_caught_with_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        let r: Result<(), String> = catch(|| panic!("boom {}", 1));
        assert_eq!(r, Err("boom 1".to_string()));
        let r: Result<(), String> = catch(|| std::panic::panic_any(3u8));
        assert_eq!(r, Err("non-text panic payload".to_string()));
    }
}
