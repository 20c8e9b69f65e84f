#!/usr/bin/env bash
# The demo on the embedded default: install what is needed, build, and run the whole story on
# Fashion-MNIST with every stage cached under artifacts/demo (a second run reuses them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
exec ./target/release/tandem demo --dir artifacts/demo "$@"
