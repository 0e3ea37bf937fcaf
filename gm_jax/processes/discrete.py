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
    if not 0 < scale * beta_start <= scale * beta_end < 1:
        raise GMJaxError(f"linear_beta_schedule: with num_steps={num_steps} the rescaled betas run from "
                         f"{scale * beta_start:g} to {scale * beta_end:g}, outside (0, 1); use more steps or a "
                         f"smaller beta_end (at most {num_steps / 1000.0:g} here)")
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


def eps_from_prediction(schedule: DiffusionSchedule, x_t, t, out, prediction: str):
    """The ε implied by a network output that predicts ``"eps"``, ``"x0"`` or ``"v"``."""
    if prediction == "eps":
        return out
    if prediction == "x0":
        return eps_from_x0(schedule, x_t, t, out)
    if prediction == "v":
        return eps_from_v(schedule, x_t, t, out)
    raise GMJaxError(f"unknown prediction '{prediction}'; choose one of eps, x0, v")


VARIANCES = ("posterior", "beta", "learned")


def split_network_output(out, variance: str):
    """(eps, var_interp or None) in float32 from a network output: ``(eps, var_interp)`` when the variance
    is learned, else eps alone."""
    if variance == "learned":
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise GMJaxError("variance='learned' needs the network to return (eps, var_interp)")
        return out[0].astype(jnp.float32), out[1].astype(jnp.float32)
    return out.astype(jnp.float32), None


def p_mean_variance(schedule: DiffusionSchedule, x_t, t, eps, variance: str = "posterior", var_interp=None,
                    clip_x0: bool = False):
    """The reverse kernel p(x_{t-1} | x_t) = N(mean, exp(log_var)) implied by a predicted ε.

    The mean is the posterior mean q(x_{t-1} | x_t, x0_hat) at x0_hat = x0_from_eps (optionally clipped to
    [-1, 1], as Ho et al. do for images), equal to (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)
    when unclipped. ``variance``: ``"posterior"`` beta~_t (their sigma_t^2 = beta~_t), ``"beta"`` beta_t
    (with beta~_2 at t = 1, as their code does), or ``"learned"``: the interpolation
    exp(v log beta_t + (1 - v) log beta~_t) (beta~_1 clipped to beta~_2) with v = (var_interp + 1) / 2 (Nichol & Dhariwal 2021, eq. 15),
    ``var_interp`` like x_t in [-1, 1].

    Returns: mean [B, ...], log_var (broadcastable against mean), x0_hat [B, ...].
    """
    x0_hat = x0_from_eps(schedule, x_t, t, eps)
    if clip_x0:
        x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
    mean, _, post_log_var = q_posterior(schedule, x0_hat, x_t, t)
    log_beta = jnp.log(jnp.concatenate([schedule.posterior_variance[1:2], schedule.betas[1:]]))
    if variance == "posterior":
        log_var = post_log_var
    elif variance == "beta":
        log_var = _per_example(log_beta, t, x_t)
    elif variance == "learned":
        if var_interp is None:
            raise GMJaxError("variance='learned' needs var_interp, the network's variance output")
        # The upper end is log beta_t at every t, t = 1 included (beta_1 > beta~_2 lets the decoder widen).
        frac = (var_interp + 1.0) / 2.0
        log_var = frac * _per_example(jnp.log(schedule.betas), t, x_t) + (1.0 - frac) * post_log_var
    else:
        raise GMJaxError(f"unknown variance '{variance}'; choose one of {', '.join(VARIANCES)}")
    return mean, log_var, x0_hat
