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

from gm_jax.distributions import sum_event
from gm_jax.errors import GMJaxError
from gm_jax.processes.discrete import PREDICTIONS, DiffusionSchedule, call_denoiser, check_choice, q_sample, v_from_eps
from gm_jax.shapes import check_output, mean_event, per_example

__all__ = ["ddpm_loss", "dsm_loss", "sde_dsm_loss"]


def ddpm_loss(net_fn, schedule: DiffusionSchedule, x0, key, *, prediction: str = "eps"):
    """L_simple of Ho et al. (2020): || target - net(x_t, t) ||² averaged over the event axes.

    t ~ U{0, ..., T-1} (0-based step index), x_t ~ q(x_t | x_0). ``prediction`` says what the network
    outputs and is regressed on: ``"eps"`` (the noise, Ho et al.), ``"x0"`` (the clean data) or ``"v"``
    (sqrt(abar) eps - sqrt(1 - abar) x_0, Salimans & Ho 2022).

    Args:
      net_fn: ``net(x_t [B, ...], t int32 [B]) -> [B, ...]``, checked at trace time.
      x0: model-space data [B, ...].
    Returns: per-example loss [B].
    """
    check_choice("ddpm_loss", "prediction", prediction, PREDICTIONS)
    k_t, k_noise = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, schedule.num_steps)
    noise = jax.random.normal(k_noise, x0.shape, x0.dtype)
    x_t = q_sample(schedule, x0, t, noise)
    target = {"eps": lambda: noise, "x0": lambda: x0, "v": lambda: v_from_eps(schedule, x_t, t, noise)}[prediction]()
    out, _ = call_denoiser("ddpm_loss", net_fn, x_t, t, "posterior")
    return mean_event(jnp.square(out - target))


def dsm_loss(score_fn, sigmas, x, key):
    """Noise-conditional denoising score matching (Song & Ermon 2019, eq. 6 with λ(σ) = σ²).

    Each example draws a level σ uniformly from ``sigmas`` and is perturbed as x~ = x + σ z; the loss is
    ½ || σ s(x~, σ) + z ||² summed over the event axes, i.e. σ² · ½ || s(x~, σ) - ∇ log N(x~; x, σ²) ||².

    Args:
      score_fn: ``s(x [B, ...], sigma float [B]) -> [B, ...]``, checked at trace time.
      sigmas: noise levels [L] (any order; e.g. :func:`gm_jax.processes.geometric_noise_levels`).
      x: model-space data [B, ...].
    Returns: per-example loss [B].
    """
    sigmas = jnp.asarray(sigmas, jnp.float32)
    if sigmas.ndim != 1:
        raise GMJaxError(f"dsm_loss: sigmas must be a 1-D array of noise levels [L], got shape {sigmas.shape}")
    k_level, k_noise = jax.random.split(key)
    sigma = sigmas[jax.random.randint(k_level, (x.shape[0],), 0, sigmas.shape[0])]
    z = jax.random.normal(k_noise, x.shape, x.dtype)
    s = per_example(sigma, x)
    score = check_output("dsm_loss", "score_fn(x, sigma)", score_fn(x + s * z, sigma), x.shape)
    return 0.5 * sum_event(jnp.square(s * score.astype(jnp.float32) + z))


def sde_dsm_loss(score_fn, sde, x, key, *, eps: float = 1e-5, likelihood_weighting: bool = False):
    """Continuous-time denoising score matching (Song et al. 2021, eq. 7).

    t ~ U(eps, T), x_t = m(t) x + s(t) z from ``sde.marginal``. Default weighting λ(t) = s(t)²:
    ½ || s(t) score(x_t, t) + z ||². With ``likelihood_weighting`` λ(t) = g(t)²:
    ½ g(t)² || score(x_t, t) + z / s(t) ||², whose expectation times T bounds the negative log-likelihood
    (Song et al. 2021b, Thm. 1) up to a constant.

    Args:
      score_fn: ``s(x [B, ...], t float [B]) -> [B, ...]``, checked at trace time.
      sde: an SDE of :mod:`gm_jax.processes.sde` (``marginal(t)``, ``drift_diffusion(x, t)``, ``T``).
      x: model-space data [B, ...].
    Returns: per-example loss [B].
    """
    if not 0.0 <= eps < sde.T:
        raise GMJaxError(f"sde_dsm_loss: eps must be in [0, T={sde.T}), got {eps}")
    k_t, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_t, (x.shape[0],), minval=eps, maxval=sde.T)
    z = jax.random.normal(k_noise, x.shape, x.dtype)
    mean_coeff, std = sde.marginal(t)
    x_t = per_example(mean_coeff, x) * x + per_example(std, x) * z
    score = check_output("sde_dsm_loss", "score_fn(x, t)", score_fn(x_t, t), x.shape).astype(jnp.float32)
    if likelihood_weighting:
        _, g = sde.drift_diffusion(jnp.zeros_like(x), t)
        return 0.5 * g**2 * sum_event(jnp.square(score + z / per_example(std, x)))
    return 0.5 * sum_event(jnp.square(per_example(std, x) * score + z))
