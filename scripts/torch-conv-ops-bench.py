#!/usr/bin/env python3
"""PyTorch's side of `target/release/examples/conv_ops_bench` (issue #20): for every conv of
VGG-16 at a width, batch N at 32x32 grey input, the median time of the forward convolution, the
input gradient and the weight gradient (`torch.ops.aten.convolution_backward`, each asked for
alone), on tensors of the same shapes.

    python3 scripts/torch-conv-ops-bench.py 0.25 [N] [RUNS] [THREADS]
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

BASE = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
         "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
SIZES = [32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2]


def median_ms(runs, f):
    f()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        f()
        t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t)


def main():
    mult = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    torch.manual_seed(1)
    c_in, total = 1, [0.0, 0.0, 0.0]
    print("| conv | C_in→C_out | H×W | forward ms | input grad ms | weight grad ms |")
    print("|---|---|---|---|---|---|")
    with torch.no_grad():
        for name, base, hw in zip(NAMES, BASE, SIZES):
            c_out = max(1, round(base * mult))
            x = torch.randn(n, c_in, hw, hw)
            w = torch.randn(c_out, c_in, 3, 3) * 0.1
            g = torch.randn(n, c_out, hw, hw)

            def bwd(mask):
                return lambda: torch.ops.aten.convolution_backward(
                    g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

            fwd = median_ms(runs, lambda: F.conv2d(x, w, padding=1))
            xg = median_ms(runs, bwd([True, False, False]))
            wg = median_ms(runs, bwd([False, True, False]))
            for i, v in enumerate((fwd, xg, wg)):
                total[i] += v
            print(f"| {name} | {c_in}→{c_out} | {hw}×{hw} | {fwd:.2f} | {xg:.2f} | {wg:.2f} |")
            c_in = c_out
    print(f"| **all 13** | | | **{total[0]:.1f}** | **{total[1]:.1f}** | **{total[2]:.1f}** |")
    print(f"batch {n}, width x{mult}, {runs} runs, medians; torch {torch.__version__} on "
          f"{torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}")


if __name__ == "__main__":
    main()
