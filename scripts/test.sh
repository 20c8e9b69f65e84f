#!/usr/bin/env bash
# The test command: install what the tests need, check formatting and lints, then run every test of the workspace in
# release mode (burn is built once, in release; debug-mode burn is too slow to test with), then
# the fault-injection binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Habits first, they are quick to fail: formatting, then clippy with warnings as errors (clippy
# type-checks the whole workspace in its own profile: a few minutes cold on two cores).
cargo fmt --all --check
cargo clippy --release --workspace --all-targets --locked -- -D warnings
# The fault-injection build compiles code the default build leaves out (fail points, and the
# binary's tract column of `bench engines`): lint it too.
FEATURES=tandem/tract
cargo clippy --release --workspace --all-targets --locked --features "$FEATURES,tandem-actors/failpoints" -- -D warnings
# tract is the independent runtime the export tests check ONNX files with; the default build
# (the demo's) leaves it out.
cargo test --release --workspace --locked --features "$FEATURES" "$@"
# Fault injection: fail points are process-global, so they live in their own test binary, built
# only with the `failpoints` feature (tens of seconds). `--workspace` and the same features (plus
# fail points) keep the rest of the build: only tandem-actors and what depends on it are rebuilt
# (`-p tandem-actors` alone would resolve features for that package and rebuild burn).
# --nocapture shows its RECOVERY lines.
cargo test --release --locked --workspace --features "$FEATURES,tandem-actors/failpoints" --test faults -- --nocapture
