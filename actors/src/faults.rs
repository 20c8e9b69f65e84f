//! Fail points (tikv/fail-rs) on the paths where the real world breaks the pipeline: the link's
//! writes and reads, frame decoding on both sides, the edge's model store, probe replies and
//! the controller's plan switch.
//!
//! They compile to nothing unless the crate's `failpoints` feature is on; the `faults` test
//! binary turns it on and drives them with `fail::cfg(NAME, "return(…)")`. Each point is
//! evaluated where the real failure would surface, so the code under test handles it exactly
//! as it would handle the real thing (the same drop reasons, counters and recovery paths).
//!
//! Points on tokio tasks should be given `return` actions only: `sleep`/`pause` would block a
//! runtime thread. [`EDGE_INFER`] runs on an inference thread, where `sleep(ms)` is the way to
//! make a slow edge.

/// Device link, before a tensor frame is written. `return` or `return(cut)`: write the first
/// half of the frame, then lose the connection (a link cut mid-frame); `return(corrupt)`: flip
/// the frame's last byte (the edge's CRC check fails); `return(oversize)`: declare a payload
/// larger than any edge accepts (the edge cannot resynchronise and closes the connection).
pub const LINK_SEND: &str = "link_send";
/// Device link, a frame read from the edge: `return` = the connection fails right there (the
/// frame is lost with the session).
pub const LINK_RECV: &str = "link_recv";
/// Device link, a reply frame from the edge does not decode: `return` = treated as a corrupt
/// frame (the session is closed and re-established).
pub const LINK_DECODE_REPLY: &str = "link_decode_reply";
/// Edge, a tensor frame read from a device fails its integrity check: `return` = answered
/// `FrameError { checksum }`, the stream continues.
pub const EDGE_DECODE: &str = "edge_decode";
/// Edge inference thread, before the tail runs: `sleep(MS)` makes a slow edge; `return` fails
/// the frame (`FrameError { inference }`); `panic` panics the thread (the frame is answered
/// `FrameError { panic }`, the thread restarted).
pub const EDGE_INFER: &str = "edge_infer";
/// Edge model store, getting a tail (loaded, or from its cache): `return` fails every request,
/// `return(ID)` only those for model `ID` (the store answers as for a model it cannot load).
/// Counted evaluations (`1*return(…)`) are consumed by requests for other models too.
pub const EDGE_LOAD_TAIL: &str = "edge_load_tail";
/// Edge, a `Probe` frame: `return` = no `ProbeReply` is sent.
pub const EDGE_PROBE_REPLY: &str = "edge_probe_reply";
/// Device front-inference thread, before the head runs: `panic` panics there (the frame is
/// recorded `panic`, the thread restarted; see [`crate::supervise`]).
pub const FRONT_INFER: &str = "front_infer";
/// Device encoder thread, before a tensor is encoded: `panic` panics there.
pub const ENCODE: &str = "encode";
/// Controller, after the edge acknowledged a plan and before the device publishes it:
/// `return` = applying it fails, and the swap is rolled back.
pub const CONTROLLER_APPLY: &str = "controller_apply";

/// Every fail point, for listing and for clearing them all.
pub const ALL: [&str; 10] = [
    LINK_SEND,
    LINK_RECV,
    LINK_DECODE_REPLY,
    EDGE_DECODE,
    EDGE_INFER,
    EDGE_LOAD_TAIL,
    EDGE_PROBE_REPLY,
    CONTROLLER_APPLY,
    FRONT_INFER,
    ENCODE,
];

/// `Some(argument)` (empty when the action has none) when fail point `name` returns now;
/// always `None` without the `failpoints` feature.
#[inline]
pub(crate) fn fired(name: &str) -> Option<String> {
    fail::fail_point!(name, |arg: Option<String>| Some(arg.unwrap_or_default()));
    let _ = name;
    None
}
