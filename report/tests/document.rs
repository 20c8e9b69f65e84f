//! The report for a tiny series profiled for real: every file is written and non-trivial, the
//! emulated device is labelled, and the chart data follow the manifest.

use tandem_planner::Role;
use tandem_planner::{ProfileSource, build_profiles};
use tandem_profiler::{ProfileOptions, profile_series_on};
use tandem_report::charts::ChartFormat;
use tandem_report::document::{best_step2, elements_chart};
use tandem_report::{ReportError, ReportOptions, write_report};

use crate::fixture::{test_images, tiny_series};

fn quick_profile(dir: &std::path::Path) -> tandem_planner::Profile {
    let opts = ProfileOptions { warmup: 0, runs: 1, images: 1, accuracy_images: 8, ..ProfileOptions::default() };
    profile_series_on(dir, Role::Edge, &opts, &test_images()).expect("profile")
}

#[test]
fn report_writes_markdown_and_every_chart() {
    let series_dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(series_dir.path());
    let profiles =
        build_profiles(ProfileSource::Single(quick_profile(series_dir.path())), Some(10.0)).expect("profiles");
    let opts =
        ReportOptions { format: ChartFormat::Both, sweep: (1e5, 1e8, 7), rtt_ms: 20.0, ..ReportOptions::default() };
    let files = write_report(&series, &profiles, &opts, out.path()).expect("report");

    let names: Vec<String> = files.charts.iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
    assert_eq!(
        names,
        [
            "elements.png",
            "elements.svg",
            "breakdown_original.png",
            "breakdown_original.svg",
            "latency_vs_bandwidth.png",
            "latency_vs_bandwidth.svg"
        ]
    );
    for chart in &files.charts {
        let bytes = std::fs::read(chart).expect("chart file");
        assert!(bytes.len() > 1000, "{} is {} bytes", chart.display(), bytes.len());
        if chart.extension().is_some_and(|e| e == "png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", chart.display());
        } else {
            let text = String::from_utf8(bytes).expect("svg is text");
            assert!(text.contains("<svg") && text.contains("<text"), "{}", chart.display());
        }
    }
    let md = std::fs::read_to_string(&files.markdown).expect("report.md");
    for needle in [
        "](elements.png)",
        "](breakdown_original.png)",
        "](latency_vs_bandwidth.png)",
        "25.60×",
        "6.01×",
        "4.81×",
        "emulated",
        "1 Mbit/s",
        "10 Mbit/s",
        "step2-conv1_2-k1",
        "## Where a mid-network split would win",
        "| ×32 (R = ",
        "| 300 kbit/s |",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    assert_eq!(opts.regime_bps(), vec![1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8]);
}

#[test]
fn elements_chart_follows_the_manifest_and_ignores_members_over_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(dir.path());
    let chart = elements_chart(&series);
    let inner = series.points.len() - 2;
    assert_eq!(chart.categories.len(), inner);
    assert_eq!(chart.categories[0], "conv1_1");
    assert_eq!(chart.groups.len(), 3);
    let original = series.original().expect("original");
    for (i, v) in chart.groups[0].1.iter().enumerate() {
        assert_eq!(*v, Some(original.elements[i + 1] as f64));
    }
    let best = best_step2(&series);
    // conv3_3 (point 10) and pool3 (point 11): the within-budget member (id 3) wins the tie
    // with the over-budget one (id 4), which is never chosen.
    assert_eq!(best[10].map(|m| m.id), Some(3));
    assert!(best.iter().flatten().all(|m| m.within_budget));
    assert_eq!(chart.groups[2].1[2], Some((2 * 16 * 16) as f64), "pool1: conv1_2 pruned to 2");
}

#[test]
fn a_profile_of_another_series_is_refused() {
    let a = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(a.path());
    let mut profile = quick_profile(a.path());
    profile.models[1].name = "someone-else".into();
    let profiles = build_profiles(ProfileSource::Single(profile), None).expect("profiles");
    let err = write_report(&series, &profiles, &ReportOptions::default(), out.path()).expect_err("mismatch");
    assert!(matches!(err, ReportError::Mismatch(_)), "{err}");
}
