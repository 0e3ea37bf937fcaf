"""Discrete-time Gaussian diffusion (Ho et al. 2020, "Denoising Diffusion Probabilistic Models").

The forward process q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), t = 1..T, has the marginal
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with abar_t = prod_{s<=t} (1 - beta_s), and the
posterior q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) with

    mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
    beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.

Time indices here are 0-based: entry i of every array is step t = i + 1, and ``alphas_cumprod_prev[0]``
is abar_0 = 1. Functions take ``t`` as int [B] indices and broadcast per-example coefficients over the
event axes of x [B, ...].
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError


class DiffusionSchedule(NamedTuple):
    """Per-step coefficients [T] (float32), computed in float64 by :func:`make_schedule`."""

    betas: jnp.ndarray
    alphas_cumprod: jnp.ndarray
    alphas_cumprod_prev: jnp.ndarray
    posterior_variance: jnp.ndarray
    posterior_log_variance: jnp.ndarray  # log beta~_t, with beta~_1 (= 0) replaced by beta~_2 (Ho et al.)

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]


def linear_beta_schedule(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020): betas linear from ``beta_start`` to ``beta_end``, rescaled by 1000 / T so other
    step counts keep the same total noise (as Nichol & Dhariwal 2021 do). float64 [T]."""
    if num_steps < 1:
        raise GMJaxError(f"num_steps must be >= 1, got {num_steps}")
    scale = 1000.0 / num_steps
    return np.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=np.float64)


def cosine_beta_schedule(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021), "Improved DDPM": abar(t) = f(t) / f(0), f(t) = cos((t/T + s)/(1 + s) pi/2)^2;
    beta_t = 1 - abar(t) / abar(t-1), clipped at ``max_beta`` to avoid the singularity at t = T. float64 [T]."""
    if num_steps < 1:
        raise GMJaxError(f"num_steps must be >= 1, got {num_steps}")
    f = lambda u: np.cos((u / num_steps + s) / (1 + s) * np.pi / 2) ** 2
    t = np.arange(num_steps + 1, dtype=np.float64)
    abar = f(t) / f(0.0)
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def make_schedule(betas) -> DiffusionSchedule:
    """The coefficients of the process with the given betas [T] in (0, 1)."""
    betas = np.asarray(betas, np.float64)
    if betas.ndim != 1 or not np.all((betas > 0) & (betas < 1)):
        raise GMJaxError("betas must be a 1-D array of values in (0, 1)")
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    post_log_var = np.log(np.concatenate([post_var[1:2], post_var[1:]]) if len(betas) > 1 else betas)
    as32 = lambda a: jnp.asarray(a, jnp.float32)
    return DiffusionSchedule(as32(betas), as32(abar), as32(abar_prev), as32(post_var), as32(post_log_var))


def _per_example(coef, t, x):
    """coef[t] [B] reshaped to broadcast against x [B, ...]."""
    c = jnp.take(coef, t)
    return c.reshape(c.shape + (1,) * (x.ndim - 1))


def q_sample(schedule: DiffusionSchedule, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise: a draw from q(x_t | x_0) given standard normal noise."""
    abar = _per_example(schedule.alphas_cumprod, t, x0)
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def q_posterior(schedule: DiffusionSchedule, x0, x_t, t):
    """Mean [B, ...], variance and clipped log-variance (broadcastable [B, 1, ...]) of q(x_{t-1} | x_t, x_0)."""
    beta = _per_example(schedule.betas, t, x_t)
    abar = _per_example(schedule.alphas_cumprod, t, x_t)
    abar_prev = _per_example(schedule.alphas_cumprod_prev, t, x_t)
    mean = (jnp.sqrt(abar_prev) * beta / (1.0 - abar)) * x0 + (jnp.sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar)) * x_t
    return mean, _per_example(schedule.posterior_variance, t, x_t), _per_example(schedule.posterior_log_variance, t, x_t)


def x0_from_eps(schedule: DiffusionSchedule, x_t, t, eps):
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    abar = _per_example(schedule.alphas_cumprod, t, x_t)
    return (x_t - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)


def eps_from_x0(schedule: DiffusionSchedule, x_t, t, x0):
    """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)."""
    abar = _per_example(schedule.alphas_cumprod, t, x_t)
    return (x_t - jnp.sqrt(abar) * x0) / jnp.sqrt(1.0 - abar)


def v_from_eps(schedule: DiffusionSchedule, x_t, t, eps):
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, "Progressive Distillation")."""
    abar = _per_example(schedule.alphas_cumprod, t, x_t)
    return jnp.sqrt(abar) * eps - jnp.sqrt(1.0 - abar) * x0_from_eps(schedule, x_t, t, eps)


def x0_from_v(schedule: DiffusionSchedule, x_t, t, v):
    """x_0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v."""
    abar = _per_example(schedule.alphas_cumprod, t, x_t)
    return jnp.sqrt(abar) * x_t - jnp.sqrt(1.0 - abar) * v


def eps_from_v(schedule: DiffusionSchedule, x_t, t, v):
    """eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v."""
    abar = _per_example(schedule.alphas_cumprod, t, x_t)
    return jnp.sqrt(1.0 - abar) * x_t + jnp.sqrt(abar) * v
