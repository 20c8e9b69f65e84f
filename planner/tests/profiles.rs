//! Profiles: TOML round trip, validation, `combine` and `slowed`.

use tandem_planner::testkit::coding;
use tandem_planner::{CodingClass, ModelKind, PlanError, Profile, Role, combine};

use crate::fixtures::edge_profile;

#[test]
fn profile_toml_round_trip() {
    let mut original = edge_profile().slowed(10.0).expect("valid factor");
    // Values whose decimal form is long or extreme must survive exactly.
    original.models[1].points[1].device_ms = 0.1 + 0.2;
    original.models[1].points[1].codings[0].bytes = 1e-300;
    original.models[1].points[1].elements = i64::MAX as u64;
    let text = original.to_toml_string().expect("serialisable");
    let back = Profile::from_toml_str(&text).expect("parses and validates");
    assert_eq!(back, original);
    assert!(text.contains("emulated_slowdown = 10.0"), "{text}");
}

#[test]
fn profile_toml_rejects_unknown_fields() {
    let text = edge_profile().to_toml_string().expect("serialisable");
    let bad = text.replacen("threads = 2", "threads = 2\ncores = 4", 1);
    assert!(matches!(Profile::from_toml_str(&bad), Err(PlanError::ParseToml(_))));
}

#[test]
fn profile_rejects_percent_accuracy() {
    let mut p = edge_profile();
    p.models[1].accuracy = 93.05;
    let err = p.validate().expect_err("percent is not a fraction");
    assert!(err.to_string().contains("not percent"), "{err}");
}

#[test]
fn profile_rejects_structural_defects() {
    let mut no_original = edge_profile();
    no_original.models[0].kind = ModelKind::Step1 { iter: 0 };
    let mut end_not_last = edge_profile();
    end_not_last.models[0].points.swap(2, 3);
    let mut end_with_coding = edge_profile();
    end_with_coding.models[0].points[3].codings.push(coding("f32", CodingClass::Raw, 1.0));
    let mut split_without_coding = edge_profile();
    split_without_coding.models[2].points[1].codings.clear();
    let mut negative_time = edge_profile();
    negative_time.models[1].points[2].edge_ms = -1.0;
    let mut nan_bytes = edge_profile();
    nan_bytes.models[1].points[2].codings[0].bytes = f64::NAN;
    let mut duplicate_id = edge_profile();
    duplicate_id.models[2].model_id = 1;
    for (what, p) in [
        ("no original", no_original),
        ("end not last", end_not_last),
        ("end with coding", end_with_coding),
        ("split without coding", split_without_coding),
        ("negative time", negative_time),
        ("NaN bytes", nan_bytes),
        ("duplicate id", duplicate_id),
    ] {
        assert!(matches!(p.validate(), Err(PlanError::InvalidProfile { .. })), "{what} must be rejected");
    }
}

#[test]
fn slowed_labels_the_profile_emulated() {
    let edge = edge_profile();
    let device = edge.slowed(10.0).expect("valid factor");
    assert_eq!(device.provenance.role, Role::Device);
    assert_eq!(device.provenance.emulated_slowdown, Some(10.0));
    assert_eq!(device.provenance.machine, edge.provenance.machine);
    assert_eq!(device.models[0].points[3].device_ms, 60.0);
    assert_eq!(device.models[0].points[1].codings[1].encode_ms, 2.0);
    // Slowing an emulated profile again compounds the label.
    let twice = device.slowed(2.0).expect("valid factor");
    assert_eq!(twice.provenance.emulated_slowdown, Some(20.0));
    for factor in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(edge.slowed(factor), Err(PlanError::InvalidSlowdown { .. })));
    }
}

#[test]
fn slowing_the_device_of_combined_profiles_is_slowing_its_profile_first() {
    let edge = edge_profile();
    let direct = combine(&edge.slowed(10.0).expect("valid factor"), &edge).expect("consistent");
    let what_if = combine(&edge.slowed(2.5).expect("valid factor"), &edge)
        .expect("consistent")
        .device_slowed(4.0)
        .expect("valid factor");
    assert_eq!(what_if.device().emulated_slowdown, Some(10.0));
    assert_eq!(what_if.edge().emulated_slowdown, None);
    for (a, b) in direct.models().iter().zip(what_if.models()) {
        for (pa, pb) in a.points.iter().zip(&b.points) {
            assert!((pa.device_ms - pb.device_ms).abs() < 1e-9, "{}: {} vs {}", pa.name, pa.device_ms, pb.device_ms);
            assert_eq!(pa.edge_ms, pb.edge_ms, "the edge is untouched");
            for (ca, cb) in pa.codings.iter().zip(&pb.codings) {
                assert!((ca.encode_ms - cb.encode_ms).abs() < 1e-9);
                assert_eq!((ca.decode_ms, ca.bytes), (cb.decode_ms, cb.bytes));
            }
        }
    }
    for factor in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(direct.device_slowed(factor), Err(PlanError::InvalidSlowdown { .. })));
    }
}

#[test]
fn combine_takes_each_side_from_its_profile() {
    let edge = edge_profile();
    let mut device = edge.slowed(10.0).expect("valid factor");
    device.models[0].accuracy = 0.5; // accuracy comes from the edge profile
    device.models[0].points[1].codings[1].bytes = 11_000.0; // bytes come from the device
    let p = combine(&device, &edge).expect("consistent");
    let pool1 = &p.original().points[1];
    assert_eq!(pool1.device_ms, 20.0);
    assert_eq!(pool1.edge_ms, 4.0);
    assert_eq!(pool1.codings[1].encode_ms, 2.0);
    assert_eq!(pool1.codings[1].decode_ms, 0.1);
    assert_eq!(pool1.codings[1].bytes, 11_000.0);
    assert_eq!(p.original().accuracy, 0.9477);
    assert_eq!(p.device().emulated_slowdown, Some(10.0));
    assert_eq!(p.edge().emulated_slowdown, None);
}

#[test]
fn combine_errors_on_mismatched_profiles() {
    let edge = edge_profile();
    let device = edge.slowed(10.0).expect("valid factor");

    let mut missing_model = device.clone();
    missing_model.models.pop();
    let mut renamed_point = device.clone();
    renamed_point.models[1].points[1].name = "conv2_1".into();
    let mut other_elements = device.clone();
    other_elements.models[2].points[2].elements = 7;
    let mut other_coding = device.clone();
    other_coding.models[0].points[1].codings[1].coding = "q4-lz4".into();
    let mut other_kind = device.clone();
    other_kind.models[2].kind = ModelKind::Step2 { layer: 6, iter: 5 };
    for (what, d) in [
        ("missing model", missing_model),
        ("renamed point", renamed_point),
        ("other elements", other_elements),
        ("other coding", other_coding),
        ("other kind", other_kind),
    ] {
        assert!(matches!(combine(&d, &edge), Err(PlanError::Mismatch { .. })), "{what}");
    }
    assert!(matches!(combine(&edge, &edge), Err(PlanError::WrongRole { expected: Role::Device, .. })));
    assert!(matches!(combine(&device, &device), Err(PlanError::WrongRole { expected: Role::Edge, .. })));
}
