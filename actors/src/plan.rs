//! The control plane: which (model, partition point, coding) the device runs now.
//!
//! The owner of the plan (the CLI for a fixed plan; the controller in the adaptation issue)
//! holds a [`PlanHandle`] and publishes choices; each publish gets a new, larger epoch. Stages
//! read the current [`ActivePlan`] between frames from a `watch` receiver — a frame is processed
//! entirely under the plan it started with, and every tensor frame carries epoch, model id and
//! point, so frames in flight under an old epoch still complete on the edge after a switch.

use std::str::FromStr;

use tandem_codec::Coding;
use tandem_models::series::Series;
use tokio::sync::{oneshot, watch};

use crate::error::ActorError;
pub use crate::types::{ActivePlan, PlanChoice};

/// A plan as written by a user: `MODEL_ID:POINT[:CODING]`, `POINT` a name (`pool2`) or an index,
/// `CODING` a codec name (`q8-lz4`; default `f32`). Resolved against a series by
/// [`PlanSpec::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanSpec {
    /// Model id.
    pub model_id: u32,
    /// Point name or index, as written.
    pub point: String,
    /// Coding.
    pub coding: Coding,
}

impl FromStr for PlanSpec {
    type Err = ActorError;
    fn from_str(s: &str) -> Result<Self, ActorError> {
        let bad = |why: &str| ActorError::BadPlan { plan: s.chars().take(64).collect(), why: why.to_string() };
        let mut parts = s.split(':');
        let model_id = parts
            .next()
            .and_then(|m| m.trim().parse::<u32>().ok())
            .ok_or_else(|| bad("expected MODEL_ID:POINT[:CODING] with a numeric model id"))?;
        let point =
            parts.next().map(str::trim).filter(|p| !p.is_empty()).ok_or_else(|| bad("missing POINT"))?.to_string();
        let coding = match parts.next() {
            Some(c) => c.trim().parse::<Coding>().map_err(|e| bad(&e.to_string()))?,
            None => Coding::F32,
        };
        if parts.next().is_some() {
            return Err(bad("too many ':'-separated fields"));
        }
        Ok(PlanSpec { model_id, point, coding })
    }
}

impl PlanSpec {
    /// Check the model and point against `series` and resolve the point name to its index.
    pub fn resolve(&self, series: &Series) -> Result<PlanChoice, ActorError> {
        let plan = format!("{}:{}:{}", self.model_id, self.point, self.coding);
        let bad = |why: String| ActorError::BadPlan { plan: plan.clone(), why };
        let member = series.member(self.model_id).map_err(|e| bad(e.to_string()))?;
        let spec = series.spec_of(member).map_err(|e| bad(e.to_string()))?;
        let point = spec.point(&self.point).map_err(|e| bad(e.to_string()))?;
        if !self.coding.compression().is_available() {
            return Err(bad(format!("coding {} is not available in this build", self.coding)));
        }
        let point = u16::try_from(point.index).map_err(|_| bad("point index out of range".into()))?;
        Ok(PlanChoice { model_id: self.model_id, point, coding: self.coding })
    }
}

/// A request to the device's front thread: prepare the heads a plan needs (its head and the
/// whole model, the local fallback) on the engine, and answer when they are ready.
#[derive(Debug)]
pub struct PrepareRequest {
    /// The plan about to be published.
    pub choice: PlanChoice,
    /// `Err(why)` when a head could not be prepared.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// Requests queued for the front thread at most (the controller swaps one plan at a time; a
/// full queue means the front is busy and the plan's heads are prepared on its first frame).
pub const PREPARE_QUEUE: usize = 2;

/// The write side of the control plane. Stages get receivers from [`PlanHandle::subscribe`].
#[derive(Debug)]
pub struct PlanHandle {
    tx: watch::Sender<ActivePlan>,
    /// The device's front thread, which prepares a plan's heads before it is published.
    preparer: Option<crossbeam_channel::Sender<PrepareRequest>>,
}

impl PlanHandle {
    /// Start with `initial` as epoch 1.
    pub fn new(initial: PlanChoice) -> PlanHandle {
        let (tx, _rx) = watch::channel(ActivePlan { epoch: 1, choice: initial });
        PlanHandle { tx, preparer: None }
    }

    /// With a front thread that prepares a plan's heads before it is published
    /// ([`PlanHandle::prepare`]).
    pub fn with_preparer(mut self, preparer: crossbeam_channel::Sender<PrepareRequest>) -> PlanHandle {
        self.preparer = Some(preparer);
        self
    }

    /// Ask the device to prepare `choice`'s heads before publishing it. `None` when there is no
    /// preparer (a pipeline without a front thread, tests) or its queue is full (the heads are
    /// then prepared on the first frame of the plan, counted in
    /// `tandem_segments_prepared_on_frame_total`); otherwise the answer arrives on the receiver.
    pub fn prepare(&self, choice: PlanChoice) -> Option<oneshot::Receiver<Result<(), String>>> {
        let preparer = self.preparer.as_ref()?;
        let (reply, rx) = oneshot::channel();
        match preparer.try_send(PrepareRequest { choice, reply }) {
            Ok(()) => Some(rx),
            Err(e) => {
                tracing::debug!(error = %e, "the front cannot take a prepare request now");
                None
            }
        }
    }

    /// Publish a new choice under the next epoch; returns that epoch. Stages pick it up at
    /// their next frame boundary.
    pub fn publish(&self, choice: PlanChoice) -> u32 {
        let mut epoch = 0;
        self.tx.send_modify(|p| {
            p.epoch = p.epoch.saturating_add(1);
            p.choice = choice;
            epoch = p.epoch;
        });
        epoch
    }

    /// Publish `choice` under `epoch`, which must be above the current one; false (nothing
    /// published) otherwise. For a publisher that skips epochs: one announced to the edge by a
    /// swap that was then rolled back is never reused, as the edge refuses an epoch it has seen.
    pub fn publish_at(&self, epoch: u32, choice: PlanChoice) -> bool {
        self.tx.send_if_modified(|p| {
            if epoch <= p.epoch {
                return false;
            }
            p.epoch = epoch;
            p.choice = choice;
            true
        })
    }

    /// The plan in force now.
    pub fn current(&self) -> ActivePlan {
        *self.tx.borrow()
    }

    /// A receiver for a stage.
    pub fn subscribe(&self) -> watch::Receiver<ActivePlan> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_specs_parse() {
        let p: PlanSpec = "3:pool2:q8-lz4".parse().unwrap();
        assert_eq!(p, PlanSpec { model_id: 3, point: "pool2".into(), coding: Coding::Q8_LZ4 });
        let p: PlanSpec = "0:end".parse().unwrap();
        assert_eq!(p.coding, Coding::F32);
        assert!("x:pool2".parse::<PlanSpec>().is_err());
        assert!("1".parse::<PlanSpec>().is_err());
        assert!("1:pool2:q9".parse::<PlanSpec>().is_err());
        assert!("1:pool2:q8:x".parse::<PlanSpec>().is_err());
    }

    #[test]
    fn publishing_bumps_the_epoch() {
        let c = PlanChoice { model_id: 0, point: 3, coding: Coding::Q8_LZ4 };
        let h = PlanHandle::new(c);
        let rx = h.subscribe();
        assert_eq!(h.current().epoch, 1);
        assert_eq!(h.publish(PlanChoice { point: 4, ..c }), 2);
        assert_eq!(rx.borrow().choice.point, 4);
        assert!(h.publish_at(5, PlanChoice { point: 5, ..c }));
        assert!(!h.publish_at(5, PlanChoice { point: 6, ..c }), "an epoch is never reused");
        assert_eq!(h.current(), ActivePlan { epoch: 5, choice: PlanChoice { point: 5, ..c } });
        assert_eq!(h.publish(c), 6);
    }
}
