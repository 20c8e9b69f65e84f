#!/usr/bin/env bash
# Step 1 at the fast preset's budget, repeated over seeds and ranking settings (issue #20, item 2;
# results in docs/RESULTS.md §2b). Every run starts from the same base model and uses
# configs/prune.toml with three lines changed: the ranking's batch-norm mode, the ranking subset's
# seed and the fine-tuning seed; the final fine-tune is off (final_epochs = 0), as in the PyTorch
# reference the issue compares with, so each run's result is the last iteration within budget.
#
#   bash scripts/step1-study.sh BASE_MODEL_DIR OUT_DIR [SEEDS] [MODES]
#   bash scripts/step1-study.sh artifacts/demo/base artifacts/step1-study "1 2 3" "eval train"
#
# Runs are interleaved by seed (eval-1, train-1, eval-2, ...) so an interrupted study still holds
# pairs; a finished run is skipped when the script is run again (so `... OUT_DIR "1 2" "eval train"`
# after an interrupted study only summarises the runs that finished). The summary (OUT_DIR/summary.tsv
# and stdout) reads each run's series.toml, the typed manifest `tandem prune` writes.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: step1-study.sh BASE_MODEL_DIR OUT_DIR [SEEDS] [MODES]}"
out="${2:?usage: step1-study.sh BASE_MODEL_DIR OUT_DIR [SEEDS] [MODES]}"
seeds="${3:-1 2 3}"
modes="${4:-eval train}"
tandem="${TANDEM:-target/release/tandem}"
mkdir -p "$out"
for seed in $seeds; do
  for mode in $modes; do
    run="$out/$mode-seed$seed"
    [ -f "$run/done" ] && continue
    cfg="$out/$mode-seed$seed.toml"
    python3 - configs/prune.toml "$cfg" "$mode" "$seed" <<'PY'
import re, sys
src, dst, mode, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(src).read()
def sub(pattern, repl, count_expected=1):
    global text
    text, n = re.subn(pattern, repl, text, flags=re.M)
    if n != count_expected:
        sys.exit(f"{src}: expected {count_expected} match(es) of {pattern!r}, found {n}")
sub(r'^batch_norm = "eval"$', f'batch_norm = "{mode}"')
sub(r'^seed = 7919$', f'seed = {7919 + 1000 * seed}')
# The step-1 fine-tune's seed is the first `seed = 11` after [step1.finetune].
head, sep, tail = text.partition("[step1.finetune]")
if not sep:
    sys.exit(f"{src}: no [step1.finetune] table")
tail, n = re.subn(r'^seed = 11$', f'seed = {10 + seed}', tail, count=1, flags=re.M)
if n != 1:
    sys.exit(f"{src}: no `seed = 11` in [step1.finetune]")
text = head + sep + tail
sub(r'^final_epochs = 0\.5$', 'final_epochs = 0.0')
sub(r'^preset = "fast"$', f'preset = "fast-step1-{mode}-seed{seed}"')
open(dst, "w").write(text)
PY
    rm -rf "$run"
    echo "== $mode seed $seed: $(date -u +%FT%TZ)"
    set +e
    "$tandem" prune --model-dir "$base" --config "$cfg" --out "$run" --step1-only 2>&1 | tee "$run.log" |
      grep --line-buffered -E "step 1|original"
    status=${PIPESTATUS[0]}
    set -e
    # Only a run that ended well is marked done (and summarised).
    [ "$status" -eq 0 ] || { echo "$run: tandem prune failed (exit $status), see $run.log" >&2; exit 1; }
    touch "$run/done"
  done
done
python3 - "$out" $modes <<'PY'
import glob, os, statistics, sys, tomllib
out, modes = sys.argv[1], sys.argv[2:]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*-seed*", "series.toml"))):
    if not os.path.exists(os.path.join(os.path.dirname(path), "done")):
        continue  # a run still going or interrupted
    s = tomllib.load(open(path, "rb"))
    members = {m["id"]: m for m in s["members"]}
    orig = next(m for m in s["members"] if m["name"] == "original")
    kept = members.get(s.get("step1_kept"), orig)
    iters = [m for m in s["members"] if m["name"].startswith("step1-")]
    wall = sum(m["wall_s"] for m in iters)
    run = os.path.basename(os.path.dirname(path))
    mode, seed = run.split("-seed")
    rows.append((mode, int(seed), orig["macs"] / kept["macs"], kept["accuracy"], orig["accuracy"], kept["name"], len(iters), wall))
with open(os.path.join(out, "summary.tsv"), "w") as f:
    f.write("mode\tseed\tcompute_ratio\tkept_accuracy\tbase_accuracy\tkept\titerations\twall_s\n")
    for r in rows:
        f.write("%s\t%d\t%.3f\t%.4f\t%.4f\t%s\t%d\t%.0f\n" % r)
print("mode   seed  compute ratio  kept acc  base acc  kept      iterations  wall s")
for r in rows:
    print("%-6s %4d  %12.2fx  %7.2f %%  %7.2f %%  %-9s %10d  %6.0f" % (r[0], r[1], r[2], 100 * r[3], 100 * r[4], r[5], r[6], r[7]))
for mode in modes:
    sel = [r for r in rows if r[0] == mode]
    if not sel:
        continue
    ratio = [r[2] for r in sel]
    drop = [100 * (r[4] - r[3]) for r in sel]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print("%-6s n=%d  compute ratio %.2f ± %.2f (min %.2f, max %.2f); points below base %.2f ± %.2f"
          % (mode, len(sel), statistics.mean(ratio), sd(ratio), min(ratio), max(ratio), statistics.mean(drop), sd(drop)))
PY
