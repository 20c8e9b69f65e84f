//! The abort signal: set once by the shutdown owner when the drain deadline passes; every stage
//! then drops what it still holds as `shutdown` (counted) instead of processing it.

use tokio::sync::watch;

/// Read side of the abort signal; cheap to clone, readable from threads and tasks.
#[derive(Clone, Debug)]
pub struct Abort(watch::Receiver<bool>);

/// Write side, held by the shutdown owner.
#[derive(Debug)]
pub(crate) struct AbortSwitch(watch::Sender<bool>);

impl AbortSwitch {
    pub(crate) fn new() -> (AbortSwitch, Abort) {
        let (tx, rx) = watch::channel(false);
        (AbortSwitch(tx), Abort(rx))
    }

    pub(crate) fn set(&self) {
        self.0.send_replace(true);
    }
}

impl Abort {
    /// A signal that is never set (for stages run on their own, e.g. in tests).
    pub fn never() -> Abort {
        let (tx, rx) = watch::channel(false);
        // Keep the value readable after the sender is gone: a closed watch still reports its
        // last value, and `wait` below treats a closed channel as "never".
        drop(tx);
        Abort(rx)
    }

    /// Whether the deadline has passed.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the signal is set; pends forever if it never can be.
    pub async fn wait(&mut self) {
        if self.0.wait_for(|&v| v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
