"""One convolution, alone: forward, with its input gradient and with its weight gradient, in XLA (under some
XLA:CPU flags) and in PyTorch when it is installed; prints a table of milliseconds.

    python benchmarks/convolution.py [--batch 32] [--size 32] [--channels 64]

A 3x3 SAME convolution of channels -> channels on [batch, size, size, channels], the U-Net's most common
layer. "+ dx" and "+ dw" time the gradient of sum(conv(x, w)^2) with respect to the input or the weights
(each includes the forward). Each configuration runs in its own process (XLA_FLAGS is read at start-up);
times are the best of 5 after a warm-up. This is the check behind the README's note that XLA:CPU loses to
PyTorch on the U-Net's training step in the weight gradients of its convolutions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

FLAGS = ["", "--xla_cpu_use_onednn=true", "--xla_cpu_use_xnnpack=true"]

JAX = """
import json, sys, time
import jax, jax.numpy as jnp
b, s, c = map(int, sys.argv[1:4])
x = jax.random.normal(jax.random.key(0), (b, s, s, c))
w = jax.random.normal(jax.random.key(1), (3, 3, c, c)) * 0.05
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
square = lambda x, w: jnp.sum(conv(x, w) ** 2)
fns = {"forward": jax.jit(conv), "+ dx": jax.jit(jax.grad(square, 0)), "+ dw": jax.jit(jax.grad(square, 1))}
out = {}
for name, f in fns.items():
    jax.block_until_ready(f(x, w))
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); jax.block_until_ready(f(x, w)); best = min(best, time.perf_counter() - t)
    out[name] = 1000 * best
print(json.dumps(out))
"""

TORCH = """
import json, sys, time
import torch
b, s, c = map(int, sys.argv[1:4])
x = torch.randn(b, c, s, s)
conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
def forward():
    with torch.no_grad():
        conv(x)
def dx():
    xi = x.clone().requires_grad_(True)
    torch.autograd.grad((conv(xi) ** 2).sum(), xi)
def dw():
    torch.autograd.grad((conv(x) ** 2).sum(), conv.weight)
out = {}
for name, f in {"forward": forward, "+ dx": dx, "+ dw": dw}.items():
    f()
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); f(); best = min(best, time.perf_counter() - t)
    out[name] = 1000 * best
print(json.dumps(out))
"""


def _run(code: str, args, env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", type=int, default=64)
    args = p.parse_args(argv)
    shape = (args.batch, args.size, args.channels)
    rows = [(f"XLA {flags or '(default flags)'}", _run(JAX, shape, {"XLA_FLAGS": flags})) for flags in FLAGS]
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        rows.append(("PyTorch", _run(TORCH, shape)))
    print(f"3x3 conv {args.channels}->{args.channels} on [{args.batch}, {args.size}, {args.size}, {args.channels}], "
          f"ms (best of 5)\n| implementation | forward | + dx | + dw |\n|---|---|---|---|")
    for name, r in rows:
        cells = [f"{r[k]:.0f}" if k in r else r.get("error", "-") for k in ("forward", "+ dx", "+ dw")]
        print(f"| {name} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
