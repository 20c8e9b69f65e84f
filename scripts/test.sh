#!/usr/bin/env bash
# The test command: install what the tests need, then run every test of the workspace in
# release mode (burn is built once, in release; debug-mode burn is too slow to test with).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --release --workspace --locked "$@"
