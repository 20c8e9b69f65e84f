//! Durations in the TOML configs: every `*_ms` field takes whole milliseconds (`deadline_ms = 2000`)
//! or a human-readable duration string (`deadline_ms = "2s"`, `"250ms"`, `"1m 30s"`), parsed by
//! `humantime`. The field keeps its name and its unit when written back (an integer of
//! milliseconds), so a config a program writes is read the same way by any version.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// Deserialize a `u64` of milliseconds from an integer or a duration string.
pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(MillisVisitor)
}

/// [`de`] for an optional field (`None` when absent).
pub fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    de(d).map(Some)
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("milliseconds (an integer such as 2000) or a duration string such as \"2s\" or \"250ms\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("a duration cannot be negative ({v} ms)")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let d = humantime::parse_duration(v.trim())
            .map_err(|e| E::custom(format!("{v:?} is not a duration (e.g. \"250ms\", \"2s\", \"1m\"): {e}")))?;
        u64::try_from(d.as_millis()).map_err(|_| E::custom(format!("{v:?} is too long")))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        #[serde(deserialize_with = "super::de")]
        wait_ms: u64,
        #[serde(default, deserialize_with = "super::de_opt")]
        stop_ms: Option<u64>,
    }

    fn parse(text: &str) -> Result<T, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn integers_are_milliseconds_and_strings_are_durations() {
        assert_eq!(parse("wait_ms = 2000").expect("int"), T { wait_ms: 2000, stop_ms: None });
        assert_eq!(
            parse("wait_ms = \"2s\"\nstop_ms = \"1m 30s\"").expect("text"),
            T { wait_ms: 2000, stop_ms: Some(90_000) }
        );
        assert_eq!(parse("wait_ms = \"250ms\"").expect("text").wait_ms, 250);
    }

    #[test]
    fn bad_durations_are_named_errors() {
        let err = parse("wait_ms = \"soon\"").expect_err("not a duration").to_string();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
        let err = parse("wait_ms = -5").expect_err("negative").to_string();
        assert!(err.contains("cannot be negative"), "{err}");
        assert!(parse("wait_ms = 1.5").is_err(), "a float of milliseconds is refused");
    }
}
