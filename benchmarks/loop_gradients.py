"""Network passes inside a compiled loop (``lax.scan``) against the same passes unrolled; prints a table.

On XLA:CPU the backward pass of a convolution network runs 10-25x slower inside a loop body than outside
one (the forward pass about 2x); partial unrolling does not help, full unrolling does. This is why the
trainer unrolls its few ``n_critic`` discriminator updates (``gm_jax/train/step.py``); long samplers keep
their loops (thousands of steps cannot be unrolled). On a GPU the two columns should agree.

    python benchmarks/loop_gradients.py [--steps 20] [--batch 64]
"""

import argparse
import time

import jax

from gm_jax.nets.dcgan import DCGANDiscriminator
from gm_jax.nets.resnet_gan import ResNetDiscriminator


def _seconds_per_step(fn, x, steps: int) -> float:
    jax.block_until_ready(fn(x))  # compiles
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x))
    return (time.perf_counter() - t0) / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    x = jax.random.normal(jax.random.key(0), (args.batch, 8, 8, 1))
    print(f"device: {jax.devices()[0].device_kind}; {args.steps} steps, batch {args.batch}, 8x8x1 images; ms per step")
    print(f"{'network':>22} {'pass':>18} {'scan':>8} {'unrolled':>9} {'ratio':>6}")
    for name, net in (("SNGAN ResNet, width 32", ResNetDiscriminator(width=32, spectral_norm=False)),
                      ("DCGAN, width 64", DCGANDiscriminator(width=64))):
        variables = net.init(jax.random.key(1), x)
        params = variables["params"]
        logits = lambda p, x: net.apply({**variables, "params": p}, x)
        passes = {
            "forward": lambda x: x + 1e-3 * logits(params, x)[:, None, None, None],
            "input gradient": lambda x: x - 1e-3 * jax.grad(lambda x: logits(params, x).sum())(x),
        }
        # a training loop's carry is the parameters: one SGD step on them per iteration
        sgd = lambda p: jax.tree_util.tree_map(lambda w, g: w - 1e-3 * g, p,
                                               jax.grad(lambda p: logits(p, x).sum())(p))
        cases = {label: (update, x) for label, update in passes.items()}
        cases["parameter gradient"] = (sgd, params)
        for label, (update, carry) in cases.items():
            times = []
            for unroll in (1, True):
                loop = jax.jit(lambda c, update=update, unroll=unroll: jax.lax.scan(
                    lambda c, _: (update(c), None), c, None, length=args.steps, unroll=unroll)[0])
                times.append(1e3 * _seconds_per_step(loop, carry, args.steps))
            print(f"{name:>22} {label:>18} {times[0]:>8.2f} {times[1]:>9.2f} {times[0] / times[1]:>6.1f}")


if __name__ == "__main__":
    main()
