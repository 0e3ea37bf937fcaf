"""optax optimizers and learning-rate schedules built from a :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses

import optax

from gm_jax.train.config import TrainConfig


def learning_rate_schedule(cfg: TrainConfig) -> optax.Schedule:
    """Linear warm-up from 0 over ``warmup_steps``, then constant / cosine / linear decay until ``steps``."""
    decay_steps = max(cfg.steps - cfg.warmup_steps, 1)
    end = cfg.lr * cfg.final_lr_ratio
    after = {
        "constant": optax.constant_schedule(cfg.lr),
        "cosine": optax.cosine_decay_schedule(cfg.lr, decay_steps, alpha=cfg.final_lr_ratio),
        "linear": optax.linear_schedule(cfg.lr, end, decay_steps),
    }[cfg.schedule]
    if cfg.warmup_steps == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps), after], [cfg.warmup_steps])


def make_optimizer(cfg: TrainConfig, **overrides) -> optax.GradientTransformation:
    """The configured optimizer, with optional per-group ``overrides`` of TrainConfig fields (e.g. lr)."""
    cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    lr = learning_rate_schedule(cfg)
    base = {
        "adam": lambda: optax.adam(lr, b1=cfg.b1, b2=cfg.b2),
        "adamw": lambda: optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay),
        "sgd": lambda: optax.sgd(lr, momentum=cfg.b1 or None),
    }[cfg.optimizer]()
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), base) if cfg.grad_clip > 0 else base
