"""optax optimizers and learning-rate schedules built from a :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses

import jax
import optax

from gm_jax.losses.adversarial import weight_clip
from gm_jax.train.config import TrainConfig

__all__ = ["learning_rate_schedule", "make_optimizer", "project_params_to_box"]


def learning_rate_schedule(cfg: TrainConfig, *, updates_per_step: int = 1) -> optax.Schedule:
    """Linear warm-up from 0 over ``warmup_steps``, then constant / cosine / linear / exponential decay until
    ``steps`` (exponential: lr * final_lr_ratio ** (t / decay steps), a constant factor per step).

    The schedule is a function of the training step. A parameter group updated ``updates_per_step`` times a
    step (a critic's n_critic updates) counts updates, so its update u is at step u // updates_per_step:
    otherwise its warm-up and decay would run n times too fast (the critic's lr at 0 from step/n on).
    """
    per_step = _step_schedule(cfg)
    if updates_per_step == 1:
        return per_step
    return lambda count: per_step(count // updates_per_step)


def _step_schedule(cfg: TrainConfig) -> optax.Schedule:
    decay_steps = max(cfg.steps - cfg.warmup_steps, 1)
    end = cfg.lr * cfg.final_lr_ratio
    after = {
        "constant": optax.constant_schedule(cfg.lr),
        "cosine": optax.cosine_decay_schedule(cfg.lr, decay_steps, alpha=cfg.final_lr_ratio),
        "linear": optax.linear_schedule(cfg.lr, end, decay_steps),
        "exponential": optax.exponential_decay(cfg.lr, decay_steps, max(cfg.final_lr_ratio, 1e-30)),
    }[cfg.schedule]
    if cfg.warmup_steps == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps), after], [cfg.warmup_steps])


def make_optimizer(cfg: TrainConfig, *, updates_per_step: int = 1, **overrides) -> optax.GradientTransformation:
    """The configured optimizer, with optional per-group ``overrides`` of TrainConfig fields (e.g. lr), for a
    group updated ``updates_per_step`` times a step (:func:`learning_rate_schedule`)."""
    cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    lr = learning_rate_schedule(cfg, updates_per_step=updates_per_step)
    base = {
        "adam": lambda: optax.adam(lr, b1=cfg.b1, b2=cfg.b2),
        "adamw": lambda: optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay),
        "sgd": lambda: optax.sgd(lr, momentum=cfg.b1 or None),
    }[cfg.optimizer]()
    parts = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip > 0 else []
    parts += [base] + ([project_params_to_box(cfg.weight_clip)] if cfg.weight_clip > 0 else [])
    return optax.chain(*parts) if len(parts) > 1 else base


def project_params_to_box(limit: float) -> optax.GradientTransformation:
    """Final transform whose updates land the parameters in [-limit, limit]: projected gradient descent,
    as WGAN clips its critic's weights after each step (Arjovsky et al. 2017, Algorithm 1)."""

    def update(updates, state, params):
        if params is None:
            raise ValueError("project_params_to_box needs the parameters passed to update()")
        projected = weight_clip(optax.apply_updates(params, updates), clip=limit)
        return jax.tree_util.tree_map(lambda new, old: new - old, projected, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
