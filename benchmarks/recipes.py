"""Each paper recipe's training throughput and sampling time; prints a table beside the papers' hardware figures.

    python benchmarks/recipes.py                     # smoke size (the recipes' smoke configs, digits 8x8), CPU
    python benchmarks/recipes.py --config paper      # full size (each recipe's first paper config): a GPU job
    python benchmarks/recipes.py --recipes ddpm_cifar10,glow_cifar10

A train step is the trainer's own (``gm_jax.train.make_train_step`` with the recipe's TrainConfig: its
optimizer, clipping, EMA and flips), jitted with the state donated, on random data of the recipe's shape.
Sampling is the model's default sampler (the recipe's) for ``--samples`` examples, one jitted call. Every
timing follows a warm-up call (which compiles) and ends in ``block_until_ready``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments.update_recipe_readmes import recipe_folders  # noqa: E402
from gm_jax.train import init_train_state, make_train_step  # noqa: E402
from gm_jax.train.loop import make_optimizers  # noqa: E402

# The papers' own figures, where they give one (shared/reference/published_results.md, section 5)
PAPER = {"ddpm_cifar10": ("21 steps/s at batch 128 (TPU v3-8)", "256 samples in 17 s (TPU v3-8)")}


def _timed(fn, *args, repeats=1):
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def bench(recipe, *, batch: int | None, steps: int, samples: int) -> dict:
    model = recipe.build_model()
    _, train_cfg = recipe.configs()
    batch = batch or train_cfg.batch_size
    spec = recipe.spec
    rng = np.random.default_rng(0)
    data = {spec.data_key: jnp.asarray(rng.integers(0, spec.num_levels, (batch, *spec.shape)), jnp.int32)}
    if spec.num_classes:
        data["label"] = jnp.asarray(rng.integers(0, spec.num_classes, (batch,)), jnp.int32)
    optimizers = make_optimizers(model, train_cfg)
    state = init_train_state(model.init(jax.random.key(0), data), optimizers, jax.random.key(1),
                             ema=train_cfg.ema_decay > 0)
    step = jax.jit(make_train_step(model, optimizers, train_cfg.ema_decay, hflip=train_cfg.hflip),
                   donate_argnums=0)

    def run(state, data):
        for _ in range(steps):
            state, _ = step(state, data)
        return state

    state = run(state, data)  # compiles
    jax.block_until_ready(state)
    start = time.perf_counter()
    state = run(state, data)
    jax.block_until_ready(state)
    train_s = (time.perf_counter() - start) / steps
    variables = {"params": state.params, "state": state.model_state}
    sample = jax.jit(lambda v, k: model.sample(v, k, samples))
    sample_s = _timed(sample, variables, jax.random.key(2))
    return {"batch": batch, "steps_per_s": 1.0 / train_s, "examples_per_s": batch / train_s, "sample_s": sample_s}


def main(argv=None) -> int:
    import importlib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("smoke", "paper"), default="smoke",
                        help="smoke: each recipe's smoke config; paper: its first paper config (default: smoke)")
    parser.add_argument("--recipes", help="comma-separated recipe folders (default: all)")
    parser.add_argument("--batch", type=int, help="train batch (default: the recipe's)")
    parser.add_argument("--steps", type=int, default=5, help="timed train steps (default: 5)")
    parser.add_argument("--samples", type=int, default=16, help="examples sampled (default: 16)")
    args = parser.parse_args(argv)
    names = args.recipes.split(",") if args.recipes else recipe_folders()
    print(f"{jax.devices()[0].platform} x{jax.device_count()}, {args.config} configs")
    print(f"| recipe | config | params | batch | steps/s | examples/s | {args.samples} samples (s) | paper's figures |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        configs = importlib.import_module(f"experiments.{name}.config").CONFIGS
        config = "smoke" if args.config == "smoke" else next(c for c in configs if c != "smoke")
        recipe = configs[config]
        r = bench(recipe, batch=args.batch, steps=args.steps, samples=args.samples)
        paper = " / ".join(PAPER.get(name, ("-",)))
        print(f"| {name} | {config} | {recipe.num_params():,} | {r['batch']} | {r['steps_per_s']:.3g} | "
              f"{r['examples_per_s']:.3g} | {r['sample_s']:.3g} | {paper} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
