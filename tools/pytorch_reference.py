#!/usr/bin/env python3
"""The seed's models in PyTorch, one epoch on all 60,000 MNIST digits, for comparison.

    python3 tools/pytorch_reference.py --model conv --seed 0

Needs torch and numpy (pip install torch numpy). Same setup as the lab: batch 32 with the last
partial batch kept, MSE, Adam 1e-3, PyTorch's default initialisation, one shuffle per epoch, two
threads. Prints the test MSE over the 10,000 test digits before and after the epoch.
"""
import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path(__file__).resolve().parent.parent / "data" / "mnist"


def images(name):
    raw = gzip.open(DATA / name).read()
    return torch.tensor(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)


def model(kind):
    if kind == "conv":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 7), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 7), nn.ReLU(), nn.ConvTranspose2d(32, 16, 3, 2, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, 2, 1, 1), nn.Sigmoid(),
        )
    widths = [784, 128, 64, 12, 3]
    layers = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < 3 else [])
    back = widths[::-1]
    for i, (a, b) in enumerate(zip(back, back[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < 3 else [nn.Sigmoid()])
    return nn.Sequential(*layers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["dense", "conv"], default="conv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataloader", action="store_true",
                        help="shuffle with DataLoader(shuffle=True), as most PyTorch scripts do, instead of one randperm")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, test = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
    torch.manual_seed(args.seed)
    net = model(args.model)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)

    def test_mse():
        with torch.no_grad():
            return sum(((net(test[i:i + 1000]).reshape(-1, 1, 28, 28) - test[i:i + 1000]) ** 2).sum().item()
                       for i in range(0, len(test), 1000)) / (len(test) * 784)

    before = test_mse()
    if args.dataloader:
        batches = (x for (x,) in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train), 32, shuffle=True))
    else:
        order = torch.randperm(len(train))
        batches = (train[order[b:b + 32]] for b in range(0, len(train), 32))
    start = time.time()
    for x in batches:
        loss = nn.functional.mse_loss(net(x).reshape(-1, 1, 28, 28), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"{args.model} seed {args.seed}: test MSE {before:.4f} before, {test_mse():.4f} after one epoch "
          f"({len(train) / (time.time() - start):.0f} images/s)")


if __name__ == "__main__":
    main()
