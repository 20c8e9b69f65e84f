//! Report behaviour: unit parsing, plan comparisons that respect the floor, profile pairing and
//! the report files for a tiny synthetic series profiled for real.

mod compare;
mod document;
mod fixture;
mod units;
