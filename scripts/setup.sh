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
# ONNX Runtime, the online path's inference engine (tandem-engine): the shared library from the
# `onnxruntime` wheel on PyPI (pip only downloads it; nothing is installed into Python), unpacked to
# the fixed place the binary looks for it, ${XDG_DATA_HOME:-~/.local/share}/tandem/onnxruntime/.
# The version must match the `ort` crate's API level (api-31 = ONNX Runtime 1.31). Without it
# tandem still runs, on burn, with one warning.
ORT_VERSION=1.31.1
ort_dir="${XDG_DATA_HOME:-$HOME/.local/share}/tandem/onnxruntime"
if [ ! -f "$ort_dir/libonnxruntime.so.$ORT_VERSION" ]; then
  command -v python3 >/dev/null || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-pip; }
  tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ort_dir"
  python3 - "$tmp" "$ort_dir" "$ORT_VERSION" <<'PY'
import glob, os, sys, zipfile
tmp, dest, version = sys.argv[1:]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0])
name = f"libonnxruntime.so.{version}"
with open(os.path.join(dest, name + ".part"), "wb") as out:
    out.write(wheel.read(f"onnxruntime/capi/{name}"))
os.replace(os.path.join(dest, name + ".part"), os.path.join(dest, name))
PY
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ort_dir/libonnxruntime.so"
  rm -rf "$tmp"
fi
