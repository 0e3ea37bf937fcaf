"""Denoising score matching in its three common forms, as pure functions of a network callable.

- :func:`ddpm_loss`: the ε-prediction loss L_simple of Ho et al. (2020), eq. 14 (also its x_0- and
  v-prediction variants), for the discrete-time schedules of :mod:`gm_jax.processes.discrete`.
- :func:`dsm_loss`: the noise-conditional score network loss of Song & Ermon (2019), eq. 6 with
  λ(σ) = σ², over a set of noise levels.
- :func:`sde_dsm_loss`: the continuous-time objective of Song et al. (2021), eq. 7, for an SDE of
  :mod:`gm_jax.processes.sde` (optionally with the likelihood weighting λ(t) = g(t)² of Song et al. 2021b,
  "Maximum Likelihood Training of Score-Based Diffusion Models").

All three are denoising score matching (Vincent 2011): the regression target is the score of the
Gaussian perturbation kernel, so the minimiser is the score of the perturbed data distribution. Each
returns the per-example loss [B]; average it (or weight it) in the model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.processes.discrete import DiffusionSchedule, q_sample, v_from_eps

PREDICTIONS = ("eps", "x0", "v")


def _per_example(values, x):
    """[B] -> broadcastable against x [B, ...]."""
    return values.reshape(values.shape + (1,) * (x.ndim - 1))


def _flat(x):
    return x.reshape(x.shape[0], -1)


def ddpm_loss(eps_fn, schedule: DiffusionSchedule, x0, key, prediction: str = "eps"):
    """L_simple of Ho et al. (2020): || target - net(x_t, t) ||² averaged over the event axes.

    t ~ U{0, ..., T-1} (0-based step index), x_t ~ q(x_t | x_0). ``prediction`` says what the network
    outputs and is regressed on: ``"eps"`` (the noise, Ho et al.), ``"x0"`` (the clean data) or ``"v"``
    (sqrt(abar) eps - sqrt(1 - abar) x_0, Salimans & Ho 2022).

    Args:
      eps_fn: ``net(x_t [B, ...], t int32 [B]) -> [B, ...]``.
      x0: model-space data [B, ...].
    Returns: per-example loss [B].
    """
    if prediction not in PREDICTIONS:
        raise GMJaxError(f"unknown prediction '{prediction}'; choose one of {', '.join(PREDICTIONS)}")
    k_t, k_noise = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, schedule.num_steps)
    noise = jax.random.normal(k_noise, x0.shape, x0.dtype)
    x_t = q_sample(schedule, x0, t, noise)
    target = {"eps": lambda: noise, "x0": lambda: x0, "v": lambda: v_from_eps(schedule, x_t, t, noise)}[prediction]()
    out = eps_fn(x_t, t)
    return jnp.mean(_flat(jnp.square(out.astype(jnp.float32) - target)), axis=-1)


def dsm_loss(score_fn, x, sigmas, key):
    """Noise-conditional denoising score matching (Song & Ermon 2019, eq. 6 with λ(σ) = σ²).

    Each example draws a level σ uniformly from ``sigmas`` and is perturbed as x~ = x + σ z; the loss is
    ½ || σ s(x~, σ) + z ||² summed over the event axes, i.e. σ² · ½ || s(x~, σ) - ∇ log N(x~; x, σ²) ||².

    Args:
      score_fn: ``s(x [B, ...], sigma float [B]) -> [B, ...]``.
      x: model-space data [B, ...]. sigmas: noise levels [L] (any order).
    Returns: per-example loss [B].
    """
    sigmas = jnp.asarray(sigmas, jnp.float32)
    if sigmas.ndim != 1:
        raise GMJaxError(f"sigmas must be a 1-D array of noise levels, got shape {sigmas.shape}")
    k_level, k_noise = jax.random.split(key)
    sigma = sigmas[jax.random.randint(k_level, (x.shape[0],), 0, sigmas.shape[0])]
    z = jax.random.normal(k_noise, x.shape, x.dtype)
    s = _per_example(sigma, x)
    score = score_fn(x + s * z, sigma).astype(jnp.float32)
    return 0.5 * jnp.sum(_flat(jnp.square(s * score + z)), axis=-1)


def sde_dsm_loss(score_fn, sde, x, key, eps: float = 1e-5, likelihood_weighting: bool = False):
    """Continuous-time denoising score matching (Song et al. 2021, eq. 7).

    t ~ U(eps, T), x_t = m(t) x + s(t) z from ``sde.marginal``. Default weighting λ(t) = s(t)²:
    ½ || s(t) score(x_t, t) + z ||². With ``likelihood_weighting`` λ(t) = g(t)²:
    ½ g(t)² || score(x_t, t) + z / s(t) ||², whose expectation times T bounds the negative log-likelihood
    (Song et al. 2021b, Thm. 1) up to a constant.

    Args:
      score_fn: ``s(x [B, ...], t float [B]) -> [B, ...]``.
      sde: an SDE of :mod:`gm_jax.processes.sde` (``marginal(t)``, ``drift_diffusion(x, t)``, ``T``).
      x: model-space data [B, ...].
    Returns: per-example loss [B].
    """
    if not 0.0 <= eps < sde.T:
        raise GMJaxError(f"eps must be in [0, T={sde.T}), got {eps}")
    k_t, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_t, (x.shape[0],), minval=eps, maxval=sde.T)
    z = jax.random.normal(k_noise, x.shape, x.dtype)
    mean_coeff, std = sde.marginal(t)
    x_t = _per_example(mean_coeff, x) * x + _per_example(std, x) * z
    score = score_fn(x_t, t).astype(jnp.float32)
    if likelihood_weighting:
        _, g = sde.drift_diffusion(jnp.zeros_like(x), t)
        return 0.5 * g**2 * jnp.sum(_flat(jnp.square(score + z / _per_example(std, x))), axis=-1)
    return 0.5 * jnp.sum(_flat(jnp.square(_per_example(std, x) * score + z)), axis=-1)


__all__ = ["PREDICTIONS", "ddpm_loss", "dsm_loss", "sde_dsm_loss"]
