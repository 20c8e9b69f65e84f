//! Integration tests for tandem-codec: one binary, one module per concern.
#![allow(clippy::unwrap_used)]

mod common;
mod control;
mod corpus;
mod frame;
mod image;
mod regression;
mod roundtrip;
