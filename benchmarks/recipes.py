"""Each paper recipe's training throughput and sampling time; prints a table beside the papers' hardware figures.

    python benchmarks/recipes.py                     # smoke size (the recipes' smoke configs, digits 8x8), CPU
    python benchmarks/recipes.py --config paper      # full size (each recipe's first paper config): a GPU job
    python benchmarks/recipes.py --recipes ddpm_cifar10,glow_cifar10

With diffusers installed (the ``torch`` extra), fixed-variance DDPM recipes also get a row for the peer a user
would pick instead: diffusers' UNet2DModel with the same architecture, MSE eps loss, Adam and clipping, and its
DDPMScheduler's ancestral loop, timed in a subprocess.

A train step is the trainer's own (``gm_jax.train.make_train_step`` with the recipe's TrainConfig: its
optimizer, clipping, EMA and flips), jitted with the state donated, on random data of the recipe's shape.
Sampling is the model's default sampler (the recipe's; translation models translate random images) for
``--samples`` examples, one jitted call. Every timing follows a warm-up call (which compiles) and ends in
``block_until_ready``.
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

from diffusion import timed  # noqa: E402  (benchmarks/diffusion.py, this script's neighbour)
from experiments.update_recipe_readmes import recipe_folders  # noqa: E402
from gm_jax.models.base import accepts_kwarg  # noqa: E402
from gm_jax.train import init_train_state, make_train_step  # noqa: E402
from gm_jax.train.loop import make_optimizers  # noqa: E402

# The papers' own figures, where they give one (shared/reference/published_results.md, section 5)
PAPER = {"ddpm_cifar10": ("21 steps/s at batch 128 (TPU v3-8)", "256 samples in 17 s (TPU v3-8)")}


def bench(recipe, *, batch: int | None, steps: int, samples: int) -> dict:
    _, train_cfg = recipe.configs()
    return trainer_rates(recipe.build_model(), train_cfg, recipe.spec, batch=batch or train_cfg.batch_size,
                         steps=steps, samples=samples)


def trainer_rates(model, train_cfg, spec, *, batch: int, steps: int, samples: int, repeats: int = 1) -> dict:
    """The trainer's jitted step on random data of ``spec``'s layout (steps/s and examples/s, the best of
    ``repeats`` runs of ``steps`` steps, and the first call's seconds, i.e. compilation) and one jitted call of
    the model's sampler for ``samples`` examples (none: 0)."""
    rng = np.random.default_rng(0)
    if spec.kind == "points":
        data = {spec.data_key: jnp.asarray(rng.normal(size=(batch, *spec.shape)), jnp.float32)}
    else:
        data = {spec.data_key: jnp.asarray(rng.integers(0, spec.num_levels, (batch, *spec.shape)), jnp.int32)}
    if spec.num_classes:
        data["label"] = jnp.asarray(rng.integers(0, spec.num_classes, (batch,)), jnp.int32)
    if spec.second_domain:  # a two-domain (translation) dataset
        data["image_b"] = jnp.asarray(rng.integers(0, spec.num_levels, (batch, *spec.shape)), jnp.int32)
    optimizers = make_optimizers(model, train_cfg)
    state = init_train_state(model.init(jax.random.key(0), data), optimizers, jax.random.key(1),
                             ema=train_cfg.ema_decay > 0)
    step = jax.jit(make_train_step(model, optimizers, train_cfg.ema_decay, hflip=train_cfg.hflip),
                   donate_argnums=0)

    def run(state, data):
        for _ in range(steps):
            state, _ = step(state, data)
        return state

    start = time.perf_counter()
    state, _ = step(state, data)  # compiles
    jax.block_until_ready(state)
    first_s = time.perf_counter() - start
    state = run(state, data)  # warm
    jax.block_until_ready(state)
    train_s = float("inf")
    for _ in range(repeats):  # the best of a few: shared machines are noisy
        start = time.perf_counter()
        state = run(state, data)
        jax.block_until_ready(state)
        train_s = min(train_s, (time.perf_counter() - start) / steps)
    rates = {"batch": batch, "steps_per_s": 1.0 / train_s, "examples_per_s": batch / train_s, "first_step_s": first_s}
    if not samples:
        return rates
    variables = {"params": state.params, "state": state.model_state}
    # translation models (CycleGAN) translate given images; the rest sample from noise
    source = {"source": data[spec.data_key][:samples]} if accepts_kwarg(model.sample, "source") else {}
    sample = jax.jit(lambda v, k: model.sample(v, k, samples, **source))
    sample_s = timed(sample, variables, jax.random.key(2))
    return {**rates, "sample_s": sample_s}


PEER = r"""
import json, sys, time
import torch
from diffusers import DDPMScheduler, UNet2DModel

cfg, batch, steps, samples = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
unet = UNet2DModel(**cfg)
opt = torch.optim.Adam(unet.parameters(), lr=2e-4)
sched = DDPMScheduler(num_train_timesteps=cfg.pop("_T"))
shape = (batch, cfg["in_channels"], cfg["sample_size"], cfg["sample_size"])
x = torch.rand(shape) * 2 - 1

def step():
    t = torch.randint(0, sched.config.num_train_timesteps, (batch,))
    noise = torch.randn_like(x)
    loss = torch.nn.functional.mse_loss(unet(sched.add_noise(x, noise, t), t).sample, noise)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0); opt.step()

start = time.perf_counter()
step()
first_s = time.perf_counter() - start
start = time.perf_counter()
for _ in range(steps):
    step()
train_s = (time.perf_counter() - start) / steps
unet.eval()
out = {"steps_per_s": 1 / train_s, "examples_per_s": batch / train_s, "first_step_s": first_s}
with torch.no_grad():
    t = torch.full((batch,), 500)
    unet(x, t)
    start = time.perf_counter()
    for _ in range(steps):
        unet(x, t)
    out["forward_examples_per_s"] = batch * steps / (time.perf_counter() - start)
    if samples:
        start = time.perf_counter()
        y = torch.randn((samples,) + shape[1:])
        for t in sched.timesteps:
            y = sched.step(unet(y, t).sample, t, y).prev_sample
        out["sample_s"] = time.perf_counter() - start
print(json.dumps(out))
"""


def diffusers_peer(recipe, *, batch: int | None, steps: int, samples: int) -> dict | None:
    """The same U-Net, loss and ancestral sampler in diffusers (PyTorch), in a subprocess (torch and JAX in one
    process slow each other); None where diffusers is not installed or the recipe is not a fixed-variance ddpm."""
    import importlib.util

    if recipe.model != "ddpm" or importlib.util.find_spec("diffusers") is None:
        return None
    model_cfg, train_cfg = recipe.configs()
    if model_cfg.learn_variance:
        return None
    return run_diffusers_peer(model_cfg, recipe.spec.shape, batch=batch or train_cfg.batch_size, steps=steps,
                              samples=samples)


def run_diffusers_peer(model_cfg, shape, *, batch: int, steps: int, samples: int) -> dict:
    """diffusers' UNet2DModel in the layout of gm-jax's DDPM U-Net config ``model_cfg`` for images of ``shape``
    [H, W, C]: train steps/s and examples/s, the first step's seconds, forward examples/s and (``samples`` > 0)
    the ancestral loop's seconds, from a subprocess; ``{"error": line}`` if it failed."""
    import json
    import subprocess

    size, ch = shape[0], model_cfg.channels
    attn = [size >> i in set(model_cfg.attention_resolutions) for i in range(len(model_cfg.channel_mult))]
    cfg = {"sample_size": size, "in_channels": shape[2], "out_channels": shape[2],
           "layers_per_block": model_cfg.num_res_blocks, "block_out_channels": [ch * m for m in model_cfg.channel_mult],
           "down_block_types": ["AttnDownBlock2D" if a else "DownBlock2D" for a in attn],
           "up_block_types": ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)],
           "norm_num_groups": min(32, ch), "norm_eps": 1e-6, "downsample_padding": 0, "flip_sin_to_cos": False,
           "freq_shift": 1, "dropout": model_cfg.dropout, "_T": model_cfg.num_steps}
    out = subprocess.run([sys.executable, "-c", PEER, json.dumps(cfg), str(batch), str(steps), str(samples)],
                         capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


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
        peer = diffusers_peer(recipe, batch=args.batch, steps=args.steps, samples=args.samples)
        if peer and "error" in peer:
            print(f"| {name}: diffusers | {config} | - | - | {peer['error']} | | | |", flush=True)
        elif peer:
            print(f"| {name}: diffusers (PyTorch) | {config} | same layout | {r['batch']} | {peer['steps_per_s']:.3g} | "
                  f"{peer['examples_per_s']:.3g} | {peer['sample_s']:.3g} | - |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
