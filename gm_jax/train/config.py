"""Training hyper-parameters shared by every model (the model's own live in its config)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from gm_jax.errors import GMJaxError
from gm_jax.models.base import Config, check_positive, hparam

__all__ = ["TrainConfig"]


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How to train. Fields are set from the CLI with ``--set name=value`` (``--steps`` sets ``steps``).

    lr schedule: linear warm-up over ``warmup_steps`` then ``schedule`` (constant, or cosine, linear or
    exponential decay to ``lr * final_lr_ratio`` at ``steps``). ``grad_clip`` > 0 clips the global gradient norm.
    ``weight_clip`` > 0 projects the parameters into [-weight_clip, weight_clip] after every update (the
    critic of WGAN, Arjovsky et al. 2017; usually set for one parameter group only). ``ema_decay`` > 0
    keeps an exponential moving average of the parameters, used for sampling and evaluation. Data smaller than ``max_device_bytes`` is kept on device; larger data streams from disk.
    """

    steps: int = hparam(2000, "training steps (--steps sets it)")
    batch_size: int = hparam(128, "examples per step, over all devices")
    optimizer: Literal["adam", "adamw", "sgd"] = hparam("adam", "the optimizer")
    lr: float = hparam(1e-3, "peak learning rate")
    b1: float = hparam(0.9, "Adam beta1 (sgd: momentum, 0 for none)")
    b2: float = hparam(0.999, "Adam beta2")
    weight_decay: float = hparam(0.0, "decoupled weight decay (adamw)")
    warmup_steps: int = hparam(0, "linear warm-up steps from 0 to lr")
    schedule: Literal["constant", "cosine", "linear", "exponential"] = hparam(
        "constant", "after warm-up: constant, or cosine, linear or exponential decay to lr * final_lr_ratio")
    final_lr_ratio: float = hparam(0.0, "the learning rate at the last step as a fraction of lr (cosine, linear, "
                                        "exponential)")
    grad_clip: float = hparam(0.0, "> 0: clip the global gradient norm to this")
    weight_clip: float = hparam(0.0, "> 0: project the parameters into [-c, c] after each update (WGAN critic)")
    ema_decay: float = hparam(0.0, "> 0: EMA of the parameters, used for sampling and evaluation")
    hflip: bool = hparam(False, "mirror each training image left-right with probability 1/2 (images only)")
    seed: int = hparam(0, "random seed of initialisation, data order and sampling")
    log_every: int = hparam(100, "steps between records of metrics.jsonl")
    checkpoint_every: int = hparam(1000, "steps between checkpoints")
    keep_checkpoints: int = hparam(3, "checkpoints kept")
    sample_every: int = hparam(0, "> 0: steps between updates of samples.png (always written at the end)")
    num_samples: int = hparam(64, "samples drawn for samples.png")
    eval_batch_size: int = hparam(256, "batch size of the test evaluation")
    eval_max_examples: int = hparam(0, "test examples evaluated (0: all)")
    max_device_bytes: int = hparam(1 << 30, "data up to this size stays on device; larger data streams from disk")
    prefetch_batches: int = hparam(16, "streamed data: batches read ahead by background threads (0: read in the loop)")
    eval_every: int = hparam(0, "> 0: steps between evaluations during training (held-out loss and NLL, samples)")
    eval_examples: int = hparam(256, "held-out examples of each evaluation during training")
    eval_sample_metrics: str = hparam("", "during-training sample quality, e.g. fid,prdc (empty: none)")
    eval_features: Literal["auto", "raw", "domain", "inception"] = hparam(
        "auto", "features of eval_sample_metrics (auto: raw for points, the domain classifier for images)")
    eval_num_samples: int = hparam(256, "samples drawn for eval_sample_metrics")
    steps_per_dispatch: int = hparam(1, "steps per jitted call (a scan over their batches, same results); > 1 "
                                        "for small models on GPU")

    def validate(self):
        check_positive(self, "steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "num_samples",
                       "eval_batch_size")
        if self.lr <= 0:
            raise GMJaxError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise GMJaxError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_clip < 0 or self.warmup_steps < 0 or self.sample_every < 0:
            raise GMJaxError("grad_clip, weight_clip, warmup_steps and sample_every must be >= 0")
        if self.prefetch_batches < 0:
            raise GMJaxError(f"prefetch_batches must be >= 0 (0: read each batch in the loop), got "
                             f"{self.prefetch_batches}")
        if self.weight_decay < 0 or self.eval_max_examples < 0 or self.max_device_bytes < 0:
            raise GMJaxError("weight_decay, eval_max_examples and max_device_bytes must be >= 0 (max_device_bytes=0 "
                             "streams all data from disk)")
        if not 0.0 <= self.final_lr_ratio <= 1.0:
            raise GMJaxError(f"final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}")
        if self.schedule == "exponential" and self.final_lr_ratio == 0:
            raise GMJaxError("schedule=exponential decays to lr * final_lr_ratio, which must be > 0; set "
                             "final_lr_ratio (e.g. 0.01)")
        if not (0.0 <= self.b1 < 1.0 and 0.0 <= self.b2 < 1.0):
            raise GMJaxError(f"b1 and b2 must be in [0, 1), got {self.b1}, {self.b2}")
        if self.eval_every < 0:
            raise GMJaxError(f"eval_every must be >= 0 (0: no evaluation during training), got {self.eval_every}")
        check_positive(self, "eval_examples", "eval_num_samples", "steps_per_dispatch")
        k = self.steps_per_dispatch
        uneven = [f"{name}={getattr(self, name)}" for name in ("log_every", "checkpoint_every", "sample_every",
                                                               "eval_every") if getattr(self, name) % k]
        if uneven:  # the loop acts between dispatches only
            raise GMJaxError(f"{', '.join(uneven)} must be {'a multiple' if len(uneven) == 1 else 'multiples'} of "
                             f"steps_per_dispatch={k}; set {'it' if len(uneven) == 1 else 'them'} to a multiple of {k} "
                             "or lower steps_per_dispatch")
        if self.eval_sample_metrics:
            from gm_jax.metrics.suite import parse_metrics  # one line naming an unknown metric

            parse_metrics(self.eval_sample_metrics)
        if not 0 <= self.seed < 2**31:  # jax keys and numpy's seeding take 32-bit seeds
            raise GMJaxError(f"seed must be in [0, 2**31), got {self.seed}")
