use tandem_planner::AccuracyFloor;
use tandem_planner::units::{
    accuracy_floor, format_bandwidth, format_ratio, parse_bandwidth, parse_duration_ms, parse_percent,
};

#[test]
fn bandwidths_in_common_notations() {
    let cases = [
        ("1Mbit", 1e6),
        ("500kbit", 5e5),
        ("500 kbit/s", 5e5),
        ("1.5Mbps", 1.5e6),
        ("10 Mbit/s", 1e7),
        ("2Gbit", 2e9),
        ("800bit", 800.0),
        ("1MB/s", 8e6),
        ("250kB/s", 2e6),
        ("3 bits/s", 3.0),
        (" 100Kbit ", 1e5),
    ];
    for (text, bps) in cases {
        assert_eq!(parse_bandwidth(text).ok(), Some(bps), "{text}");
    }
}

#[test]
fn garbage_bandwidths_are_refused_with_a_reason() {
    for bad in [
        "", "abc", "10", "1 parsec", "1Mbitt", "-1Mbit", "0kbit", "1..5Mbit", "Mbit", "1mbit", "1e6bit", "1MiB/s",
        "NaNMbit", "1 M bit",
    ] {
        let err = parse_bandwidth(bad).expect_err(bad);
        assert!(!err.problem.is_empty(), "{bad}");
    }
    assert!(parse_bandwidth("10").expect_err("bare").problem.contains("missing unit"));
    assert!(parse_bandwidth("1mbit").expect_err("milli").problem.contains("mega"));
}

#[test]
fn durations_and_percentages() {
    assert_eq!(parse_duration_ms("20ms").ok(), Some(20.0));
    assert_eq!(parse_duration_ms("1.5s").ok(), Some(1500.0));
    assert_eq!(parse_duration_ms("500us").ok(), Some(0.5));
    assert_eq!(parse_duration_ms("0ms").ok(), Some(0.0));
    for bad in ["", "20", "20 m", "fast", "-5ms", "20msec", "1h"] {
        assert!(parse_duration_ms(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_percent("90").ok(), Some(90.0));
    assert_eq!(parse_percent("90%").ok(), Some(90.0));
    assert_eq!(parse_percent("1.8pp").ok(), Some(1.8));
    for bad in ["101", "abc", "", "5 apples", "-1"] {
        assert!(parse_percent(bad).is_err(), "{bad}");
    }
}

#[test]
fn accuracy_floors_convert_points_and_percent_to_fractions() {
    assert_eq!(accuracy_floor(Some("2.0"), None).ok(), Some(AccuracyFloor::MaxLoss(0.02)));
    assert_eq!(accuracy_floor(None, Some("90")).ok(), Some(AccuracyFloor::Absolute(0.9)));
    assert!(accuracy_floor(None, Some("0.9")).expect_err("fraction").problem.contains("did you mean 90"));
    assert!(accuracy_floor(Some("1"), Some("90")).is_err());
    assert!(accuracy_floor(None, None).is_err());
    assert!(accuracy_floor(Some("x"), None).is_err());
}

#[test]
fn formatting() {
    assert_eq!(format_bandwidth(1e6), "1 Mbit/s");
    assert_eq!(format_bandwidth(5e5), "500 kbit/s");
    assert_eq!(format_bandwidth(1.5e7), "15 Mbit/s");
    assert_eq!(format_ratio(25.6), "25.60×");
    assert_eq!(format_ratio(f64::INFINITY), "∞");
}
