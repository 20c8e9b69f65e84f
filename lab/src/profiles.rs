//! Reading profile files: the I/O half of [`tandem_planner::inputs`], which stays pure.
//!
//! Here rather than in the planner because the planner does no I/O (its crate description says
//! so, and its tests need no files); the lab is where files are read for `tandem plan`,
//! `tandem report`, `tandem reproduce` and the device's controller.

use std::path::Path;

use anyhow::Context;
use tandem_planner::{Profile, ProfileSource, Profiles, Role, build_profiles};

/// `tandem profile`'s `--threads` for `role`, so that a profile times the sessions the runtime of
/// `run` will run: the device's `engine_threads` (every core when unset: no flag), the edge's
/// cores split between its workers ([`tandem_actors::edge::worker_threads`]).
pub fn threads_args(role: Role, run: &tandem_actors::config::DemoConfig) -> Vec<String> {
    let threads = match role {
        Role::Device => run.device.engine_threads,
        Role::Edge => Some(tandem_actors::edge::worker_threads(run.edge.workers)),
    };
    threads.map(|n| vec!["--threads".to_string(), n.to_string()]).unwrap_or_default()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_actors::config::{DemoConfig, DeviceConfig, EdgeConfig};

    #[test]
    fn profiles_are_timed_at_the_runtimes_thread_counts() {
        let run = |workers, engine_threads| DemoConfig {
            edge: EdgeConfig { workers, ..EdgeConfig::default() },
            device: DeviceConfig { engine_threads, ..DeviceConfig::default() },
            ..DemoConfig::default()
        };
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        // The edge splits the cores between its workers, at least one thread each.
        assert_eq!(threads_args(Role::Edge, &run(1, None)), ["--threads", &cores.to_string()]);
        assert_eq!(threads_args(Role::Edge, &run(64, None)), ["--threads", "1"]);
        assert_eq!(threads_args(Role::Edge, &run(2, None)), ["--threads", &(cores / 2).max(1).to_string()]);
        // The device: its configured count, or no flag (every core, the profiler's default).
        assert_eq!(threads_args(Role::Device, &run(2, Some(1))), ["--threads", "1"]);
        assert!(threads_args(Role::Device, &run(2, None)).is_empty());
    }
}
