//! The edge server: many devices, one model store, a pool of inference threads.
//!
//! ```text
//!  accept (task) ──limit── conn (task per device) ──Semaphore(queue)+crossbeam(queue)──▶ workers (threads)
//!                            │  ▲ outbox mpsc(N)                                          │ try_send (drop newest)
//!                            │  └──────────────── writer (task per device) ◀──────────────┘
//!                            └──Prepare/Get──▶ store (thread: loads tails by id, caches them)
//! ```
//!
//! - `conn`: optional TLS handshake (rustls; plain TCP by default), then the session handshake
//!   (`Hello` → `HelloAck`; protocol version and, when configured, the shared token checked in
//!   constant time; otherwise `Reject`, counted by reason in `tandem_edge_rejections_total`), then
//!   `frame::check → parse` under an idle timeout. A bad frame is counted and answered with a
//!   `FrameError`; if its header was valid the stream continues after it, otherwise that one
//!   connection is closed. Other devices are never affected.
//! - `store`: the only owner of loaded models; `PlanSwitch` asks it to load a tail before the
//!   `PlanAck`, and workers ask it on a cache miss (frames carry model id and point, so frames
//!   of an old epoch still complete after a switch).
//! - `worker`: decode + tail inference + `InferResult`, on dedicated threads.

mod admission;
mod conn;
mod msg;
mod server;
mod store;
mod worker;

pub use admission::{Admission, AdmissionRules};
pub use server::{EdgeHandle, EdgeServer, EdgeSettings, worker_threads};
