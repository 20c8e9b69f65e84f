//! The series manifest: every model the pruning produced — the original, each step-1
//! iteration, each step-2 member (conv c, iteration k) — with its widths, accuracy, MACs,
//! parameters and tensor size at every partition point, and where its checkpoint lives.
//!
//! It is the contract between the offline and online halves: the profiler and the edge look
//! models up here by `id` (the model id carried in every frame). Written atomically after each
//! member so that `tandem prune --resume` loses at most one iteration.

use crate::checkpoint::write_atomic;
use crate::error::{ModelError, Result};
use crate::zoo::NetSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the manifest inside a series directory.
pub const MANIFEST: &str = "series.toml";
/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// How a member was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "lowercase", deny_unknown_fields)]
pub enum MemberKind {
    /// The trained, unpruned model.
    Original,
    /// Step 1 (whole-network pruning), after iteration `iter` (1-based).
    Step1 {
        /// Iteration.
        iter: u32,
    },
    /// Step 2 (pruning only conv `conv`), after iteration `iter` (1-based) of that family.
    Step2 {
        /// Index of the pruned conv.
        conv: u32,
        /// Iteration within the family.
        iter: u32,
    },
}

/// One model of the series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Model id (stable, unique, used on the wire).
    pub id: u32,
    /// Human-readable name: `original`, `step1-4`, `step2-conv3_3-k6`.
    pub name: String,
    /// How it was produced.
    pub kind: MemberKind,
    /// Model directory, relative to the series directory.
    pub dir: String,
    /// Conv widths.
    pub widths: Vec<usize>,
    /// Eval-mode test accuracy in [0, 1].
    pub accuracy: f64,
    /// Whether the accuracy is within the pruning budget of its reference model.
    pub within_budget: bool,
    /// Trainable parameters.
    pub params: u64,
    /// MACs of one example.
    pub macs: u64,
    /// Elements of one example's tensor at each partition point (index = point).
    pub elements: Vec<usize>,
    /// Fine-tuning epochs spent producing it from its parent.
    pub epochs: f64,
    /// Wall-clock seconds spent producing it from its parent.
    pub wall_s: f64,
}

/// The manifest of a series directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The original model's spec (architecture, input, classes, full widths).
    pub base: NetSpec,
    /// Data set name.
    pub dataset: String,
    /// Name of the pruning preset used.
    pub preset: String,
    /// Accuracy budget (fraction, e.g. 0.018 = 1.8 points).
    pub budget: f64,
    /// Partition point names (index = point).
    pub points: Vec<String>,
    /// Members in creation order.
    pub members: Vec<Member>,
    /// Whether step 1 has finished.
    #[serde(default)]
    pub step1_done: bool,
    /// The step-1 model that step 2 starts from (the last iteration within budget, or its final
    /// fine-tune), once step 1 is done.
    #[serde(default)]
    pub step1_kept: Option<u32>,
    /// Convs whose step-2 family has finished.
    #[serde(default)]
    pub step2_done: Vec<u32>,
}

impl Series {
    /// Read and check `DIR/series.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let s: Series = toml::from_str(&text).map_err(|e| ModelError::checkpoint(&path, e.to_string()))?;
        s.validate().map_err(|e| ModelError::checkpoint(&path, e.to_string()))?;
        Ok(s)
    }

    /// Write `DIR/series.toml` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let text = toml::to_string_pretty(self)
            .map_err(|e| ModelError::checkpoint(dir, format!("serialising manifest: {e}")))?;
        write_atomic(&dir.join(MANIFEST), text.as_bytes())
    }

    /// Consistency checks: version, unique ids, widths valid for the architecture, relative
    /// member directories.
    pub fn validate(&self) -> Result<()> {
        if self.version != MANIFEST_VERSION {
            return Err(ModelError::Config(format!(
                "manifest version {} (this build reads {MANIFEST_VERSION})",
                self.version
            )));
        }
        self.base.validate()?;
        let mut ids = std::collections::HashSet::new();
        for m in &self.members {
            if !ids.insert(m.id) {
                return Err(ModelError::Config(format!("duplicate model id {}", m.id)));
            }
            self.spec_of(m)?;
            let p = Path::new(&m.dir);
            if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(ModelError::Config(format!(
                    "member {} dir {:?} must be relative, inside the series",
                    m.id, m.dir
                )));
            }
        }
        Ok(())
    }

    /// A member by id.
    pub fn member(&self, id: u32) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ModelError::Config(format!("the series has no model id {id}")))
    }

    /// The member's spec (base spec with its widths).
    pub fn spec_of(&self, m: &Member) -> Result<NetSpec> {
        let spec = NetSpec { widths: m.widths.clone(), ..self.base.clone() };
        spec.validate()?;
        Ok(spec)
    }

    /// The member's model directory.
    pub fn dir_of(&self, series_dir: &Path, m: &Member) -> PathBuf {
        series_dir.join(&m.dir)
    }

    /// The original (unpruned) member.
    pub fn original(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.kind == MemberKind::Original)
    }

    /// The step-1 model kept as the starting point of step 2 (see [`Series::step1_kept`]).
    pub fn step1_final(&self) -> Option<&Member> {
        self.step1_kept.and_then(|id| self.members.iter().find(|m| m.id == id))
    }

    /// Next free model id.
    pub fn next_id(&self) -> u32 {
        self.members.iter().map(|m| m.id + 1).max().unwrap_or(0)
    }

    /// Build the member record for a spec.
    // Every argument is a field of the record; a builder would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn describe(
        id: u32,
        name: String,
        kind: MemberKind,
        dir: String,
        spec: &NetSpec,
        accuracy: f64,
        within_budget: bool,
        epochs: f64,
        wall_s: f64,
    ) -> Member {
        Member {
            id,
            name,
            kind,
            dir,
            widths: spec.widths.clone(),
            accuracy,
            within_budget,
            params: spec.params(),
            macs: spec.total_macs(),
            elements: spec.points().iter().map(|p| p.elements()).collect(),
            epochs,
            wall_s,
        }
    }
}
