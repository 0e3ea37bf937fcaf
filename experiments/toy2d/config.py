"""Configs of the toy2d exact-density benchmark (experiments/toy2d/run.py).

``cpu`` is the configuration whose table README.md reports; ``smoke`` runs a few steps of the flows on one
dataset (the default test suite runs it), ``smoke_diffusion`` of ddpm and score_sde (a slow test). Model fields are set as on the command line (``--set``).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

from gm_jax.data.toy2d import NAMES
from gm_jax.errors import GMJaxError
from gm_jax.models.base import Config, check_positive

Model = Literal["made", "maf", "realnvp", "spline_flow", "ddpm", "score_sde"]
MODELS = typing.get_args(Model)
FLOWS = MODELS[:4]


@dataclasses.dataclass(frozen=True)
class Toy2dConfig(Config):
    name: str
    datasets: tuple[str, ...] = NAMES
    models: tuple[Model, ...] = MODELS
    model_sets: dict = dataclasses.field(default_factory=dict)  # model -> {field: value}
    train_sets: dict = dataclasses.field(default_factory=dict)  # TrainConfig fields for every model
    model_train_sets: dict = dataclasses.field(default_factory=dict)  # model -> TrainConfig fields
    grid_bins: int = 200

    def validate(self):
        check_positive(self, "grid_bins")
        unknown = sorted(set(self.datasets) - set(NAMES))
        if unknown:
            raise GMJaxError(f"unknown toy2d datasets {', '.join(unknown)}; choose from {', '.join(NAMES)}")
        for field in ("model_sets", "model_train_sets"):
            unknown = sorted(set(getattr(self, field)) - set(MODELS))
            if unknown:
                raise GMJaxError(f"{field} names unknown models {', '.join(unknown)}; choose from {', '.join(MODELS)}")


CONFIGS = {
    "cpu": Toy2dConfig(
        name="cpu",
        model_sets={"realnvp": {"coupling_pairs": "4"},
                    # ddpm: the hybrid loss learns the variances, which tightens the bound it is scored by.
                    "ddpm": {"learn_variance": "true", "hidden": "256,256,256", "eval_timesteps": "0"},
                    "score_sde": {"hidden": "256,256,256", "trace": "exact", "ode_rtol": "1e-4", "ode_atol": "1e-4"}},
        train_sets={"steps": "5000", "batch_size": "256", "schedule": "cosine", "warmup_steps": "200",
                    "checkpoint_every": "5000", "log_every": "500"},
        # The TrainConfig default lr (1e-3) for every model (the diffusion models' own default is 2e-4).
        model_train_sets={"ddpm": {"lr": "1e-3"}, "score_sde": {"lr": "1e-3"}},
    ),
    "smoke": Toy2dConfig(
        name="smoke",
        datasets=("moons",),
        models=FLOWS,
        model_sets={"made": {"hidden": "16,16", "num_orderings": "2", "num_components": "2"},
                    "maf": {"num_layers": "2", "hidden": "16,16"},
                    "realnvp": {"coupling_pairs": "1", "hidden": "16"},
                    "spline_flow": {"num_layers": "1", "hidden": "16,16"}},
        train_sets={"steps": "3", "batch_size": "32", "warmup_steps": "0", "checkpoint_every": "3",
                    "log_every": "1"},
        grid_bins=40,
    ),
    "smoke_diffusion": Toy2dConfig(
        name="smoke_diffusion",
        datasets=("moons",),
        models=("ddpm", "score_sde"),
        model_sets={"ddpm": {"hidden": "16,16", "num_steps": "100", "learn_variance": "true", "eval_timesteps": "0"},
                    "score_sde": {"hidden": "16,16", "ode_steps": "8", "trace": "exact"}},
        train_sets={"steps": "3", "batch_size": "32", "warmup_steps": "0", "checkpoint_every": "3",
                    "log_every": "1"},
        grid_bins=40,
    ),
}
