//! The reproduction config (`configs/paper-*.toml`): schema, checks, and the guard that a stage
//! directory is only reused by the config that made it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// `configs/paper-*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReproduceConfig {
    /// Short name: the output directory and the marker in the results file.
    pub name: String,
    /// Heading of the generated section.
    pub title: String,
    pub train: TrainSection,
    pub prune: PruneSection,
    #[serde(default)]
    pub profile: ProfileSection,
    #[serde(default)]
    pub measure: MeasureSection,
    /// Published numbers to print beside ours (markdown).
    #[serde(default)]
    pub reference: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub model: String,
    pub width_mult: f64,
    pub epochs: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Train on only the first N training images (smoke runs and tests).
    #[serde(default)]
    pub limit_train: Option<u64>,
    /// Data set (`tandem train --dataset`); unset = Fashion-MNIST. Pruning and profiling use the
    /// data set recorded in the model card.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Peak learning rate (`tandem train --lr`); unset = its default. The scenes need 0.01 (the
    /// default 0.05 collapses to chance there, RESULTS §10).
    #[serde(default)]
    pub lr: Option<f64>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSection {
    /// A pruning config file (configs/prune.toml = the fast protocol) ...
    pub config: Option<PathBuf>,
    /// ... or a named preset (`paper` = the authors' protocol; GPU only).
    pub preset: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSection {
    /// Test images coded for bytes and coding time.
    pub images: usize,
    /// Test images for the accuracy of lossy codings (edge profile).
    pub accuracy_images: usize,
}

impl Default for ProfileSection {
    fn default() -> Self {
        ProfileSection { images: 32, accuracy_images: 200 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureSection {
    /// Device emulated this many times slower than this machine (the paper: 10, the default).
    /// At most one of `slowdown` and `board_gmacs`.
    pub slowdown: Option<f64>,
    /// The emulated board's throughput, GMAC/s (a Raspberry Pi 4: 10.3, RESULTS §10b). R is then
    /// derived on each run: this host's throughput on the device profile (the original model,
    /// whole, timed on the run config's device threads) divided by the board's, so the device
    /// stands for the same board on whichever CPU the reproduction runs.
    pub board_gmacs: Option<f64>,
    /// One-way delay of the shaped link, each direction, ms (RTT = twice this).
    pub delay_ms: u64,
    /// Bandwidths measured on the runtime, Mbit/s.
    pub bandwidths_mbps: Vec<f64>,
    /// Length of each measured run, seconds.
    pub duration_s: f64,
    /// `tandem run` config (camera, queues, edge settings).
    pub run_config: PathBuf,
}

impl Default for MeasureSection {
    fn default() -> Self {
        MeasureSection {
            slowdown: None,
            board_gmacs: None,
            delay_ms: 2,
            bandwidths_mbps: vec![1.0, 5.0, 20.0],
            duration_s: 8.0,
            run_config: "configs/demo.toml".into(),
        }
    }
}

/// The paper's R when a config names neither `slowdown` nor `board_gmacs`.
pub const PAPER_SLOWDOWN: f64 = 10.0;

/// How much slower than this machine the device is emulated, and where the figure came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slowdown {
    /// R: device work is stretched (runtime) and priced (planner) R times.
    pub r: f64,
    /// With `board_gmacs`: (this host's measured GMAC/s, the board's GMAC/s).
    pub derived_from: Option<(f64, f64)>,
}

impl MeasureSection {
    /// R for this run: the config's fixed figure, or this host's throughput `host_gmacs` (asked
    /// for only when the config names a board) over the board's. A host slower than the board
    /// cannot emulate it (R would be below 1): an error naming both figures.
    pub fn slowdown(&self, host_gmacs: impl FnOnce() -> anyhow::Result<f64>) -> anyhow::Result<Slowdown> {
        let Some(board) = self.board_gmacs else {
            return Ok(Slowdown { r: self.slowdown.unwrap_or(PAPER_SLOWDOWN), derived_from: None });
        };
        let host = host_gmacs()?;
        let r = host / board;
        anyhow::ensure!(
            r.is_finite() && r >= 1.0,
            "this host runs the device's model at {host:.2} GMAC/s, no faster than the board it should emulate ({board} GMAC/s): it cannot stand for that board"
        );
        Ok(Slowdown { r, derived_from: Some((host, board)) })
    }
}

impl ReproduceConfig {
    /// Read and check a config file; relative paths in it are relative to the working directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_in(path, Path::new("."))
    }

    /// [`ReproduceConfig::load`] with relative paths taken from `cwd`.
    pub fn load_in(path: &Path, cwd: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let c: ReproduceConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            !c.name.is_empty() && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
            "{}: name must be a non-empty [A-Za-z0-9_-] word, got {:?}",
            path.display(),
            c.name
        );
        anyhow::ensure!(
            c.prune.config.is_some() != c.prune.preset.is_some(),
            "{}: [prune] needs exactly one of `config` or `preset`",
            path.display()
        );
        anyhow::ensure!(
            c.train.width_mult > 0.0 && c.train.width_mult <= 4.0 && c.train.epochs > 0.0,
            "{}: [train] width_mult must be in (0, 4] and epochs positive",
            path.display()
        );
        let m = &c.measure;
        anyhow::ensure!(
            m.slowdown.is_none_or(|r| (1.0..=1000.0).contains(&r)),
            "{}: measure.slowdown must be in [1, 1000]",
            path.display()
        );
        anyhow::ensure!(
            m.board_gmacs.is_none_or(|g| g.is_finite() && (0.001..=100_000.0).contains(&g)),
            "{}: measure.board_gmacs must be in [0.001, 100000] GMAC/s",
            path.display()
        );
        anyhow::ensure!(
            m.slowdown.is_none() || m.board_gmacs.is_none(),
            "{}: [measure] takes `slowdown` (a fixed R) or `board_gmacs` (R derived from this host), not both",
            path.display()
        );
        anyhow::ensure!(
            m.bandwidths_mbps.iter().all(|b| b.is_finite() && *b >= 0.01 && *b <= 10_000.0),
            "{}: measure.bandwidths_mbps must be in [0.01, 10000]",
            path.display()
        );
        anyhow::ensure!(
            m.duration_s >= 1.0 && m.duration_s <= 3600.0,
            "{}: measure.duration_s must be in [1, 3600]",
            path.display()
        );
        anyhow::ensure!(m.delay_ms <= 10_000, "{}: measure.delay_ms must be at most 10000", path.display());
        anyhow::ensure!(
            cwd.join(&m.run_config).is_file(),
            "{}: measure.run_config {} is not a file",
            path.display(),
            m.run_config.display()
        );
        anyhow::ensure!(
            c.profile.images >= 1 && c.profile.accuracy_images <= 10_000,
            "{}: [profile] images must be at least 1",
            path.display()
        );
        Ok(c)
    }
}

/// The settings that decide what the cached stages hold, as they were when `dir` was first used:
/// a directory made by another config is refused instead of silently reused.
pub fn check_stages_match(cfg: &ReproduceConfig, dir: &Path) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Stages<'a> {
        train: &'a TrainSection,
        prune: &'a PruneSection,
        profile: &'a ProfileSection,
    }
    let now = toml::to_string(&Stages { train: &cfg.train, prune: &cfg.prune, profile: &cfg.profile })?;
    let path = dir.join("stages.toml");
    match std::fs::read_to_string(&path) {
        Ok(before) => anyhow::ensure!(
            before == now,
            "{} was made with other [train]/[prune]/[profile] settings than {}'s (see {}): delete it or pass another --dir",
            dir.display(),
            cfg.name,
            path.display()
        ),
        Err(_) => std::fs::write(&path, now).with_context(|| format!("writing {}", path.display()))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowdown_is_fixed_or_derived_from_the_board() {
        let fixed = MeasureSection { slowdown: Some(6.5), ..MeasureSection::default() };
        let never = || -> anyhow::Result<f64> { panic!("a fixed R needs no host figure") };
        assert_eq!(fixed.slowdown(never).unwrap(), Slowdown { r: 6.5, derived_from: None });
        assert_eq!(MeasureSection::default().slowdown(never).unwrap().r, PAPER_SLOWDOWN);
        let board = MeasureSection { board_gmacs: Some(10.0), ..MeasureSection::default() };
        let s = board.slowdown(|| Ok(65.0)).unwrap();
        assert_eq!(s, Slowdown { r: 6.5, derived_from: Some((65.0, 10.0)) });
        let err = board.slowdown(|| Ok(5.0)).unwrap_err().to_string();
        assert!(err.contains("5.00 GMAC/s") && err.contains("10 GMAC/s"), "{err}");
        assert!(board.slowdown(|| anyhow::bail!("no profile")).is_err());
    }

    #[test]
    fn the_configs_in_the_repository_load() {
        for name in ["paper-vgg16", "paper-alexnet", "paper-scenes"] {
            // The repository root: the configs' paths are relative to it.
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let path = root.join(format!("configs/{name}.toml"));
            let c = ReproduceConfig::load_in(&path, &root).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(c.name, name.trim_start_matches("paper-"));
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let base = "name = \"x\"\ntitle = \"t\"\n[train]\nmodel = \"vgg16\"\nwidth_mult = 0.25\nepochs = 1\n";
        std::fs::write(&p, format!("{base}[prune]\n")).unwrap();
        assert!(format!("{:#}", ReproduceConfig::load(&p).unwrap_err()).contains("exactly one"));
        std::fs::write(&p, format!("{base}[prune]\npreset = \"fast\"\n[measure]\nslowdwn = 3\n")).unwrap();
        assert!(format!("{:#}", ReproduceConfig::load(&p).unwrap_err()).contains("slowdwn"));
        std::fs::write(&p, format!("{base}[prune]\npreset = \"fast\"\n[measure]\nslowdown = 0.5\n")).unwrap();
        assert!(ReproduceConfig::load(&p).is_err());
        std::fs::write(&p, format!("{base}[prune]\npreset = \"fast\"\n[measure]\nslowdown = 6\nboard_gmacs = 10.3\n"))
            .unwrap();
        assert!(format!("{:#}", ReproduceConfig::load(&p).unwrap_err()).contains("not both"));
    }
}
