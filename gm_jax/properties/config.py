"""Configs of the property table (``gm-jax properties --config NAME``).

- ``quick``: one seed of four families with tiny networks and a few steps (a smoke run of every code path;
  the default test suite runs it, so its numbers mean nothing).
- still to come: ``cpu`` (every family on ``digits`` with 3 seeds, budgets sized for 2 CPU cores: the recorded
  table) and ``gpu`` (the same protocol with the models' own default budgets).

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
