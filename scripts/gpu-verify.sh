#!/usr/bin/env bash
# GPU verification of the `cuda` / `wgpu` builds (issue #10): bench, full-width VGG-16 training and
# the 2-step series with the fast preset, each timed, on a machine with a GPU but no Rust and no
# network. Two subcommands:
#
#   pack   (here, where the binary was built) gathers what the GPU machine needs into one folder,
#          target/gpu by default: the stripped binary, xz-compressed (a wgpu build is ~100 MB
#          stripped, 17 MB compressed, and a call carries at most 64 MiB), the Fashion-MNIST files
#          and, for wgpu, the Vulkan loader package (Debian's libvulkan1).
#            cargo build --release --features wgpu     # or --features cuda
#            bash scripts/gpu-verify.sh pack [--bin target/release/tandem] [--data DIR] [--dest target/gpu]
#
#   run    (on the GPU machine, in the repository root) runs the checks and writes its logs to
#          $OUT (or --out): env.log, bench.log, train.log, prune.log, gpu-util.csv, summary.txt,
#          base-model.toml, series.toml. Models are kept in --work (target/gpu-work), so a second
#          call on the same machine can go on with `--stage prune` (which resumes a cut series).
#            bash scripts/gpu-verify.sh run --device wgpu [--stage all|bench|train|prune]
#                 [--epochs 2] [--width-mult 1.0] [--batch-size 64] [--budget 570] [--bin ...]
#                 [--data ...] [--loaders ...] [--work ...] [--prune-config FILE] [--dataset NAME]
#
# --budget is the whole run's wall-clock limit in seconds: each step gets what is left of it and is
# stopped (its partial log kept) when it runs out. burn tunes each new kernel shape once per process
# (the "Tuning ..." log lines; the summary counts them): CUBECL_AUTOTUNE_LEVEL=minimal in the
# environment makes that cheaper, RUST_LOG=info,cubecl_runtime=warn hides the lines. A CPU dry run of the script, tiny and synthetic
# (prune-tiny.toml: configs/prune.toml with fewer iterations, families and images):
#   bash scripts/gpu-verify.sh run --bin target/release/tandem --device cpu --dataset synthetic \
#        --width-mult 0.0625 --epochs 0.2 --prune-config /tmp/prune-tiny.toml --out /tmp/gv
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "gpu-verify: $*" >&2; exit 2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

pack() {
    local bin="${CARGO_TARGET_DIR:-target}/release/tandem" data=/usr/share/datasets/fashion-mnist dest=target/gpu
    while (($#)); do
        case "$1" in
            --bin) bin="$2"; shift 2 ;;
            --data) data="$2"; shift 2 ;;
            --dest) dest="$2"; shift 2 ;;
            *) die "pack: unknown option $1" ;;
        esac
    done
    [[ -x "$bin" ]] || die "no binary at $bin: cargo build --release --features wgpu (or cuda) first"
    # The device check runs before anything else, so a missing model directory is never reached.
    local built=() msg
    for kind in cuda wgpu; do
        msg=$("$bin" eval --device "$kind" --model-dir /nonexistent 2>&1 || true)
        [[ "$msg" == *"built without"* ]] || built+=("$kind")
    done
    ((${#built[@]})) || die "$bin was built without a GPU backend: rebuild with --features wgpu or --features cuda"
    rm -rf "$dest" && mkdir -p "$dest/fashion-mnist"
    strip -o "$dest/tandem" "$bin"
    xz -T0 -6 "$dest/tandem"
    cp "$data"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "$dest/fashion-mnist/"
    if [[ " ${built[*]} " == *" wgpu "* ]]; then
        # wgpu loads libvulkan.so.1 at run time; the GPU machine may not have the loader.
        mkdir -p "$dest/loaders" /tmp/amd64/partial
        local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
        apt-get "${o[@]}" update -qq
        (cd "$dest/loaders" && apt-get "${o[@]}" download libvulkan1)
    fi
    echo "packed for ${built[*]} into $dest ($(du -sh "$dest" | cut -f1)); on the GPU machine carry '$dest' and run:"
    echo "  bash scripts/gpu-verify.sh run --device ${built[0]}"
}

run() {
    local bin=target/gpu/tandem data=target/gpu/fashion-mnist loaders=target/gpu/loaders work=target/gpu-work
    local out="${OUT:-target/gpu-verify-out}" device=wgpu stage=all epochs=2 width=1.0 batch=64 budget=570
    local prune_config="" dataset=fashion-mnist
    while (($#)); do
        case "$1" in
            --bin) bin="$2"; shift 2 ;;
            --data) data="$2"; shift 2 ;;
            --loaders) loaders="$2"; shift 2 ;;
            --work) work="$2"; shift 2 ;;
            --out) out="$2"; shift 2 ;;
            --device) device="$2"; shift 2 ;;
            --stage) stage="$2"; shift 2 ;;
            --epochs) epochs="$2"; shift 2 ;;
            --width-mult) width="$2"; shift 2 ;;
            --batch-size) batch="$2"; shift 2 ;;
            --budget) budget="$2"; shift 2 ;;
            --prune-config) prune_config="$2"; shift 2 ;;
            --dataset) dataset="$2"; shift 2 ;;
            *) die "run: unknown option $1" ;;
        esac
    done
    case "$stage" in all | bench | train | prune) ;; *) die "--stage must be all, bench, train or prune" ;; esac
    if [[ ! -x "$bin" && -f "$bin.xz" ]]; then
        xz -dk "$bin.xz" 2>/dev/null || python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$bin.xz" "$bin"
        chmod +x "$bin"
    fi
    [[ -x "$bin" ]] || die "no binary at $bin (pack it here with 'scripts/gpu-verify.sh pack' and carry target/gpu)"
    local data_args=(--dataset "$dataset")
    [[ "$dataset" == synthetic ]] || data_args+=(--data "$data")
    mkdir -p "$out" "$work"
    local t0 summary="$out/summary.txt"
    t0=$(now)
    : >"$summary"
    note() { echo "$*" | tee -a "$summary"; }
    # Seconds left of the budget (at least 1, so `timeout` always gets a valid limit).
    left() { awk -v t0="$t0" -v now="$(now)" -v b="$budget" 'BEGIN { l = int(b - (now - t0)); print (l < 1 ? 1 : l) }'; }
    # step NAME LOG CMD...: run CMD under the time left, log it, time it, note how it ended.
    step() {
        local name="$1" log="$2" s rc
        shift 2
        s=$(now)
        set +e
        timeout --signal=INT --kill-after=10 "$(left)" "$@" >>"$log" 2>&1
        rc=$?
        set -e
        note "$name: exit $rc after $(secs "$s" "$(now)") s$([[ $rc == 124 ]] && echo ' (stopped: --budget ran out)')"
        return "$rc"
    }

    {
        echo "== $(date -u +%FT%TZ) $(uname -srm); device $device, stage $stage"
        if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "(no nvidia-smi)"; fi
        if [[ "$device" == wgpu ]]; then
            if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
                echo "no Vulkan loader installed: unpacking $loaders/*.deb"
                for f in "$loaders"/*.deb; do [[ -e "$f" ]] && dpkg -x "$f" /; done
                ldconfig
            fi
            ldconfig -p | grep libvulkan || echo "(still no libvulkan.so.1: the wgpu device will be refused)"
            local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
            if ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1 && [[ -f "$icd" ]]; then
                export VK_DRIVER_FILES="$icd"
                echo "VK_DRIVER_FILES=$icd"
            fi
        fi
        echo "== ldd $bin (GPU libraries must not appear: they are loaded at run time)"
        ldd "$bin" || true
    } >"$out/env.log" 2>&1
    # GPU utilisation every 5 s: low numbers mean the CPU side (data, kernel launches) is the limit.
    SAMPLER=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 5 >"$out/gpu-util.csv" 2>&1 &
        SAMPLER=$!
    fi
    trap '[[ -z "$SAMPLER" ]] || kill "$SAMPLER" 2>/dev/null || true' EXIT

    note "gpu-verify: device $device, VGG-16 x$width, $epochs epochs, batch $batch, budget $budget s"
    if [[ "$stage" == all || "$stage" == bench ]]; then
        step "bench train" "$out/bench.log" "$bin" bench train --device "$device" --width-mult "0.25,$width" --batch-size "$batch" --runs 20 || true
        step "bench latency" "$out/bench.log" "$bin" bench latency --device "$device" --width-mult "$width" --runs 50 || true
        grep -E '^(train|latency) ' "$out/bench.log" | tee -a "$summary" || true
    fi
    local base="$work/base" series="$work/series"
    if [[ "$stage" == all || "$stage" == train ]]; then
        rm -rf "$base" "$series"
        step "train" "$out/train.log" "$bin" train --device "$device" --model vgg16 --width-mult "$width" --epochs "$epochs" \
            --batch-size "$batch" "${data_args[@]}" --out "$base" || true
        grep '^trained ' "$out/train.log" | tee -a "$summary" || true
        note "train: $(grep -c 'Tuning' "$out/train.log" || true) kernel shapes autotuned"
    fi
    if [[ "$stage" == all || "$stage" == prune ]]; then
        if [[ ! -f "$base/model.toml" ]]; then
            note "prune: no trained model in $base (run --stage train first, on the same machine)"
        else
            cp "$base/model.toml" "$out/base-model.toml"
            local prune_args=(--preset fast)
            [[ -n "$prune_config" ]] && prune_args=(--config "$prune_config")
            [[ -f "$series/series.toml" ]] && prune_args+=(--resume)
            step "prune" "$out/prune.log" "$bin" prune --device "$device" --model-dir "$base" --out "$series" \
                "${prune_args[@]}" "${data_args[@]}" || true
            grep -E '^(\[ *[0-9]+ s\] |series of |original )' "$out/prune.log" | tail -n 5 | tee -a "$summary" || true
            note "prune: $(grep -c 'Tuning' "$out/prune.log" || true) kernel shapes autotuned"
            [[ -f "$series/series.toml" ]] && cp "$series/series.toml" "$out/series.toml"
            [[ -f "$series/series.toml" ]] &&
                note "series: $(grep -c '^\[\[members\]\]' "$series/series.toml") members recorded in $series"
        fi
    fi
    note "total: $(secs "$t0" "$(now)") s (target for the full-width series on one GPU: 600 s)"
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    run) shift; run "$@" ;;
    *) die "usage: scripts/gpu-verify.sh pack|run [options] (see the comment at the top)" ;;
esac
