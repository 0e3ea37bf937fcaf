"""Elementwise invertible transformers, parameterised by a conditioner's raw output [..., P].

Shared by the coupling layers (conditioner sees the masked input) and the masked autoregressive layer
(conditioner is a MADE). Each is the identity at raw = 0 and returns (y, elementwise log|dy/dx|) forward,
or (x, elementwise log|dx/dy|) with ``inverse=True``.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from gm_jax.flows.spline import rational_quadratic_spline, spline_num_params, split_spline_params


@dataclasses.dataclass(frozen=True)
class Affine:
    """y = x exp(log_s) + shift with log_s = max_log_scale * tanh(raw_s / max_log_scale): a soft clamp
    that is ~raw_s for small values and keeps |log_s| < max_log_scale, which stops the exploding scales
    that destabilise affine couplings (RealNVP bounds the scale with a tanh for the same reason).
    raw [..., 2] = (shift, raw_s)."""

    max_log_scale: float = 3.0
    num_params = 2

    def __call__(self, x, raw, inverse=False):
        shift = raw[..., 0]
        log_s = self.max_log_scale * jnp.tanh(raw[..., 1] / self.max_log_scale)
        if inverse:
            return (x - shift) * jnp.exp(-log_s), -log_s
        return x * jnp.exp(log_s) + shift, log_s


@dataclasses.dataclass(frozen=True)
class Additive:
    """y = x + shift (NICE, Dinh et al. 2015): volume preserving. raw [..., 1] = shift."""

    num_params = 1

    def __call__(self, x, raw, inverse=False):
        shift = raw[..., 0]
        return (x - shift if inverse else x + shift), jnp.zeros_like(x)


@dataclasses.dataclass(frozen=True)
class Spline:
    """Rational-quadratic spline with ``num_bins`` bins on [-bound, bound] (Durkan et al. 2019).
    raw [..., 3K-1] = (widths, heights, interior derivatives), all unnormalised."""

    num_bins: int = 8
    bound: float = 4.0

    @property
    def num_params(self):
        return spline_num_params(self.num_bins)

    def __call__(self, x, raw, inverse=False):
        w, h, d = split_spline_params(raw, self.num_bins)
        return rational_quadratic_spline(x, w, h, d, self.bound, inverse=inverse)
