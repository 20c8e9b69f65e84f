#!/usr/bin/env bash
# Install what tandem needs on a fresh Debian machine: the Fashion-MNIST package (the default
# data), fonts for the report charts, the C toolchain some crates build with, and ffmpeg (the
# device's video and webcam sources decode through it; the demo and tests encode with it).
# Idempotent; skips apt when everything is already there.
set -euo pipefail
need=()
for pkg in dataset-fashion-mnist fonts-dejavu-core pkg-config ffmpeg; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (rustup) first" >&2; exit 1; }
# The test command checks formatting and lints; rustup's default profile ships both components.
for tool in fmt clippy; do
  cargo "$tool" --version >/dev/null 2>&1 || rustup component add "$([ "$tool" = fmt ] && echo rustfmt || echo clippy)"
done
