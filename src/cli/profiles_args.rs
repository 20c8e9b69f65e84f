//! The profile-source flags shared by `tandem plan` and `tandem report`.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use tandem_lab::profiles::load_profiles;
use tandem_planner::Profiles;

#[derive(Args, Debug)]
pub struct ProfileSource {
    /// One profile for both sides (the device optionally emulated with --slowdown).
    #[arg(long, conflicts_with_all = ["device_profile", "edge_profile"])]
    profile: Option<PathBuf>,
    /// The device's profile (with --edge-profile).
    #[arg(long, requires = "edge_profile")]
    device_profile: Option<PathBuf>,
    /// The edge's profile (with --device-profile).
    #[arg(long, requires = "device_profile")]
    edge_profile: Option<PathBuf>,
    /// Emulate the device as R times slower than its profile says (the paper: 10).
    #[arg(long)]
    slowdown: Option<f64>,
}

impl ProfileSource {
    /// Load and combine the named profiles.
    pub fn load(&self) -> anyhow::Result<Profiles> {
        anyhow::ensure!(
            self.profile.is_some() || self.device_profile.is_some(),
            "give --profile P, or --device-profile P --edge-profile Q"
        );
        load_profiles(
            self.profile.as_deref(),
            self.device_profile.as_deref(),
            self.edge_profile.as_deref(),
            self.slowdown,
        )
        .context("loading profiles")
    }
}
