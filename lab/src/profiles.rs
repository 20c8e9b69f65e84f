//! Reading profile files: the I/O half of [`tandem_planner::inputs`], which stays pure.
//!
//! Here rather than in the planner because the planner does no I/O (its crate description says
//! so, and its tests need no files); the lab is where files are read for `tandem plan`,
//! `tandem report`, `tandem reproduce` and the device's controller.

use std::path::Path;

use anyhow::Context;
use tandem_planner::{Profile, ProfileSource, Profiles, build_profiles};

/// Read and validate a profile TOML file.
pub fn read_profile(path: &Path) -> anyhow::Result<Profile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Profile::from_toml_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The command-line form: `--profile P` alone, or `--device-profile` with `--edge-profile`; the
/// device emulated `slowdown` times slower if given.
pub fn load_profiles(
    profile: Option<&Path>,
    device: Option<&Path>,
    edge: Option<&Path>,
    slowdown: Option<f64>,
) -> anyhow::Result<Profiles> {
    let source = match (profile, device, edge) {
        (Some(p), None, None) => ProfileSource::Single(read_profile(p)?),
        (None, Some(d), Some(e)) => ProfileSource::Pair { device: read_profile(d)?, edge: read_profile(e)? },
        _ => anyhow::bail!("give either --profile P, or both --device-profile and --edge-profile"),
    };
    build_profiles(source, slowdown).context("combining the device and edge profiles")
}
