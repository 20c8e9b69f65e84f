//! Small, readable profiles for tests of the planner and of what sits on it (report, controller).
//!
//! Each builder fills the fields a test rarely cares about with fixed, documented values, so a
//! fixture says only what it is about: which points a model has, what they cost, how many bytes a
//! coding sends. Like `tandem_models::testkit` and `tandem_actors::testkit`, this is public library
//! code (integration tests of other crates use it), but nothing outside tests should.

use crate::profile::{
    CodingClass, CodingCost, ModelKind, ModelProfile, PointProfile, Profile, Profiles, Provenance, Role, combine,
};

/// Encoding time of a [`coding`], ms.
pub const ENCODE_MS: f64 = 0.2;
/// Decoding time of a [`coding`], ms.
pub const DECODE_MS: f64 = 0.1;
/// Tensor elements of a [`point`].
pub const ELEMENTS: u64 = 1024;

/// A coding that sends `bytes`, costs [`ENCODE_MS`] + [`DECODE_MS`] and keeps the model's accuracy.
pub fn coding(name: &str, class: CodingClass, bytes: f64) -> CodingCost {
    CodingCost { coding: name.into(), class, bytes, encode_ms: ENCODE_MS, decode_ms: DECODE_MS, accuracy: None }
}

/// Builder-style tweaks of a [`CodingCost`].
pub trait CodingExt {
    /// The coding's own accuracy (a lossy coding that costs points).
    fn accuracy(self, accuracy: f64) -> Self;
    /// Its encoding and decoding times, ms.
    fn times(self, encode_ms: f64, decode_ms: f64) -> Self;
}

impl CodingExt for CodingCost {
    fn accuracy(mut self, accuracy: f64) -> Self {
        self.accuracy = Some(accuracy);
        self
    }

    fn times(mut self, encode_ms: f64, decode_ms: f64) -> Self {
        self.encode_ms = encode_ms;
        self.decode_ms = decode_ms;
        self
    }
}

/// A partition point with [`ELEMENTS`] elements.
pub fn point(point: u16, name: &str, device_ms: f64, edge_ms: f64, codings: Vec<CodingCost>) -> PointProfile {
    PointProfile { point, name: name.into(), device_ms, edge_ms, elements: ELEMENTS, codings }
}

/// The last point of a model (`end`): everything on the device, nothing to send.
pub fn end(point: u16, device_ms: f64) -> PointProfile {
    PointProfile { point, name: "end".into(), device_ms, edge_ms: 0.0, elements: 10, codings: vec![] }
}

/// A series member.
pub fn model(model_id: u32, name: &str, kind: ModelKind, accuracy: f64, points: Vec<PointProfile>) -> ModelProfile {
    ModelProfile { model_id, name: name.into(), kind, accuracy, points }
}

/// A profile of `models` measured on a machine called `test` with `threads` threads.
pub fn profile(role: Role, threads: u32, models: Vec<ModelProfile>) -> Profile {
    Profile { provenance: Provenance { role, machine: "test".into(), threads, emulated_slowdown: None }, models }
}

/// Device and edge profiles that are the same measurements: `edge` taken as the device's too.
pub fn same_machine(edge: &Profile) -> Profiles {
    let mut device = edge.clone();
    device.provenance.role = Role::Device;
    // The two sides are copies of one profile, so they describe the same series.
    combine(&device, edge).expect("a profile is consistent with a copy of itself")
}

/// A device `slowdown` times slower than `edge`, derived by [`Profile::slowed`].
pub fn slowed_device(edge: &Profile, slowdown: f64) -> Profiles {
    let device = edge.slowed(slowdown).expect("test slowdowns are positive and finite");
    combine(&device, edge).expect("a slowed profile is consistent with its source")
}
