#!/usr/bin/env bash
# The edge saturated by several devices, once per tail engine (issue #16's "edge saturated
# throughput with 4 devices before/after"; results in docs/RESULTS.md §9).
#
#   bash scripts/edge-saturation.sh SERIES OUT_DIR [DEVICES] [ROUNDS] [PLAN]
#   bash scripts/edge-saturation.sh artifacts/demo/series artifacts/saturation 4 2 0:input:q8-lz4
#
# For each round and each engine (burn, onnxruntime, alternated): one `tandem edge` (configs/edge.toml
# with `engine` set, 2 workers) and DEVICES `tandem device` processes (configs/device.toml with their
# own device_id, no metrics port, 2,000 fps offered for 10 s, PLAN fixed: by default the whole model
# on the edge, so the edge does all the compute). The figures come from each device's --summary-out
# JSON and the edge's --ready-file JSON: nothing printed is parsed.
set -euo pipefail
cd "$(dirname "$0")/.."
series="${1:?usage: edge-saturation.sh SERIES OUT_DIR [DEVICES] [ROUNDS] [PLAN]}"
out="${2:?usage: edge-saturation.sh SERIES OUT_DIR [DEVICES] [ROUNDS] [PLAN]}"
devices="${3:-4}"
rounds="${4:-2}"
plan="${5:-0:input:q8-lz4}"
tandem="${TANDEM:-target/release/tandem}"
mkdir -p "$out"
edit() { # edit SRC DST KEY=VALUE... : replace top-level `key = ...` lines (each must exist once)
  python3 - "$@" <<'PY'
import re, sys
src, dst, *pairs = sys.argv[1:]
text = open(src).read()
for pair in pairs:
    key, value = pair.split("=", 1)
    text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    if n != 1:
        sys.exit(f"{src}: no `{key} = ` line")
open(dst, "w").write(text)
PY
}
for round in $(seq 1 "$rounds"); do
  for engine in burn onnxruntime; do
    run="$out/r$round-$engine"
    rm -rf "$run" && mkdir -p "$run"
    edit configs/edge.toml "$run/edge.toml" "engine=\"$engine\"" 'listen="127.0.0.1:0"' 'metrics="127.0.0.1:0"'
    "$tandem" edge --config "$run/edge.toml" --series "$series" --ready-file "$run/ready.json" >"$run/edge.log" 2>&1 &
    edge_pid=$!
    for _ in $(seq 1 600); do [ -f "$run/ready.json" ] && break; kill -0 "$edge_pid" 2>/dev/null || break; sleep 0.1; done
    [ -f "$run/ready.json" ] || { echo "edge did not start: $run/edge.log" >&2; cat "$run/edge.log" >&2; exit 1; }
    addr="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"])' "$run/ready.json")"
    pids=()
    for d in $(seq 1 "$devices"); do
      edit configs/device.toml "$run/device$d.toml" "device_id=\"camera-$d\"" "edge=\"$addr\""
      sed -i '/^metrics = /d' "$run/device$d.toml"
      "$tandem" device --config "$run/device$d.toml" --series "$series" --plan "$plan" --fps 2000 \
        --duration 10s --summary-out "$run/device$d.json" >"$run/device$d.log" 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { echo "a device failed: $run" >&2; exit 1; }; done
    kill "$edge_pid"; wait "$edge_pid" 2>/dev/null || true
    echo "round $round $engine done: $(date -u +%TZ)"
  done
done
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
rows = {}
for run in sorted(glob.glob(os.path.join(out, "r*-*"))):
    name = os.path.basename(run)
    engine = name.split("-", 1)[1]
    reps = [json.load(open(p))["summary"] for p in sorted(glob.glob(os.path.join(run, "device*.json")))]
    rate = sum((s["edge"] + s["local"] + s.get("rerun_local", 0)) / s["stats"]["wall_s"] for s in reps)
    edge = sum(s["edge"] for s in reps)
    p50 = statistics.median(s["stats"]["e2e_ms"]["p50"] for s in reps)
    tail = statistics.mean(s["stats"]["stage_mean_ms"].get("edge_infer", float("nan")) for s in reps)
    balanced = all(s["captured"] == s["edge"] + s["local"] + s.get("rerun_local", 0) + sum(s["dropped"].values()) for s in reps)
    rows.setdefault(engine, []).append(rate)
    print(f"{name:18s} results/s {rate:7.1f}  edge results {edge:6d}  e2e p50 (median of devices) {p50:6.2f} ms  edge infer mean {tail:5.2f} ms  balanced {balanced}")
for engine, rates in rows.items():
    print(f"{engine:12s} median results/s over {len(rates)} rounds: {statistics.median(rates):.1f}")
if "burn" in rows and "onnxruntime" in rows:
    print(f"onnxruntime / burn: {statistics.median(rows['onnxruntime']) / statistics.median(rows['burn']):.2f}x")
PY
