"""Configs of the property table (``gm-jax properties --config NAME``).

- ``quick``: one seed of four families with tiny networks and a few steps (a smoke run of every code path;
  the default test suite runs it, so its numbers mean nothing).
- ``cpu``: every family on ``digits`` with 3 seeds, each with a training budget of a few minutes on 2 CPU cores
  (the recorded table, ``experiments/properties/results/cpu``): small networks trained for more steps at a
  larger learning rate, and fewer sampler steps where the model's default would take an hour to draw 1,000
  samples. Each budget is commented with what it costs.
- ``gpu``: the same protocol with every model's own defaults (its budget, network and sampler).

Per-family settings are ``--set`` strings (``{"hidden": "64,64", "steps": "2000"}``): model and training
fields together, routed as the CLI routes them.
"""

from __future__ import annotations

import dataclasses

from gm_jax.errors import GMJaxError
from gm_jax.models.base import Config, check_positive, hparam
from gm_jax.properties.families import FAMILIES, POINT_FAMILIES

__all__ = ["PropertiesConfig", "CONFIGS"]


@dataclasses.dataclass(frozen=True)
class PropertiesConfig(Config):
    name: str = hparam("quick", "the config's name (results go to a folder of that name)")
    dataset: str = hparam("digits", "the image dataset every family trains on")
    families: tuple[str, ...] = hparam(tuple(FAMILIES), "families measured on the image dataset")
    seeds: tuple[int, ...] = hparam((0, 1, 2), "training seeds: each family is trained once per seed")
    sets: dict = hparam(None, "family -> {field: value} settings (model and training) for the image runs")
    num_samples: int = hparam(1000, "samples per model for sample quality, class coverage and memorisation")
    speed_batch: int = hparam(64, "batch of the sampling-speed and likelihood-cost timings")
    classifier_steps: int = hparam(2000, "training steps of the evaluator's domain classifier")
    timing_repeats: int = hparam(3, "timed calls after the compiling one; the fastest is reported")
    memorization_cells: int = hparam(5, "k-means cells of the data-copying test (Meehan et al. 2020)")
    ppl_paths: int = hparam(200, "slerp paths of the perceptual path length")
    probe_steps: int = hparam(500, "steps of the linear probe on latent codes (digit class)")
    point_datasets: tuple[str, ...] = hparam(("eight_gaussians", "rings"), "toy2d datasets of the mode-coverage "
                                             "table")
    point_families: tuple[str, ...] = hparam(POINT_FAMILIES, "families measured on points")
    point_sets: dict = hparam(None, "family -> {field: value} settings for the toy2d runs")
    point_samples: int = hparam(2000, "samples per model on points")

    def __post_init__(self):
        for field in ("sets", "point_sets"):
            if getattr(self, field) is None:
                object.__setattr__(self, field, {})
        super().__post_init__()

    def validate(self):
        check_positive(self, "num_samples", "speed_batch", "classifier_steps", "timing_repeats", "memorization_cells", "ppl_paths",
                       "probe_steps", "point_samples")
        for field, known in (("families", FAMILIES), ("point_families", POINT_FAMILIES)):
            unknown = sorted(set(getattr(self, field)) - set(known))
            if unknown:
                raise GMJaxError(f"{field}: unknown families {', '.join(unknown)}; choose from {', '.join(known)}")
        for field, known in (("sets", self.families), ("point_sets", self.point_families)):
            unknown = sorted(set(getattr(self, field)) - set(known))
            if unknown:
                raise GMJaxError(f"{field} names families outside the config: {', '.join(unknown)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise GMJaxError(f"seeds must be distinct and at least one, got {self.seeds}")


_LOG = {"log_every": "100", "checkpoint_every": "1000000"}  # one checkpoint: the last step

_QUICK_SETS = {
    "vae": {"hidden": "16", "latent_dim": "4", "steps": "3", "eval_importance_samples": "2"},
    "made": {"hidden": "16", "num_orderings": "1", "steps": "3"},
    "ddpm": {"channels": "8", "channel_mult": "1", "attention_resolutions": "", "dropout": "0", "num_steps": "50",
             "schedule": "cosine", "sample_steps": "5", "steps": "3", "eval_timesteps": "4"},
    "dcgan": {"width": "8", "steps": "3"},
}
_QUICK_POINT_SETS = {"maf": {"num_layers": "2", "hidden": "8,8", "steps": "3"}}

CONFIGS = {
    "quick": PropertiesConfig(
        name="quick", families=tuple(_QUICK_SETS), seeds=(0,),
        sets={k: {**v, **_LOG, "batch_size": "32", "warmup_steps": "0", "eval_max_examples": "32",
                  "num_samples": "4"} for k, v in _QUICK_SETS.items()},
        num_samples=48, speed_batch=8, classifier_steps=30, timing_repeats=1, memorization_cells=2, ppl_paths=8, probe_steps=20,
        point_datasets=("eight_gaussians",), point_families=tuple(_QUICK_POINT_SETS),
        point_sets={k: {**v, **_LOG, "batch_size": "32", "warmup_steps": "0", "eval_max_examples": "32"}
                    for k, v in _QUICK_POINT_SETS.items()},
        point_samples=64),
}

# cpu: budgets for 2 CPU cores, measured there at 8x8 digits (seconds per training step at the batch given).
# Networks of U-Net families: 16 base channels (a quarter of the convolution work of the default 32), which
# buys 3-4x the steps in the same minutes; at these budgets more steps help more than width.
_CPU_UNET = {"channels": "16", "lr": "1e-3", "warmup_steps": "100", "ema_decay": "0.995"}
_CPU_SETS = {
    # the model's default (2000 steps; IWAE bound with k = 1000 as the test NLL): 4000 steps overfit the
    # 1,437 images (test 1.96 bits/dim against 1.86)
    "vae": {"steps": "2000"},
    "made": {"steps": "4000"},
    "pixelcnn": {"steps": "1000"},
    # ResNet couplings at full resolution: 1.2 s per step at width 32 and batch 128; width 16, batch 64
    "realnvp": {"channels": "16", "batch_size": "64", "steps": "600"},
    # 0.22 s per step at batch 128
    "glow": {"batch_size": "64", "steps": "1200"},
    "maf": {"steps": "3000"},
    "spline_flow": {"steps": "3000"},
    # cosine schedule (Nichol & Dhariwal 2021: better than linear on small images), T = 1000 for the
    # ancestral sampler; the DDIM 50 sampler and the latent maps use 50 of its steps
    "ddpm": {**_CPU_UNET, "schedule": "cosine", "steps": "2000"},
    # PC with 200 steps (Song et al. use 1000 on CIFAR-10): 400 network evaluations a sample
    "score_sde": {**_CPU_UNET, "sample_steps": "200", "steps": "2000"},
    # L = 10 levels as Song & Ermon's CIFAR-10 setting; 25 Langevin steps per level instead of 100, with the
    # step size raised so that the total step length (steps x step size) is half of theirs
    "ncsn": {**_CPU_UNET, "num_scales": "10", "steps_per_sigma": "25", "step_lr": "4e-5", "steps": "2000"},
    # 60 Langevin steps per training step: 0.37 s per step at batch 128. Du & Mordatch's chains (step 10, noise
    # 0.005, the gradient capped at 0.01 a pixel: 0.08 over 64): the model's default, the exact chain with
    # noise sqrt(2 step), leaves the samples noise at this budget (FID 321); these give digits in 400 steps
    "ebm": {"batch_size": "64", "steps": "800", "step_size": "10", "noise_scale": "0.005", "grad_clip": "0.08"},
    # GAN steps are cheap: at 5,000 steps DCGAN's FID was 17.3, at 20,000 (2 minutes) 12.0; WGAN-GP 18.8 at
    # 2,000 and 17.0 at 8,000
    "dcgan": {"steps": "20000"},
    "wgan_gp": {"steps": "8000"},
    # the ResNet critic and generator at width 32 (the default 128 is the paper's CIFAR width): 0.1 s per step
    # at batch 64 (width 64: 0.27 s)
    "sngan": {"width": "32", "steps": "2000"},
    "stylegan_small": {"steps": "2000"},
}
# a Gaussian decoder on continuous points (the VAE's default likelihood is for images)
_CPU_POINT_SETS = {name: {"steps": "2000", **({"likelihood": "gaussian"} if name == "vae" else {})}
                   for name in POINT_FAMILIES}
_CPU_CHECKPOINTS = {"log_every": "100", "checkpoint_every": "500"}  # a stopped run resumes within 500 steps

CONFIGS["cpu"] = PropertiesConfig(
    name="cpu", families=tuple(FAMILIES), seeds=(0, 1, 2),
    sets={k: {**_CPU_CHECKPOINTS, **v} for k, v in _CPU_SETS.items()},
    num_samples=1000, speed_batch=64, classifier_steps=2000, timing_repeats=3, memorization_cells=5, ppl_paths=200,
    probe_steps=500, point_datasets=("eight_gaussians", "rings"), point_families=POINT_FAMILIES,
    point_sets={k: {**_CPU_CHECKPOINTS, **v} for k, v in _CPU_POINT_SETS.items()}, point_samples=2000)

# gpu: every model's own defaults (network, budget, sampler), the protocol unchanged
# (20,000 steps of the diffusion models, SNGAN's width-128 ResNets, DDPM's T = 1000 with 32 channels, ...)
CONFIGS["gpu"] = dataclasses.replace(CONFIGS["cpu"], name="gpu", sets={},
                                     point_sets={"vae": {"likelihood": "gaussian"}})
