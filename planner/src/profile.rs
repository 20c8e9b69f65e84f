//! Measured costs of every (series member, partition point, coding), as written by `tandem profile`.
//!
//! A [`Profile`] describes one machine. The planner needs two — the device's compute and encode times,
//! the edge's compute and decode times — so [`combine`] joins a device and an edge profile into
//! [`Profiles`], checking that both describe the same series, points and codings. [`Profiles`] can only
//! be built through [`combine`], so everything downstream may rely on [`Profile::validate`]'s
//! invariants (finite non-negative costs, accuracies in `0..=1`, exactly one original model, one `end`
//! point per model, last).
//!
//! **Accuracy is a fraction in `0..=1`** (0.9477, not 94.77), everywhere in this crate: validation then
//! catches a percent written by mistake, since it exceeds 1.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::error::PlanError;

/// Name of the partition point before the first layer: the device computes nothing and sends the
/// (coded) input image.
pub const INPUT_POINT: &str = "input";
/// Name of the partition point after the last layer: everything runs on the device, nothing is sent.
pub const END_POINT: &str = "end";

/// Which side of the split a profile describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Device,
    Edge,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Device => "device",
            Role::Edge => "edge",
        })
    }
}

/// Where the numbers of a profile come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The side of the split these numbers are for.
    pub role: Role,
    /// The machine the times were measured on (host name and CPU/GPU model). For an emulated
    /// profile this stays the *source* machine; `emulated_slowdown` says it was scaled.
    pub machine: String,
    /// Compute threads used while measuring.
    pub threads: u32,
    /// `Some(R)`: the times were not measured on the device but derived from `machine` by
    /// multiplying them by `R` (the paper emulates a Snapdragon 835 as R = 10 × a Xeon).
    /// Reports must label such profiles as emulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated_slowdown: Option<f64>,
}

/// How a member of the pruned series was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelKind {
    /// The unpruned model (the baseline's model).
    Original,
    /// Step 1 (whole-network pruning) after `iter` iterations.
    Step1 { iter: u32 },
    /// Step 2: conv layer `layer` (0-based) of the step-1 model pruned for `iter` iterations.
    Step2 { layer: u16, iter: u32 },
}

/// How an intermediate tensor is put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodingClass {
    /// No coding: the tensor's bytes as they are (`f32`). The paper's baseline.
    Raw,
    /// Compressed but bit-exact after decoding (e.g. `f32-lz4`).
    Lossless,
    /// Changes the values (quantisation: `q8-lz4`, `q4c-none`, …); may lower accuracy, see
    /// [`CodingCost::accuracy`].
    Lossy,
}

impl CodingClass {
    /// Whether the edge sees exactly the tensor the device computed.
    pub fn is_lossless(self) -> bool {
        !matches!(self, CodingClass::Lossy)
    }
}

/// One machine's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub provenance: Provenance,
    /// Every member of the series, original included.
    pub models: Vec<ModelProfile>,
}

/// One member of the pruned series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// Identifier from the series manifest; unique within a profile.
    pub model_id: u32,
    pub name: String,
    pub kind: ModelKind,
    /// Test accuracy as a fraction in `0..=1`, with lossless transmission.
    pub accuracy: f64,
    /// Partition points in execution order (ascending `point`), `end` last.
    pub points: Vec<PointProfile>,
}

/// Costs of splitting a model after one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointProfile {
    /// Index of the point in execution order (0 = `input`).
    pub point: u16,
    /// `"input"`, `"conv1_1"`, …, `"pool5"`, `"end"`.
    pub name: String,
    /// Mean time to compute every layer up to this point, on this machine (ms per image).
    pub device_ms: f64,
    /// Mean time to compute every layer after this point, on this machine (ms per image).
    pub edge_ms: f64,
    /// Number of values in the tensor at this point (per image).
    pub elements: u64,
    /// Ways to send the tensor at this point; empty exactly at `end`, where nothing is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<CodingCost>,
}

/// Cost of one coding of the tensor at a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodingCost {
    /// Codec name as the codec crate's `Coding` displays it (`"f32"`, `"f32-lz4"`, `"q8-lz4"`, …);
    /// unique within a point.
    pub coding: String,
    pub class: CodingClass,
    /// Mean bytes on the wire per image, framing included.
    pub bytes: f64,
    /// Mean encode time (ms per image) on this machine.
    pub encode_ms: f64,
    /// Mean decode time (ms per image) on this machine.
    pub decode_ms: f64,
    /// Test accuracy (fraction) measured with this coding; `None` = same as the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

impl PointProfile {
    /// The all-local point: nothing is transmitted.
    pub fn is_end(&self) -> bool {
        self.name == END_POINT
    }

    /// The offload-everything point: the device sends the input image.
    pub fn is_input(&self) -> bool {
        self.name == INPUT_POINT
    }

    pub fn coding(&self, name: &str) -> Option<&CodingCost> {
        self.codings.iter().find(|c| c.coding == name)
    }
}

impl ModelProfile {
    pub fn point(&self, point: u16) -> Option<&PointProfile> {
        self.points.iter().find(|p| p.point == point)
    }

    /// Accuracy of running this model with `coding`: the model's own when the coding was not
    /// measured separately or nothing is sent, else the lower of the two. A coding's accuracy is
    /// measured on the profile's few accuracy images (`--accuracy-images`, e.g. 200) and the
    /// model's on the whole test split, so a coding can read higher than its model by sampling
    /// noise alone (a member 0.45 points below the floor was admitted by its q4-lz4 coding's
    /// 200-image figure, RESULTS §10c); lossy coding does not make a model more accurate.
    pub fn accuracy_with(&self, coding: Option<&CodingCost>) -> f64 {
        coding.and_then(|c| c.accuracy).map_or(self.accuracy, |a| a.min(self.accuracy))
    }
}

impl Profile {
    /// Parse and validate a profile written by `tandem profile`.
    pub fn from_toml_str(text: &str) -> Result<Self, PlanError> {
        let profile: Profile = toml::from_str(text)?;
        profile.validate()?;
        Ok(profile)
    }

    pub fn to_toml_string(&self) -> Result<String, PlanError> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// The original (unpruned) model; `None` only for an invalid profile.
    pub fn original(&self) -> Option<&ModelProfile> {
        self.models.iter().find(|m| m.kind == ModelKind::Original)
    }

    /// An emulated device profile: every time (compute, encode, decode) multiplied by `factor`,
    /// the role set to device and the provenance labelled with the cumulative slowdown.
    ///
    /// All times are scaled, not only the device-side ones, so the result describes one coherent
    /// (slower) machine; [`combine`] then takes only the device-side ones from it.
    pub fn slowed(&self, factor: f64) -> Result<Profile, PlanError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(PlanError::InvalidSlowdown { factor });
        }
        let mut out = self.clone();
        out.provenance.role = Role::Device;
        out.provenance.emulated_slowdown = Some(self.provenance.emulated_slowdown.unwrap_or(1.0) * factor);
        for point in out.models.iter_mut().flat_map(|m| m.points.iter_mut()) {
            point.device_ms *= factor;
            point.edge_ms *= factor;
            for coding in &mut point.codings {
                coding.encode_ms *= factor;
                coding.decode_ms *= factor;
            }
        }
        Ok(out)
    }

    /// Check the invariants the planner relies on.
    pub fn validate(&self) -> Result<(), PlanError> {
        let prov = &self.provenance;
        if prov.threads == 0 {
            return Err(invalid("provenance", "threads must be at least 1"));
        }
        if let Some(r) = prov.emulated_slowdown
            && !(r.is_finite() && r > 0.0)
        {
            return Err(invalid("provenance", format!("emulated_slowdown must be finite and positive, got {r}")));
        }
        let originals = self.models.iter().filter(|m| m.kind == ModelKind::Original).count();
        if originals != 1 {
            return Err(invalid("models", format!("exactly one model must be of kind original, found {originals}")));
        }
        let mut ids = BTreeSet::new();
        for model in &self.models {
            if !ids.insert(model.model_id) {
                return Err(invalid(model_location(model), "duplicate model_id"));
            }
            validate_model(model)?;
        }
        Ok(())
    }
}

fn validate_model(model: &ModelProfile) -> Result<(), PlanError> {
    let at = model_location(model);
    check_accuracy(&at, model.accuracy)?;
    let Some(last) = model.points.last() else {
        return Err(invalid(at, "no partition points"));
    };
    if !last.is_end() {
        return Err(invalid(at, format!("the last point must be {END_POINT:?}")));
    }
    let mut names = BTreeSet::new();
    for (i, point) in model.points.iter().enumerate() {
        let at = point_location(model, point);
        if i > 0 && model.points[i - 1].point >= point.point {
            return Err(invalid(at, "points must be in strictly ascending order"));
        }
        if !names.insert(point.name.as_str()) {
            return Err(invalid(at, "duplicate point name"));
        }
        if point.is_input() && i != 0 {
            return Err(invalid(at, format!("{INPUT_POINT:?} must be the first point")));
        }
        check_time(&at, "device_ms", point.device_ms)?;
        check_time(&at, "edge_ms", point.edge_ms)?;
        match (point.is_end(), point.codings.is_empty()) {
            (true, false) => return Err(invalid(at, "the end point sends nothing: no codings")),
            (false, true) => return Err(invalid(at, "a split point needs at least one coding")),
            _ => {}
        }
        let mut codings = BTreeSet::new();
        for coding in &point.codings {
            let at = format!("{at} coding {}", coding.coding);
            if !codings.insert(coding.coding.as_str()) {
                return Err(invalid(at, "duplicate coding"));
            }
            check_time(&at, "bytes", coding.bytes)?;
            check_time(&at, "encode_ms", coding.encode_ms)?;
            check_time(&at, "decode_ms", coding.decode_ms)?;
            if let Some(acc) = coding.accuracy {
                check_accuracy(&at, acc)?;
            }
        }
    }
    Ok(())
}

fn check_time(at: &str, field: &str, value: f64) -> Result<(), PlanError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(at, format!("{field} must be finite and non-negative, got {value}")))
    }
}

fn check_accuracy(at: &str, value: f64) -> Result<(), PlanError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(at, format!("accuracy must be a fraction in 0..=1 (not percent), got {value}")))
    }
}

fn invalid(location: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::InvalidProfile { location: location.into(), reason: reason.into() }
}

fn model_location(model: &ModelProfile) -> String {
    format!("model {} ({})", model.model_id, model.name)
}

fn point_location(model: &ModelProfile, point: &PointProfile) -> String {
    format!("model {} ({}) point {} ({})", model.model_id, model.name, point.point, point.name)
}

/// A device and an edge profile joined: device-side times from the device, edge-side times and
/// accuracies from the edge. Built only by [`combine`], hence always valid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profiles {
    device: Provenance,
    edge: Provenance,
    /// Sorted by `model_id`.
    models: Vec<ModelProfile>,
    /// Applied to every cost priced from these profiles; identity from [`combine`].
    calibration: Calibration,
}

impl Profiles {
    pub fn device(&self) -> &Provenance {
        &self.device
    }

    pub fn edge(&self) -> &Provenance {
        &self.edge
    }

    /// All series members, by ascending `model_id`. In each point, `device_ms` and the codings'
    /// `encode_ms`/`bytes` are the device's; `edge_ms`, `decode_ms` and accuracies the edge's.
    pub fn models(&self) -> &[ModelProfile] {
        &self.models
    }

    pub fn model(&self, model_id: u32) -> Option<&ModelProfile> {
        self.models.iter().find(|m| m.model_id == model_id)
    }

    /// The correction applied to every cost priced from these profiles (see
    /// [`crate::calibration`]).
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The same profiles, priced with `calibration` (which replaces any earlier one).
    pub fn calibrated(&self, calibration: Calibration) -> Profiles {
        Profiles { calibration, ..self.clone() }
    }

    /// Replace the calibration in place.
    pub fn set_calibration(&mut self, calibration: Calibration) {
        self.calibration = calibration;
    }

    /// The same profiles with the device `factor` times slower still: every device-side time
    /// (inference up to each point, encoding) multiplied, the edge's untouched, the device's
    /// provenance labelled with the cumulative slowdown. For what-if questions ("on a board
    /// 4× weaker, which plan would win?"); the calibration is kept.
    pub fn device_slowed(&self, factor: f64) -> Result<Profiles, PlanError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(PlanError::InvalidSlowdown { factor });
        }
        let mut out = self.clone();
        out.device.emulated_slowdown = Some(self.device.emulated_slowdown.unwrap_or(1.0) * factor);
        for point in out.models.iter_mut().flat_map(|m| m.points.iter_mut()) {
            point.device_ms *= factor;
            for coding in &mut point.codings {
                coding.encode_ms *= factor;
            }
        }
        Ok(out)
    }

    /// The unpruned model.
    pub fn original(&self) -> &ModelProfile {
        // `combine` validated both profiles, so exactly one original exists.
        self.models
            .iter()
            .find(|m| m.kind == ModelKind::Original)
            .unwrap_or_else(|| unreachable!("validated profiles hold an original model"))
    }
}

/// Join a device profile and an edge profile measured on the same series.
///
/// Errors if either is invalid, has the wrong role, or if they disagree on models (ids, names,
/// kinds), points (indices, names, element counts) or codings (names, classes).
/// The transmitted `bytes` come from the device (the side that encodes); accuracies come from the
/// edge profile (the side that classifies).
pub fn combine(device: &Profile, edge: &Profile) -> Result<Profiles, PlanError> {
    for (profile, expected) in [(device, Role::Device), (edge, Role::Edge)] {
        if profile.provenance.role != expected {
            return Err(PlanError::WrongRole { expected, got: profile.provenance.role });
        }
        profile.validate()?;
    }
    let device_ids: BTreeSet<u32> = device.models.iter().map(|m| m.model_id).collect();
    let edge_ids: BTreeSet<u32> = edge.models.iter().map(|m| m.model_id).collect();
    if device_ids != edge_ids {
        return Err(mismatch("models", "model ids", &device_ids, &edge_ids));
    }
    let mut models = Vec::with_capacity(device.models.len());
    for id in device_ids {
        // Both lookups succeed: the id sets are equal and were built from these vectors.
        let (Some(dev), Some(edg)) =
            (device.models.iter().find(|m| m.model_id == id), edge.models.iter().find(|m| m.model_id == id))
        else {
            unreachable!("model id {id} is in both id sets");
        };
        models.push(combine_model(dev, edg)?);
    }
    Ok(Profiles {
        device: device.provenance.clone(),
        edge: edge.provenance.clone(),
        models,
        calibration: Calibration::IDENTITY,
    })
}

fn combine_model(dev: &ModelProfile, edg: &ModelProfile) -> Result<ModelProfile, PlanError> {
    let at = model_location(dev);
    if dev.name != edg.name {
        return Err(mismatch(&at, "name", &dev.name, &edg.name));
    }
    if dev.kind != edg.kind {
        return Err(mismatch(&at, "kind", &dev.kind, &edg.kind));
    }
    let dev_points: Vec<(u16, &str)> = dev.points.iter().map(|p| (p.point, p.name.as_str())).collect();
    let edg_points: Vec<(u16, &str)> = edg.points.iter().map(|p| (p.point, p.name.as_str())).collect();
    if dev_points != edg_points {
        return Err(mismatch(&at, "points", &dev_points, &edg_points));
    }
    let mut points = Vec::with_capacity(dev.points.len());
    for (dp, ep) in dev.points.iter().zip(&edg.points) {
        let at = point_location(dev, dp);
        if dp.elements != ep.elements {
            return Err(mismatch(&at, "elements", &dp.elements, &ep.elements));
        }
        let dev_codings: Vec<(&str, CodingClass)> = dp.codings.iter().map(|c| (c.coding.as_str(), c.class)).collect();
        let edg_codings: Vec<(&str, CodingClass)> = ep.codings.iter().map(|c| (c.coding.as_str(), c.class)).collect();
        if dev_codings != edg_codings {
            return Err(mismatch(&at, "codings", &dev_codings, &edg_codings));
        }
        let codings = dp
            .codings
            .iter()
            .zip(&ep.codings)
            .map(|(dc, ec)| CodingCost {
                coding: dc.coding.clone(),
                class: dc.class,
                bytes: dc.bytes,
                encode_ms: dc.encode_ms,
                decode_ms: ec.decode_ms,
                accuracy: ec.accuracy,
            })
            .collect();
        points.push(PointProfile {
            point: dp.point,
            name: dp.name.clone(),
            device_ms: dp.device_ms,
            edge_ms: ep.edge_ms,
            elements: dp.elements,
            codings,
        });
    }
    Ok(ModelProfile { model_id: dev.model_id, name: dev.name.clone(), kind: dev.kind, accuracy: edg.accuracy, points })
}

fn mismatch(location: &str, what: &str, device: &impl fmt::Debug, edge: &impl fmt::Debug) -> PlanError {
    PlanError::Mismatch {
        location: location.to_owned(),
        what: what.to_owned(),
        device: format!("{device:?}"),
        edge: format!("{edge:?}"),
    }
}
