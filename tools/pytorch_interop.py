#!/usr/bin/env python3
"""The study's two autoencoders in PyTorch's natural form, to prove the lab's safetensors files.

    python3 tools/pytorch_interop.py                      # writes tests/fixtures/pytorch/
    python3 tools/pytorch_interop.py --check model.safetensors [--outputs outs.safetensors]

The first form trains each model briefly (300 steps of batch 32, Adam 1e-3, MSE, seed 0, two
threads) on data/mnist and writes, for each of dense and conv,

    tests/fixtures/pytorch/KIND.safetensors          the state_dict, as PyTorch names and lays it out
    tests/fixtures/pytorch/KIND.outputs.safetensors  PyTorch's own `codes` [64, latent] and
                                                     `reconstructions` [64, 28, 28] of the first 64
                                                     test digits

which the lab's tests (tests/rust/pytorch.rs, tests/rust/cli.rs, tests/module/pytorch.test.mjs and
tests/page/pytorch.test.mjs) load and reproduce within 1e-5.

`--check` goes the other way: it loads a model the lab exported into the study's modules with
`load_state_dict(..., strict=True)`, runs the same 64 digits, and compares with the lab's own
codes and reconstructions of them (by default KIND.outputs.safetensors beside the model; the lab's
test `export_for_pytorch` writes both). It exits non-zero if either differs by more than 1e-5.

Needs torch, numpy and safetensors from PyPI (pip install torch numpy safetensors). On Linux,
PyPI's torch is the CUDA build: a 540 MB wheel whose nvidia dependencies make a 5.4 GB virtual
environment (torch 2.15), and `--no-deps` does not save them, since `import torch` then fails for
want of libcudart. The script runs on the CPU and never asks for a GPU.
"""
import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "mnist"
FIXTURES = ROOT / "tests" / "fixtures" / "pytorch"
# What the lab's tests compare: the first 64 test digits, to 1e-5 (the bound): absolute
# for the reconstructions, and for the codes relative to their largest number, since PyTorch's own
# f32 conv codes (up to ~114) differ from the same model's in f64 by 3e-5 (tests/rust/pytorch.rs).
DIGITS = 64
TOLERANCE = 1e-5


def images(name):
    """[N, 1, 28, 28] in [0, 1], divided in f32 as the lab does (data.rs), so both sides see the
    same inputs to the last bit."""
    raw = gzip.open(DATA / name).read()
    pixels = torch.from_numpy(np.frombuffer(raw, np.uint8, offset=16).copy()).to(torch.float32)
    return (pixels / 255.0).reshape(-1, 1, 28, 28)


class Dense(nn.Module):
    """784-128-64-12-latent and back, ReLU between, a sigmoid out; `code_relu` is the seed's
    letter (a ReLU on the code too), off by default as in the lab."""

    def __init__(self, latent=3, code_relu=False):
        super().__init__()
        widths = [784, 128, 64, 12, latent]
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < 3 or code_relu else [])
        self.encoder = nn.Sequential(*layers)
        back = widths[::-1]
        layers = []
        for i, (a, b) in enumerate(zip(back, back[1:])):
            layers += [nn.Linear(a, b), nn.ReLU() if i < 3 else nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x):
        return self.encoder(x.reshape(len(x), 784))

    def forward(self, x):
        return self.decoder(self.encode(x)).reshape(len(x), 1, 28, 28)


class Conv(nn.Module):
    """Two stride-2 3x3 convolutions and a 7x7 one to a latent-channel 1x1 code, mirrored."""

    def __init__(self, latent=64):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, latent, 7), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent, 32, 7), nn.ReLU(), nn.ConvTranspose2d(32, 16, 3, 2, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, 2, 1, 1), nn.Sigmoid(),
        )

    def encode(self, x):
        return self.encoder(x).reshape(len(x), -1)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def outputs(net, digits):
    with torch.no_grad():
        return {
            "codes": net.encode(digits).contiguous(),
            "reconstructions": net(digits).reshape(len(digits), 28, 28).contiguous(),
        }


def train_fixtures(steps):
    torch.set_num_threads(2)
    train = images("train-images-idx3-ubyte.gz")
    digits = images("t10k-images-idx3-ubyte.gz")[:DIGITS]
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for kind in ["dense", "conv"]:
        torch.manual_seed(0)
        net = Dense() if kind == "dense" else Conv()
        optimizer = torch.optim.Adam(net.parameters(), 1e-3)
        order = torch.randperm(len(train))
        for step in range(steps):
            x = train[order[step * 32:(step + 1) * 32]]
            loss = nn.functional.mse_loss(net(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        state = {name: t.contiguous() for name, t in net.state_dict().items()}
        save_file(state, FIXTURES / f"{kind}.safetensors")
        note = {"digits": f"the first {DIGITS} of t10k-images", "steps": str(steps), "seed": "0",
                "torch": torch.__version__}
        save_file(outputs(net, digits), FIXTURES / f"{kind}.outputs.safetensors", metadata=note)
        print(f"{kind}: loss {loss.item():.4f} after {steps} steps; "
              f"{sum(t.numel() for t in state.values())} parameters in {kind}.safetensors")


def model_for(state, code_relu):
    """The study's module that this state_dict is for, told by its names and shapes."""
    weight = state.get("encoder.0.weight")
    if weight is None:
        sys.exit("no encoder.0.weight: not a state_dict of the study's encoder/decoder modules")
    if weight.dim() == 2:
        return Dense(latent=state["encoder.6.weight"].shape[0], code_relu=code_relu)
    return Conv(latent=state["encoder.4.weight"].shape[0])


def check(model_path, outputs_path, code_activation):
    torch.set_num_threads(2)
    state = load_file(model_path)
    # safetensors.torch.load_file drops the header's metadata, where the lab writes the code
    # activation that the tensors cannot show.
    with open(model_path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        metadata = json.loads(f.read(n)).get("__metadata__", {})
    code = code_activation or metadata.get("code_activation", "linear")
    net = model_for(state, code_relu=code == "relu")
    net.load_state_dict(state, strict=True)
    print(f"{model_path}: load_state_dict(strict=True) took all {len(state)} tensors into "
          f"{type(net).__name__} ({code} code)")
    ours = load_file(outputs_path)
    theirs = outputs(net, images("t10k-images-idx3-ubyte.gz")[:DIGITS])
    worst = 0.0
    for name in ["codes", "reconstructions"]:
        diff = (theirs[name] - ours[name]).abs().max().item()
        scale = max(1.0, theirs[name].abs().max().item())
        worst = max(worst, diff / scale)
        print(f"  {name} {list(ours[name].shape)}: max |PyTorch - lab| = {diff:.3g}"
              + (f" ({diff / scale:.3g} of the largest, {scale:.3g})" if scale > 1 else ""))
    if worst > TOLERANCE:
        sys.exit(f"differs by {worst:.3g}, more than {TOLERANCE}")
    print(f"  within {TOLERANCE}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per fixture (default 300)")
    parser.add_argument("--check", type=Path, metavar="MODEL", help="a .safetensors model the lab exported")
    parser.add_argument("--outputs", type=Path, help="the lab's outputs for --check (default: MODEL's stem + .outputs.safetensors)")
    parser.add_argument("--code-activation", choices=["linear", "relu"],
                        help="the dense code's activation for --check (default: the file's metadata, else linear)")
    args = parser.parse_args()
    if args.check:
        outputs_path = args.outputs or args.check.with_name(args.check.name.replace(".safetensors", ".outputs.safetensors"))
        check(args.check, outputs_path, args.code_activation)
    else:
        train_fixtures(args.steps)


if __name__ == "__main__":
    main()
