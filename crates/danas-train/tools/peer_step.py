"""PyTorch CPU peer of the danas-train step bench.

One training step (forward, backward, Adam) of torchvision
mobilenet_v2(width_mult=0.35, num_classes=2) on a random 32x3x96x96 batch.
Prints the median step time and images/s as one JSON line.

Usage: python peer_step.py [--threads N] [--steps 20] [--warmup 3]
Needs: torch, torchvision (CPU wheels suffice).
"""

import argparse
import json
import statistics
import time

import torch
import torchvision


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--res", type=int, default=96)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=2)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(a.batch, 3, a.res, a.res) * 2 - 1
    y = torch.arange(a.batch) % 2
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({
        "framework": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": a.batch,
        "median_ms": med * 1e3,
        "images_per_s": a.batch / med,
    }))


if __name__ == "__main__":
    main()
