use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tandem_codec::{ErrorCode, PlanResult};

use super::msg::StoreMsg;
use crate::error::ActorError;
use crate::metrics::EdgeMetrics;
use crate::models::ModelCache;

/// Start the model store thread; it ends when every sender is gone.
pub(crate) fn spawn(mut cache: ModelCache, inbox: Receiver<StoreMsg>, metrics: EdgeMetrics) -> Result<JoinHandle<()>, ActorError> {
    std::thread::Builder::new()
        .name("edge-store".into())
        .spawn(move || {
            let span = tracing::info_span!("edge_store");
            let _enter = span.enter();
            for msg in inbox.iter() {
                match msg {
                    StoreMsg::Get { model_id, reply } => {
                        let r = match cache.get(model_id) {
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
                        let r = match cache.get(model_id) {
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
            }
        })
        .map_err(|source| ActorError::Spawn { name: "edge-store", source })
}
