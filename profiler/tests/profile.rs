use tandem_codec::Coding;
use tandem_codec::frame::MAX_HEADER_LEN;
use tandem_models::data::{DataSource, synthetic};
use tandem_models::device;
use tandem_planner::{CodingClass, ModelKind, Profile, Role, combine};
use tandem_profiler::{ProfileError, ProfileOptions, coding_accuracy, load_member, profile_series, profile_series_on};

use crate::fixture::{test_images, tiny_series};

fn quick() -> ProfileOptions {
    ProfileOptions { warmup: 1, runs: 3, images: 2, accuracy_images: 0, ..ProfileOptions::default() }
}

#[test]
fn every_member_and_point_is_profiled_with_consistent_sizes_and_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(dir.path());
    let profile = profile_series_on(dir.path(), Role::Edge, &quick(), &test_images()).expect("profile");
    profile.validate().expect("valid profile");
    assert_eq!(profile.provenance.role, Role::Edge);
    assert!(profile.provenance.threads >= 1);
    assert_eq!(profile.provenance.emulated_slowdown, None);
    assert_eq!(profile.models.len(), series.members.len());

    for (model, member) in profile.models.iter().zip(&series.members) {
        assert_eq!(model.model_id, member.id);
        assert_eq!(model.name, member.name);
        assert_eq!(model.accuracy, member.accuracy);
        let spec = series.spec_of(member).expect("spec");
        let points = spec.points();
        assert_eq!(model.points.len(), points.len(), "{}", member.name);
        let total = model.points[0].edge_ms;
        assert!(model.points[0].device_ms == 0.0 && model.points[0].device_ms.is_sign_positive());
        assert!(total > 0.0);
        for (pp, pt) in model.points.iter().zip(&points) {
            assert_eq!(usize::from(pp.point), pt.index);
            assert_eq!(pp.name, pt.name);
            assert_eq!(pp.elements as usize, pt.elements());
            // Heads and tails are timed as whole calls (not summed from segments), so they need
            // not add up exactly; each is a real, finite time, and only `input` has no head.
            assert!(
                pp.device_ms.is_finite() && pp.device_ms >= 0.0 && pp.edge_ms.is_finite() && pp.edge_ms >= 0.0,
                "{} {}",
                member.name,
                pt.name
            );
            assert_eq!(
                pp.device_ms > 0.0,
                pt.index > 0,
                "{} {}: a head runs exactly when the point is past the input",
                member.name,
                pt.name
            );
            if pp.is_end() {
                assert!(pp.codings.is_empty());
                assert_eq!(pp.edge_ms, 0.0);
                continue;
            }
            let names: Vec<&str> = pp.codings.iter().map(|c| c.coding.as_str()).collect();
            // The image codings are measured where the tensor is an image (1 or 3 channels).
            let mut want = vec!["f32", "f32-lz4", "q8-lz4", "q8c-lz4", "q4-lz4", "q4c-lz4"];
            if pt.shape.len() == 3 && matches!(pt.shape[0], 1 | 3) {
                want.extend(["png", "jpeg50", "jpeg75", "jpeg90"]);
            }
            assert_eq!(names, want, "{} {}", member.name, pt.name);
            let f32 = pp.coding("f32").expect("f32 measured");
            assert_eq!(f32.class, CodingClass::Raw);
            let shape: Vec<usize> = [1].iter().chain(&pt.shape).copied().collect();
            let raw = tandem_profiler::raw_frame_bytes(member.id, pt.index, &shape).expect("f32 frame");
            assert_eq!(f32.bytes, raw as f64, "{} {}", member.name, pt.name);
            assert!(raw > 4 * pt.elements() && raw <= MAX_HEADER_LEN + 4 * pt.elements());
            assert_eq!(pp.coding("f32-lz4").expect("lz4").class, CodingClass::Lossless);
            let q8 = pp.coding("q8-lz4").expect("q8 measured");
            assert_eq!(q8.class, CodingClass::Lossy);
            assert!(q8.bytes < f32.bytes, "{} {}: q8 {} >= f32 {}", member.name, pt.name, q8.bytes, f32.bytes);
            assert!(q8.bytes <= (MAX_HEADER_LEN + pt.elements() + pt.elements() / 255 + 32) as f64);
            for c in &pp.codings {
                assert!(c.encode_ms >= 0.0 && c.decode_ms >= 0.0);
                assert_eq!(c.accuracy, None, "accuracy not requested");
            }
        }
        // Heads grow and tails shrink along the network.
        for w in model.points.windows(2) {
            assert!(w[1].device_ms >= w[0].device_ms && w[1].edge_ms <= w[0].edge_ms);
        }
    }
    assert!(matches!(profile.models[3].kind, ModelKind::Step2 { layer: 6, iter: 1 }));
    // Pruning conv 1 to 2 filters shrinks the tensor at conv1_2 and pool1.
    assert_eq!(profile.models[2].points[2].elements, 2 * 32 * 32);
    assert_eq!(profile.models[2].points[3].elements, 2 * 16 * 16);
}

#[test]
fn profile_survives_toml_and_combines_with_an_emulated_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_series(dir.path());
    // The public entry point, loading its test images from the data source.
    let opts = ProfileOptions { data: Some(DataSource::Synthetic), codings: vec![Coding::Q8_LZ4], ..quick() };
    let edge = profile_series(dir.path(), Role::Edge, &opts).expect("profile");
    let names: Vec<&str> = edge.models[0].points[0].codings.iter().map(|c| c.coding.as_str()).collect();
    assert_eq!(names, ["f32", "q8-lz4"], "f32 is always measured, first");
    let text = edge.to_toml_string().expect("toml");
    let back = Profile::from_toml_str(&text).expect("parse");
    assert_eq!(back, edge);
    let device = edge.slowed(10.0).expect("slowed");
    assert_eq!(device.provenance.emulated_slowdown, Some(10.0));
    let both = combine(&device, &edge).expect("combine");
    let p = &both.original().points[5];
    assert!((p.device_ms - 10.0 * edge.models[0].points[5].device_ms).abs() < 1e-9);
}

#[test]
fn lossy_codings_get_an_accuracy_and_lossless_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(dir.path());
    let opts = ProfileOptions { accuracy_images: 12, runs: 1, warmup: 0, images: 1, ..ProfileOptions::default() };
    let profile = profile_series_on(dir.path(), Role::Edge, &opts, &test_images()).expect("profile");
    for (model, member) in profile.models.iter().zip(&series.members) {
        for p in model.points.iter().filter(|p| !p.is_end()) {
            for c in &p.codings {
                match c.class {
                    CodingClass::Lossy => {
                        let a = c.accuracy.expect("lossy coding accuracy measured");
                        assert!((0.0..=1.0).contains(&a));
                        // Delta applied to the manifest's accuracy: at most 100 % of 12 images away.
                        assert!((a - member.accuracy).abs() <= 1.0);
                    }
                    _ => assert_eq!(c.accuracy, None),
                }
            }
        }
    }
}

#[test]
fn coding_accuracy_is_paired_and_exact_for_lossless_codings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(dir.path());
    let dev = device::cpu();
    let original = series.original().expect("original");
    let net = load_member(&series, dir.path(), original, &dev).expect("load");
    let test = test_images();
    let pools: Vec<usize> =
        series.base.points().iter().filter(|p| p.name.starts_with("pool")).map(|p| p.index).collect();
    let codings = [Coding::F32, Coding::Q8_LZ4, Coding::Q4_LZ4];
    let table = coding_accuracy(&net, &test, &pools, &codings, 40).expect("accuracy");
    assert_eq!(table.len(), pools.len() * codings.len());
    let lossless = table[0].lossless_accuracy;
    for row in &table {
        assert_eq!(row.images, 40);
        assert_eq!(row.lossless_accuracy, lossless, "same images for every row");
        assert!((0.0..=1.0).contains(&row.accuracy));
        if row.coding == Coding::F32 {
            assert_eq!(row.accuracy, lossless);
            assert_eq!(row.loss(), 0.0);
        }
    }
    assert_eq!(table[0].point_name, "pool1");
    // `end` has nothing to code.
    assert!(coding_accuracy(&net, &test, &[series.base.end()], &codings, 4).is_err());
}

#[test]
fn bad_options_and_mismatched_data_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_series(dir.path());
    let zero_runs = ProfileOptions { runs: 0, ..quick() };
    assert!(matches!(
        profile_series_on(dir.path(), Role::Device, &zero_runs, &test_images()),
        Err(ProfileError::Options(_))
    ));
    let rgb = synthetic(3, 10, 4, 4, 1).test;
    assert!(matches!(profile_series_on(dir.path(), Role::Device, &quick(), &rgb), Err(ProfileError::DataMismatch(_))));
    let missing = dir.path().join("nope");
    assert!(matches!(profile_series_on(&missing, Role::Device, &quick(), &test_images()), Err(ProfileError::Model(_))));
}
