use crate::profile::Role;

/// What can go wrong building or querying the planner's inputs. Selection itself never fails: no
/// feasible plan is `None`, not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("invalid profile at {location}: {reason}")]
    InvalidProfile { location: String, reason: String },

    #[error("expected a {expected} profile, got a {got} profile")]
    WrongRole { expected: Role, got: Role },

    #[error("device and edge profiles disagree on {what} at {location}: device {device}, edge {edge}")]
    Mismatch { location: String, what: String, device: String, edge: String },

    #[error("{field} must be finite and non-negative, got {value}")]
    InvalidSetting { field: &'static str, value: f64 },

    #[error("slowdown factor must be finite and positive, got {factor}")]
    InvalidSlowdown { factor: f64 },

    #[error("no such choice in the profiles: model {model_id}, point {point}, coding {coding:?}")]
    UnknownChoice { model_id: u32, point: u16, coding: Option<String> },

    #[error("cannot parse profile TOML")]
    ParseToml(#[from] toml::de::Error),

    #[error("cannot write profile TOML")]
    WriteToml(#[from] toml::ser::Error),
}

/// A value on the command line that is not a quantity of the expected kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} {input:?}: {problem}")]
pub struct UnitError {
    /// What was being parsed (`bandwidth`, `duration`, `percentage`).
    pub what: &'static str,
    /// The text given (truncated to 40 characters).
    pub input: String,
    /// Why it was refused, with an example of what is accepted.
    pub problem: String,
}
