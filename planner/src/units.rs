//! Quantities on the command line: `1Mbit`, `500kbit/s`, `2MB/s`, `20ms`, `1.5s`, `90%`.
//!
//! A bare number is refused: "10" could be bits, bytes, kilo or mega per second, or ms or s, and
//! a planner fed the wrong one silently picks the wrong split. Prefixes are decimal (k = 1000).
//! The same rule holds for run lengths (`--duration 60s`), parsed by [`parse_duration`] through
//! `humantime`. Pure text → number functions (no I/O), so they live with the planner whose
//! inputs they are; `tandem-report` renders numbers back with the `format_*` functions.

use std::time::Duration;

use crate::error::UnitError;
use crate::select::AccuracyFloor;

fn err(what: &'static str, input: &str, problem: impl Into<String>) -> UnitError {
    UnitError { what, input: input.chars().take(40).collect(), problem: problem.into() }
}

/// Split `"1.5 Mbit"` into `(1.5, "Mbit")`. The number is plain decimal (digits and one point).
fn split_number<'a>(what: &'static str, input: &'a str, example: &str) -> Result<(f64, &'a str), UnitError> {
    let s = input.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() {
        return Err(err(what, input, format!("expected a number followed by a unit, e.g. {example}")));
    }
    let value: f64 = num.parse().map_err(|_| err(what, input, format!("{num:?} is not a number (e.g. {example})")))?;
    if !value.is_finite() {
        return Err(err(what, input, "not a finite number"));
    }
    Ok((value, unit.trim()))
}

/// Parse a bandwidth into bits per second.
///
/// Accepted units (prefix `k`/`K`, `M`, `G` or none): bits as `bit`, `bits`, `bit/s`, `bits/s`,
/// `bps`, `b/s` (any case); bytes as `B/s`, `Bps`, `byte/s`, `bytes/s` (capital `B`). Must be
/// positive.
pub fn parse_bandwidth(input: &str) -> Result<f64, UnitError> {
    const WHAT: &str = "bandwidth";
    let (value, unit) = split_number(WHAT, input, "1Mbit, 500kbit, 2MB/s")?;
    if unit.is_empty() {
        return Err(err(WHAT, input, "missing unit: write e.g. 1Mbit, 500kbit or 2MB/s"));
    }
    let (scale, rest) = match unit.chars().next() {
        Some('k' | 'K') => (1e3, &unit[1..]),
        Some('M') => (1e6, &unit[1..]),
        Some('G' | 'g') => (1e9, &unit[1..]),
        // A lower-case `m` is milli; nobody means millibits, so say so rather than guess.
        Some('m') if rest_is_rate(&unit[1..]) => {
            return Err(err(WHAT, input, "`m` is milli; write M for mega (1Mbit)"));
        }
        _ => (1.0, unit),
    };
    let per_unit = match rest {
        "B/s" | "Bps" | "byte/s" | "bytes/s" | "Byte/s" | "Bytes/s" => 8.0,
        r if ["bit", "bits", "bit/s", "bits/s", "bps", "b/s"].contains(&r.to_ascii_lowercase().as_str())
            && r != "B/s" =>
        {
            1.0
        }
        _ => {
            return Err(err(
                WHAT,
                input,
                format!("unknown unit {unit:?}: use bit, kbit, Mbit, Gbit (per second) or kB/s, MB/s"),
            ));
        }
    };
    let bps = value * scale * per_unit;
    if bps <= 0.0 {
        return Err(err(WHAT, input, "must be positive"));
    }
    Ok(bps)
}

fn rest_is_rate(r: &str) -> bool {
    ["bit", "bits", "bit/s", "bits/s", "bps", "b/s", "B/s", "Bps"].contains(&r)
}

/// Parse a short duration (an RTT, a delay) into milliseconds: `ns`, `us`/`µs`, `ms`, `s`, with a
/// decimal number (`0.5ms`, `1.5s`). Zero is allowed; a bare number is refused.
///
/// Not `humantime`: it takes integers only (`1.5s` is an error there) and hours, while an RTT
/// needs fractions of a millisecond and is never an hour — so this keeps its own small grammar
/// with the same bare-number rule as [`parse_duration`].
pub fn parse_duration_ms(input: &str) -> Result<f64, UnitError> {
    const WHAT: &str = "duration";
    let (value, unit) = split_number(WHAT, input, "20ms, 1.5s")?;
    let scale = match unit {
        "" => return Err(err(WHAT, input, "missing unit: write e.g. 20ms or 0.5s")),
        "ns" => 1e-6,
        "us" | "µs" => 1e-3,
        "ms" => 1.0,
        "s" | "sec" => 1e3,
        _ => {
            return Err(err(WHAT, input, format!("unknown unit {unit:?}: use ns, us, ms or s")));
        }
    };
    Ok(value * scale)
}

/// Parse a run length (`500ms`, `60s`, `2m`, `1h 30m`) through `humantime::parse_duration`.
/// A bare number is refused (is `60` seconds or minutes?), as is zero.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    const WHAT: &str = "duration";
    let s = input.trim();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err(WHAT, input, "missing unit: write e.g. 500ms, 60s, 2m or 1h"));
    }
    let d = humantime::parse_duration(s).map_err(|e| err(WHAT, input, format!("{e} (e.g. 500ms, 60s, 2m, 1h 30m)")))?;
    if d.is_zero() {
        return Err(err(WHAT, input, "must be longer than zero"));
    }
    Ok(d)
}

/// Parse a percentage (`90`, `90%`, `1.8pp`) into its number (90.0, 1.8), in `0..=100`.
pub fn parse_percent(input: &str) -> Result<f64, UnitError> {
    const WHAT: &str = "percentage";
    let (value, unit) = split_number(WHAT, input, "90, 1.8")?;
    if !matches!(unit, "" | "%" | "pp") {
        return Err(err(
            WHAT,
            input,
            format!("unknown suffix {unit:?}: write a number of percent (points), e.g. 90 or 1.8"),
        ));
    }
    if !(0.0..=100.0).contains(&value) {
        return Err(err(WHAT, input, "must be between 0 and 100"));
    }
    Ok(value)
}

/// The accuracy floor from the command line: `--max-loss` in percentage points below the
/// original, or `--min-accuracy` in percent. Exactly one must be given. A minimum accuracy of
/// at most 1 % is refused as a probable fraction (`0.9` meant as 90 %).
pub fn accuracy_floor(max_loss_pp: Option<&str>, min_accuracy_pct: Option<&str>) -> Result<AccuracyFloor, UnitError> {
    match (max_loss_pp, min_accuracy_pct) {
        (Some(loss), None) => Ok(AccuracyFloor::MaxLoss(parse_percent(loss)? / 100.0)),
        (None, Some(acc)) => {
            let pct = parse_percent(acc)?;
            if pct > 0.0 && pct <= 1.0 {
                return Err(err(
                    "percentage",
                    acc,
                    format!("accuracy is in percent here: did you mean {}?", pct * 100.0),
                ));
            }
            Ok(AccuracyFloor::Absolute(pct / 100.0))
        }
        (Some(_), Some(_)) => Err(err("accuracy floor", "", "give either --max-loss or --min-accuracy, not both")),
        (None, None) => Err(err("accuracy floor", "", "give --max-loss PP or --min-accuracy PERCENT")),
    }
}

/// `1 Mbit/s`, `500 kbit/s`, `2.5 Gbit/s`.
pub fn format_bandwidth(bps: f64) -> String {
    let (v, u) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    format!("{} {u}", trim_float(v))
}

/// A ratio such as `25.6×`; `∞` when the divisor is zero.
pub fn format_ratio(r: f64) -> String {
    if r.is_infinite() {
        "∞".into()
    } else if r.is_nan() {
        "–".into()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Bytes as `812 B`, `12.3 kB`, `1.05 MB`.
pub fn format_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lengths_go_through_humantime_and_need_a_unit() {
        let ok = |s: &str| parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("60s"), Duration::from_secs(60));
        assert_eq!(ok(" 2m "), Duration::from_secs(120));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        for bad in ["", "60", "1.5", "0s", "fast", "-5s", "10 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let bare = parse_duration("60").expect_err("bare number");
        assert!(bare.problem.contains("missing unit"), "{bare}");
    }
}
