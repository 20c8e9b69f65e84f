//! Which measured profiles describe the device and which the edge.
//!
//! `tandem plan` and `tandem report` accept either one profile (`--profile P`: one machine plays
//! both sides, the device optionally emulated as `R ×` slower, as in the paper) or a device and
//! an edge profile measured on their own machines. `--slowdown R` always applies to the device.
//! Pure: reading the files is the caller's (`tandem_lab::profiles` reads and calls in here).

use crate::error::PlanError;
use crate::profile::{Profile, Profiles, Role, combine};

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
pub fn build_profiles(source: ProfileSource, slowdown: Option<f64>) -> Result<Profiles, PlanError> {
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
        Some(r) => device.slowed(r)?,
        None => device,
    };
    combine(&device, &edge)
}
