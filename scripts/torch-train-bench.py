#!/usr/bin/env python3
"""PyTorch's CPU training throughput on tandem's VGG-16-BN, the side-by-side reference for
`tandem bench train` (issue #20).

The same network as `tandem_models::zoo::Net` for `--model vgg16` (CIFAR layout: 13 conv3x3
without bias, each followed by batch norm and ReLU, 2x2 max-pools after conv1_2, conv2_2,
conv3_3, conv4_3, conv5_3, one linear classifier), the same widths (`scaled_widths`: each base
width times the multiplier, rounded, at least 1), the same step as `tandem_models::train`: SGD
with momentum 0.9 and weight decay 5e-4, cross-entropy, random crop (4 pixels of zero padding)
and horizontal flip drawn per image on the host, synthetic normal images of the spec's input
(I/O excluded as in `tandem bench train`). Three warm-up steps, then `--runs` timed steps.

    python3 scripts/torch-train-bench.py --width-mult 0.25,1.0 --threads 2 --runs 20

Prints one line per width: images per second, and the step's median time.
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BASE = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
POOL_AFTER = {1, 3, 6, 9, 12}


def widths(mult):
    return [max(1, round(w * mult)) for w in BASE]


class Vgg(nn.Module):
    def __init__(self, ws, in_c, size, classes):
        super().__init__()
        layers = []
        c = in_c
        s = size
        for i, w in enumerate(ws):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
            if i in POOL_AFTER:
                layers.append(nn.MaxPool2d(2, 2))
                s //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * s * s, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def crop_flip(x, gen):
    """Per-image random crop of the zero-padded image (4 px) and horizontal flip, on the host."""
    n, _, h, w = x.shape
    p = F.pad(x, (4, 4, 4, 4))
    out = torch.empty_like(x)
    dx = torch.randint(0, 9, (n,), generator=gen)
    dy = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    for i in range(n):
        crop = p[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def bench(mult, args):
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    net = Vgg(widths(mult), args.channels, args.input_size, 10)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    n = args.batch_size
    data = torch.randn(n * 4, args.channels, args.input_size, args.input_size, generator=gen)
    labels = torch.randint(0, 10, (n * 4,), generator=gen)
    times = []
    for step in range(args.runs + 3):
        t = time.perf_counter()
        k = step % 4
        x = crop_flip(data[k * n : (k + 1) * n], gen)
        y = labels[k * n : (k + 1) * n]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if step >= 3:
            times.append(time.perf_counter() - t)
    total = sum(times)
    print(
        f"torch  vgg16 x{mult} at {args.channels}x{args.input_size}x{args.input_size}: "
        f"{n * len(times) / total:.1f} img/s at batch {n} ({len(times)} steps, median step "
        f"{statistics.median(times) * 1e3:.1f} ms, {torch.get_num_threads()} threads, torch {torch.__version__})"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width-mult", default="0.25,1.0")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for m in args.width_mult.split(","):
        bench(float(m), args)


if __name__ == "__main__":
    main()
