use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tandem_codec::{ErrorCode, PlanResult};

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
                // The job boundary: a panic while loading drops this request's reply (the
                // asker sees the store gone for that one request: `internal` / `Busy`).
                let handled = supervise::catch(|| {
                    match msg {
                        StoreMsg::Get { model_id, reply } => {
                            let r = match load(&mut cache, model_id) {
                                Ok(m) => Ok(m.clone()),
                                Err(e) => {
                                    tracing::warn!(model_id, error = %e, "no such model");
                                    Err(ErrorCode::UnknownModel)
                                }
                            };
                            metrics.models_loaded.set(cache.len() as i64);
                            // The asker may have gone (connection closed); nothing to do then.
                            let _ = reply.send(r);
                        }
                        StoreMsg::Prepare { model_id, point, reply } => {
                            let r = match load(&mut cache, model_id) {
                                Ok(m) if usize::from(point) < m.end() => PlanResult::Applied,
                                Ok(_) => PlanResult::BadPoint,
                                Err(e) => {
                                    tracing::warn!(model_id, error = %e, "plan names an unknown model");
                                    PlanResult::UnknownModel
                                }
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
