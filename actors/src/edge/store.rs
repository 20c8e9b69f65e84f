use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tandem_codec::{ErrorCode, PlanResult};
use tandem_engine::Segment;

use super::msg::StoreMsg;
use crate::error::ActorError;
use crate::faults;
use crate::metrics::EdgeMetrics;
use crate::models::ModelCache;
use crate::supervise::{self, Budget, Restarts};
use crate::types::Supervised;

/// Start the model store thread; it ends when every sender is gone.
pub(crate) fn spawn(
    mut cache: ModelCache,
    inbox: Receiver<StoreMsg>,
    metrics: EdgeMetrics,
) -> Result<JoinHandle<()>, ActorError> {
    std::thread::Builder::new()
        .name("edge-store".into())
        .spawn(move || {
            let span = tracing::info_span!("edge_store");
            let _enter = span.enter();
            let mut restarts = Restarts::new(Budget::default());
            for msg in inbox.iter() {
                // The job boundary: a panic while loading or preparing drops this request's
                // reply (the asker sees the store gone for that one request: `internal` / `Busy`).
                let handled = supervise::catch(|| {
                    match msg {
                        StoreMsg::Get { model_id, point, reply } => {
                            let r = tail(&mut cache, model_id, point).cloned();
                            metrics.models_loaded.set(cache.len() as i64);
                            // The asker may have gone (connection closed); nothing to do then.
                            let _ = reply.send(r);
                        }
                        StoreMsg::Prepare { model_id, point, reply } => {
                            let r = match tail(&mut cache, model_id, point) {
                                Ok(_) => PlanResult::Applied,
                                Err(ErrorCode::BadPoint) => PlanResult::BadPoint,
                                Err(_) => PlanResult::UnknownModel,
                            };
                            metrics.models_loaded.set(cache.len() as i64);
                            let _ = reply.send(r);
                        }
                    }
                });
                if let Err(why) = handled {
                    metrics.restart(Supervised::EdgeStore);
                    // The cache only gains whole entries, so a panic cannot leave it
                    // half-updated: the restart keeps it.
                    supervise::after_panic(Supervised::EdgeStore, &mut restarts, &why);
                }
            }
        })
        .map_err(|source| ActorError::Spawn { name: "edge-store", source })
}

/// The tail of `model_id` from `point`, prepared on a miss; `BadPoint` for a point at or past
/// `end`, `UnknownModel` when the member cannot be loaded or prepared.
fn tail(cache: &mut ModelCache, model_id: u32, point: u16) -> Result<&Segment, ErrorCode> {
    let end = match load(cache, model_id) {
        Ok(m) => m.end(),
        Err(e) => {
            tracing::warn!(model_id, error = %e, "no such model");
            return Err(ErrorCode::UnknownModel);
        }
    };
    let point = usize::from(point);
    if point >= end {
        return Err(ErrorCode::BadPoint);
    }
    cache.segment(model_id, point, end).map_err(|e| {
        tracing::warn!(model_id, point, error = %e, "preparing the tail failed");
        ErrorCode::UnknownModel
    })
}

/// A member from the cache, loading it on a miss ([`faults::EDGE_LOAD_TAIL`] fails the load).
fn load(cache: &mut ModelCache, model_id: u32) -> Result<&crate::models::Loaded, ActorError> {
    if let Some(arg) = faults::fired(faults::EDGE_LOAD_TAIL)
        && (arg.is_empty() || arg.trim() == model_id.to_string())
    {
        return Err(ActorError::Model {
            model_id,
            source: tandem_models::ModelError::Config(format!("fail point {}", faults::EDGE_LOAD_TAIL)),
        });
    }
    cache.get(model_id)
}
