"""Training hyper-parameters shared by every model (the model's own live in its config)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from gm_jax.errors import GMJaxError
from gm_jax.models.base import Config, check_positive

__all__ = ["TrainConfig"]


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How to train. Fields are set from the CLI with ``--set name=value`` (``--steps`` sets ``steps``).

    lr schedule: linear warm-up over ``warmup_steps`` then ``schedule`` (constant, cosine or linear decay
    to ``lr * final_lr_ratio`` at ``steps``). ``grad_clip`` > 0 clips the global gradient norm.
    ``weight_clip`` > 0 projects the parameters into [-weight_clip, weight_clip] after every update (the
    critic of WGAN, Arjovsky et al. 2017; usually set for one parameter group only). ``ema_decay`` > 0
    keeps an exponential moving average of the parameters, used for sampling and evaluation. Data smaller than ``max_device_bytes`` is kept on device; larger data streams from disk.
    """

    steps: int = 2000
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    final_lr_ratio: float = 0.0
    grad_clip: float = 0.0
    weight_clip: float = 0.0
    ema_decay: float = 0.0
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    sample_every: int = 0
    num_samples: int = 64
    eval_batch_size: int = 256
    eval_max_examples: int = 0
    max_device_bytes: int = 1 << 30

    def validate(self):
        check_positive(self, "steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "num_samples",
                       "eval_batch_size")
        if self.lr <= 0:
            raise GMJaxError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise GMJaxError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_clip < 0 or self.warmup_steps < 0 or self.sample_every < 0:
            raise GMJaxError("grad_clip, weight_clip, warmup_steps and sample_every must be >= 0")
        if self.weight_decay < 0 or self.eval_max_examples < 0 or self.max_device_bytes < 0:
            raise GMJaxError("weight_decay, eval_max_examples and max_device_bytes must be >= 0 (max_device_bytes=0 "
                             "streams all data from disk)")
        if not 0.0 <= self.final_lr_ratio <= 1.0:
            raise GMJaxError(f"final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}")
        if not (0.0 <= self.b1 < 1.0 and 0.0 <= self.b2 < 1.0):
            raise GMJaxError(f"b1 and b2 must be in [0, 1), got {self.b1}, {self.b2}")
        if self.seed < 0:
            raise GMJaxError(f"seed must be >= 0, got {self.seed}")
