"""Continuous-time diffusion SDEs of Song et al. (2021), "Score-Based Generative Modeling through Stochastic
Differential Equations" (ICLR), section 3.4 and appendix B.

Each process is a forward Itô SDE dx = f(x, t) dt + g(t) dW on t in [0, T] with a Gaussian perturbation
kernel x_t | x_0 ~ N(m(t) x_0, s(t)^2 I):

- :class:`VESDE` (variance exploding, the continuum limit of NCSN): sigma(t) = sigma_min (sigma_max /
  sigma_min)^t, f = 0, g = sigma(t) sqrt(2 log(sigma_max / sigma_min)); m = 1, s^2 = sigma(t)^2 - sigma_min^2
  (the paper's eq. 30 kernel; the reference code uses s = sigma(t), i.e. it treats the data as already
  perturbed by sigma_min; we keep the exact kernel so marginals match the SDE).
- :class:`VPSDE` (variance preserving, the continuum limit of DDPM): beta(t) = beta_min + t (beta_max -
  beta_min), f = -beta(t) x / 2, g = sqrt(beta(t)); m = exp(-B(t)/2), s^2 = 1 - exp(-B(t)) with
  B(t) = int_0^t beta = beta_min t + (beta_max - beta_min) t^2 / 2 (eq. 33).
- :class:`SubVPSDE`: the VP drift with g = sqrt(beta(t) (1 - exp(-2 B(t)))); m as VP, s = 1 - exp(-B(t))
  (eq. 34), a variance that stays below the VP one at every t.

Conventions: ``t`` is float [B] (one time per example), ``x`` is [B, ...]; per-example coefficients
broadcast over the event axes. Times are in the SDE's own units, t in [0, T] with T = 1.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError


def _bcast(c, x):
    """[B] coefficient -> broadcastable against x [B, ...]."""
    return c.reshape(c.shape + (1,) * (x.ndim - 1))


def _times(t):
    return jnp.asarray(t, jnp.float32)


def _gaussian_log_prob(z, std):
    """sum over event axes of log N(z; 0, std^2) [B] for a Python-float std."""
    flat = z.reshape(z.shape[0], -1).astype(jnp.float32)
    d = flat.shape[1]
    return -0.5 * jnp.sum(jnp.square(flat), axis=-1) / std**2 - d * (math.log(std) + 0.5 * math.log(2 * math.pi))


def _check_finite(name, value):
    if not np.isfinite(value):
        raise GMJaxError(f"{name} must be a finite number, got {value}")


@dataclasses.dataclass(frozen=True)
class VESDE:
    """Variance-exploding SDE; prior N(0, sigma_max^2 I). ``sigma_max`` should exceed the largest pairwise
    distance between data points (Song & Ermon 2020, technique 1) so the prior matches the marginal at T."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    T: ClassVar[float] = 1.0  # the time horizon: t in [0, T]

    def __post_init__(self):
        _check_finite("sigma_min", self.sigma_min)
        _check_finite("sigma_max", self.sigma_max)
        if not 0.0 < self.sigma_min < self.sigma_max:
            raise GMJaxError(f"VESDE needs 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                             f"sigma_max={self.sigma_max}")

    def sigma(self, t):
        """sigma(t) = sigma_min (sigma_max / sigma_min)^t [B]."""
        return self.sigma_min * jnp.exp(_times(t) * math.log(self.sigma_max / self.sigma_min))

    def drift_diffusion(self, x, t):
        """(f [like x] = 0, g [B] = sigma(t) sqrt(2 log(sigma_max / sigma_min)))."""
        g = self.sigma(t) * math.sqrt(2.0 * math.log(self.sigma_max / self.sigma_min))
        return jnp.zeros_like(x), g

    def marginal(self, t):
        """(m [B] = 1, s [B] = sqrt(sigma(t)^2 - sigma_min^2)). expm1 keeps s accurate for small t."""
        t = _times(t)
        log_ratio = math.log(self.sigma_max / self.sigma_min)
        std = self.sigma_min * jnp.sqrt(jnp.expm1(2.0 * t * log_ratio))
        return jnp.ones_like(t), std

    def prior_sample(self, key, shape):
        """z ~ N(0, sigma_max^2 I) of ``shape`` (float32)."""
        return self.sigma_max * jax.random.normal(key, shape, jnp.float32)

    def prior_log_prob(self, z):
        """log N(z; 0, sigma_max^2 I) summed over event axes: [B] nats."""
        return _gaussian_log_prob(z, self.sigma_max)


@dataclasses.dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE; prior N(0, I). The defaults (0.1, 20) are the continuum limit of DDPM's
    linear schedule beta_i = 1e-4 .. 0.02 over 1000 steps (beta(t) ~ N beta_i)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: ClassVar[float] = 1.0  # the time horizon: t in [0, T]

    def __post_init__(self):
        _check_finite("beta_min", self.beta_min)
        _check_finite("beta_max", self.beta_max)
        if not 0.0 < self.beta_min <= self.beta_max:
            raise GMJaxError(f"{type(self).__name__} needs 0 < beta_min <= beta_max, got beta_min={self.beta_min}, "
                             f"beta_max={self.beta_max}")

    def beta(self, t):
        """beta(t) = beta_min + t (beta_max - beta_min) [B]."""
        return self.beta_min + _times(t) * (self.beta_max - self.beta_min)

    def integrated_beta(self, t):
        """B(t) = int_0^t beta(u) du = beta_min t + (beta_max - beta_min) t^2 / 2 [B]."""
        t = _times(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def drift_diffusion(self, x, t):
        """(f = -beta(t) x / 2 [like x], g = sqrt(beta(t)) [B])."""
        beta = self.beta(t)
        return -0.5 * _bcast(beta, x) * x, jnp.sqrt(beta)

    def marginal(self, t):
        """(m = exp(-B/2), s = sqrt(1 - exp(-B))) [B]; -expm1 keeps s accurate for small t."""
        b = self.integrated_beta(t)
        return jnp.exp(-0.5 * b), jnp.sqrt(-jnp.expm1(-b))

    def prior_sample(self, key, shape):
        """z ~ N(0, I) of ``shape`` (float32)."""
        return jax.random.normal(key, shape, jnp.float32)

    def prior_log_prob(self, z):
        """log N(z; 0, I) summed over event axes: [B] nats."""
        return _gaussian_log_prob(z, 1.0)


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
    """Sub-VP SDE (Song et al. 2021, eq. 17); prior N(0, I). Same drift as VP, smaller diffusion."""

    def drift_diffusion(self, x, t):
        """(f = -beta(t) x / 2, g = sqrt(beta(t) (1 - exp(-2 B(t)))) [B])."""
        beta = self.beta(t)
        g = jnp.sqrt(beta * -jnp.expm1(-2.0 * self.integrated_beta(t)))
        return -0.5 * _bcast(beta, x) * x, g

    def marginal(self, t):
        """(m = exp(-B/2), s = 1 - exp(-B)) [B]."""
        b = self.integrated_beta(t)
        return jnp.exp(-0.5 * b), -jnp.expm1(-b)


SDES = {"ve": VESDE, "vp": VPSDE, "subvp": SubVPSDE}


__all__ = ["SDES", "SubVPSDE", "VESDE", "VPSDE"]
