//! # tandem-report — reading plans and profiles as a person would
//!
//! Everything between the planner's numbers and a human: the chosen plan next to the baselines
//! the paper compares with, markdown tables, and a markdown report with charts. This crate only
//! renders: quantities typed on the command line and profile resolution live in
//! `tandem_planner::{units, inputs}`, reading profile files in `tandem_lab::profiles`.
//!
//! # Layout
//! - [`compare`]: [`Comparison`] — the 2-step plan and every [`tandem_planner::Baseline`] at one
//!   link and floor, the ratios against the unpruned best split, a text rendering (`tandem plan`),
//!   and [`describe_sides`] (where the device's and the edge's times come from).
//! - [`table`]: [`Table`], the one markdown-table renderer (report documents, `tandem reproduce`).
//! - [`charts`]: chart data ([`charts::GroupedBars`], [`charts::StackedBars`],
//!   [`charts::LogLines`]) and their plotters drawings to PNG/SVG.
//! - [`document`]: [`write_report`] — `report.md` with the paper's main figure (elements per
//!   point), a latency breakdown, latency against bandwidth and the headline ratios.
//! - [`regimes`]: [`regimes::regime_map`] — the planner's regime (input offload, mid-network split,
//!   local) over device speed × bandwidth: where a split would win.
//! - `font`: the TrueType file chart text is drawn with (fonts-dejavu-core, or `TANDEM_FONT`).
//! - [`error`]: [`ReportError`], what writing a report can fail with.

pub mod charts;
pub mod compare;
pub mod document;
pub mod error;
mod font;
pub mod regimes;
pub mod table;

pub use charts::ChartFormat;
pub use compare::{Comparison, Ratios, describe_sides};
pub use document::{ReportFiles, ReportOptions, write_report};
pub use error::{ReportError, Result};
pub use font::{FONT_CANDIDATES, FONT_ENV, ensure_fonts};
pub use table::{Align, Table};
