"""Continuous-time diffusion SDEs of Song et al. (2021), "Score-Based Generative Modeling through Stochastic
Differential Equations" (ICLR), section 3.4 and appendix B.

Each process is a forward Itô SDE dx = f(x, t) dt + g(t) dW on t in [0, T] with a Gaussian perturbation
kernel x_t | x_0 ~ N(m(t) x_0, s(t)^2 I):

- :class:`VESDE` (variance exploding, the continuum limit of NCSN): sigma(t) = sigma_min (sigma_max /
  sigma_min)^t, f = 0, g = sigma(t) sqrt(2 log(sigma_max / sigma_min)); m = 1 and, by the option
  ``perturbation``, s = sigma(t) (``"sigma"``, the default: Song et al.'s official code, which treats the
  data as already perturbed by sigma_min) or the exact kernel s^2 = sigma(t)^2 - sigma_min^2 of the SDE
  started at the clean data (``"exact"``, the paper's eq. 30).
- :class:`VPSDE` (variance preserving, the continuum limit of DDPM): beta(t) = beta_min + t (beta_max -
  beta_min), f = -beta(t) x / 2, g = sqrt(beta(t)); m = exp(-B(t)/2), s^2 = 1 - exp(-B(t)) with
  B(t) = int_0^t beta = beta_min t + (beta_max - beta_min) t^2 / 2 (eq. 33).
- :class:`SubVPSDE`: the VP drift with g = sqrt(beta(t) (1 - exp(-2 B(t)))); m as VP, s = 1 - exp(-B(t))
  (eq. 34), a variance that stays below the VP one at every t.

Conventions: ``t`` is float [B] (one time per example), ``x`` is [B, ...]; per-example coefficients
broadcast over the event axes. Times are in the SDE's own units, t in [0, T] with T = 1.

Every SDE is a registered pytree dataclass: its numeric fields are leaves, so an SDE passes through
``jax.jit`` as an argument and a stack of them (fields of shape [N]) can be vmapped over. Construction
validates concrete fields; traced ones (inside jit or vmap) are taken as they come.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.shapes import per_example as _bcast


def _times(t):
    return jnp.asarray(t, jnp.float32)


def _gaussian_log_prob(z, std):
    """sum over event axes of log N(z; 0, std^2 I) [B]."""
    flat = z.reshape(z.shape[0], -1).astype(jnp.float32)
    d = flat.shape[1]
    return -0.5 * jnp.sum(jnp.square(flat), axis=-1) / jnp.square(std) - d * (jnp.log(std) + 0.5 * math.log(2 * math.pi))


def _concrete(*values):
    """The values as Python floats, or None when any is traced (or a pytree placeholder): then validation
    waits for the caller's concrete SDE."""
    try:
        return [float(v) for v in values]
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def _pytree(cls):
    """Register a frozen SDE dataclass as a pytree: float fields are leaves, Literal options are static."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    meta = [f for f in fields if typing.get_origin(hints[f]) is Literal]
    return jax.tree_util.register_dataclass(cls, data_fields=[f for f in fields if f not in meta], meta_fields=meta)


Perturbation = Literal["sigma", "exact"]


@_pytree
@dataclasses.dataclass(frozen=True)
class VESDE:
    """Variance-exploding SDE; prior N(0, sigma_max^2 I). ``sigma_max`` should exceed the largest pairwise
    distance between data points (Song & Ermon 2020, technique 1) so the prior matches the marginal at T.
    ``perturbation``: the std of x_t | x_0, ``"sigma"`` (sigma(t), Song et al.'s code) or ``"exact"``
    (sqrt(sigma(t)^2 - sigma_min^2)); see the module docstring."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    perturbation: Perturbation = "sigma"
    T: ClassVar[float] = 1.0  # the time horizon: t in [0, T]

    def __post_init__(self):
        if self.perturbation not in typing.get_args(Perturbation):
            raise GMJaxError(f"VESDE: unknown perturbation '{self.perturbation}'; choose one of "
                             f"{', '.join(typing.get_args(Perturbation))}")
        values = _concrete(self.sigma_min, self.sigma_max)
        if values is not None and not (np.all(np.isfinite(values)) and 0.0 < values[0] < values[1]):
            raise GMJaxError(f"VESDE needs finite 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                             f"sigma_max={self.sigma_max}")

    def _log_ratio(self):
        return jnp.log(jnp.asarray(self.sigma_max, jnp.float32) / self.sigma_min)

    def sigma(self, t):
        """sigma(t) = sigma_min (sigma_max / sigma_min)^t [B]."""
        return self.sigma_min * jnp.exp(_times(t) * self._log_ratio())

    def drift_diffusion(self, x, t):
        """(f [like x] = 0, g [B] = sigma(t) sqrt(2 log(sigma_max / sigma_min)))."""
        g = self.sigma(t) * jnp.sqrt(2.0 * self._log_ratio())
        return jnp.zeros_like(x), g

    def marginal(self, t):
        """(m [B] = 1, s [B]): s = sigma(t) (``perturbation="sigma"``) or sqrt(sigma(t)^2 - sigma_min^2)
        (``"exact"``, through expm1 so it stays accurate at small t)."""
        t = _times(t)
        if self.perturbation == "sigma":
            return jnp.ones_like(t), self.sigma(t)
        return jnp.ones_like(t), self.sigma_min * jnp.sqrt(jnp.expm1(2.0 * t * self._log_ratio()))

    def prior_sample(self, key, shape):
        """z ~ N(0, sigma_max^2 I) of ``shape`` (float32)."""
        return self.sigma_max * jax.random.normal(key, shape, jnp.float32)

    def prior_log_prob(self, z):
        """log N(z; 0, sigma_max^2 I) summed over event axes: [B] nats."""
        return _gaussian_log_prob(z, self.sigma_max)


@_pytree
@dataclasses.dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE; prior N(0, I). The defaults (0.1, 20) are the continuum limit of DDPM's
    linear schedule beta_i = 1e-4 .. 0.02 over 1000 steps (beta(t) ~ N beta_i)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: ClassVar[float] = 1.0  # the time horizon: t in [0, T]

    def __post_init__(self):
        values = _concrete(self.beta_min, self.beta_max)
        if values is not None and not (np.all(np.isfinite(values)) and 0.0 < values[0] <= values[1]):
            raise GMJaxError(f"{type(self).__name__} needs finite 0 < beta_min <= beta_max, got "
                             f"beta_min={self.beta_min}, beta_max={self.beta_max}")

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


@_pytree
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


__all__ = ["SDES", "Perturbation", "SubVPSDE", "VESDE", "VPSDE"]
