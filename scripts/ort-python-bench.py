#!/usr/bin/env python3
"""Batch-1 latency of ONNX files in ONNX Runtime from Python: the tool a user would pick instead of
tandem's engine, on the same weights (`tandem bench engines --onnx-out DIR` writes them).

    python3 scripts/ort-python-bench.py DIR [--runs 30]

Needs `pip install onnxruntime numpy` (not part of the tests). Prints a Markdown table of medians (ms)
at 1 and 2 intra-op threads, interleaving the two settings so machine noise hits both alike.
"""
import argparse
import glob
import os
import statistics
import time

import numpy as np
import onnxruntime as ort


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    print(f"onnxruntime {ort.__version__} (Python), batch 1, median of {a.runs} runs (ms)")
    print("| file | ort-python 1t | ort-python 2t |")
    print("|---|---|---|")
    for path in sorted(glob.glob(os.path.join(a.dir, "*.onnx"))):
        s = {t: session(path, t) for t in (1, 2)}
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
