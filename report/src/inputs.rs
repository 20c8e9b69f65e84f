//! Which measured profiles describe the device and which the edge.
//!
//! `tandem plan` and `tandem report` accept either one profile (`--profile P`: one machine plays
//! both sides, the device optionally emulated as `R ×` slower, as in the paper) or a device and
//! an edge profile measured on their own machines. `--slowdown R` always applies to the device.

use std::path::Path;

use tandem_planner::{Profile, Profiles, Role, combine};

use crate::error::{ReportError, Result};

/// Where the profiles come from.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileSource {
    /// One machine's profile, used for both sides.
    Single(Profile),
    /// A device profile and an edge profile.
    Pair {
        /// Measured on (or for) the device.
        device: Profile,
        /// Measured on the edge.
        edge: Profile,
    },
}

/// Join the profiles into what the planner reads, emulating the device by `slowdown` if given.
pub fn build_profiles(source: ProfileSource, slowdown: Option<f64>) -> Result<Profiles> {
    let (device, edge) = match source {
        ProfileSource::Single(p) => {
            let mut edge = p.clone();
            edge.provenance.role = Role::Edge;
            let mut device = p;
            device.provenance.role = Role::Device;
            (device, edge)
        }
        ProfileSource::Pair { device, edge } => (device, edge),
    };
    let device = match slowdown {
        Some(r) => device.slowed(r).map_err(|source| ReportError::Profile { context: "--slowdown".into(), source })?,
        None => device,
    };
    combine(&device, &edge)
        .map_err(|source| ReportError::Profile { context: "combining the device and edge profiles".into(), source })
}

/// Read and validate a profile TOML file.
pub fn read_profile(path: &Path) -> Result<Profile> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    Profile::from_toml_str(&text).map_err(|source| ReportError::Profile { context: path.display().to_string(), source })
}

/// The command-line form: `--profile P` alone, or `--device-profile` with `--edge-profile`.
pub fn load_profiles(
    profile: Option<&Path>,
    device: Option<&Path>,
    edge: Option<&Path>,
    slowdown: Option<f64>,
) -> Result<Profiles> {
    let source = match (profile, device, edge) {
        (Some(p), None, None) => ProfileSource::Single(read_profile(p)?),
        (None, Some(d), Some(e)) => ProfileSource::Pair { device: read_profile(d)?, edge: read_profile(e)? },
        _ => {
            return Err(ReportError::Options(
                "give either --profile P, or both --device-profile and --edge-profile".into(),
            ));
        }
    };
    build_profiles(source, slowdown)
}

/// One line on where the times come from, naming an emulated device as such.
pub fn describe_sides(profiles: &Profiles) -> String {
    let d = profiles.device();
    let e = profiles.edge();
    let device = match d.emulated_slowdown {
        Some(r) => format!("EMULATED as {r}× the times measured on {} ({} threads)", d.machine, d.threads),
        None => format!("measured on {} ({} threads)", d.machine, d.threads),
    };
    let edge = match e.emulated_slowdown {
        Some(r) => format!("EMULATED as {r}× the times measured on {} ({} threads)", e.machine, e.threads),
        None => format!("measured on {} ({} threads)", e.machine, e.threads),
    };
    format!("device {device}; edge {edge}")
}
