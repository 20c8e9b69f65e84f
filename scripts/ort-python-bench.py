#!/usr/bin/env python3
"""Batch-1 latency of ONNX files in ONNX Runtime from Python: the tool a user would pick instead of
tandem's engine, on the same weights (`tandem bench engines --onnx-out DIR` writes them).

    python3 scripts/ort-python-bench.py DIR [--runs 30] [--no-spin]

Needs `pip install onnxruntime numpy` (not part of the tests). Prints a Markdown table of medians (ms)
at 1 and 2 intra-op threads, interleaving the two settings so machine noise hits both alike.
`--no-spin` turns off ONNX Runtime's spinning of idle pool threads, as tandem-engine did in every
session from docs/RESULTS.md §9b to §9e (it now spins only in its one shared pool).
"""
import argparse
import glob
import os
import statistics
import time

import numpy as np
import onnxruntime as ort


def session(path, threads, spin):
    opts = ort.SessionOptions()
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-spin", action="store_true", help="idle pool threads block instead of spinning")
    a = ap.parse_args()
    spin = "not spinning" if a.no_spin else "spinning (the default)"
    print(f"onnxruntime {ort.__version__} (Python), idle threads {spin}, batch 1, median of {a.runs} runs (ms)")
    print("| file | ort-python 1t | ort-python 2t |")
    print("|---|---|---|")
    for path in sorted(glob.glob(os.path.join(a.dir, "*.onnx"))):
        s = {t: session(path, t, not a.no_spin) for t in (1, 2)}
        inp = s[1].get_inputs()[0]
        shape = [1 if not isinstance(d, int) else d for d in inp.shape]
        n = int(np.prod(shape))
        # The same deterministic input pattern as `tandem bench engines`.
        x = (((np.arange(n) * 7919) % 255) / 255.0 - 0.5).astype(np.float32).reshape(shape)
        times = {1: [], 2: []}
        for t in (1, 2):
            for _ in range(3):
                s[t].run(None, {inp.name: x})
        for _ in range(a.runs):
            for t in (1, 2):
                t0 = time.perf_counter()
                s[t].run(None, {inp.name: x})
                times[t].append((time.perf_counter() - t0) * 1e3)
        name = os.path.basename(path)
        print(f"| {name} | {statistics.median(times[1]):.3f} | {statistics.median(times[2]):.3f} |")


if __name__ == "__main__":
    main()
