"""The monotone rational-quadratic spline of Durkan et al. 2019 ("Neural Spline Flows"), elementwise.

K bins on [-bound, bound] with knots (x_k, y_k) and positive knot derivatives d_k; identity (linear tails)
outside, so the boundary derivatives are 1 and the map is C^1. Within bin k, with w = x_{k+1} - x_k,
h = y_{k+1} - y_k, s = h / w and xi = (x - x_k) / w (Durkan et al. eq. 4):

    y = y_k + h (s xi^2 + d_k xi (1 - xi)) / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))
    dy/dx = s^2 (d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2) / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))^2

The inverse solves a quadratic a xi^2 + b xi + c = 0 for xi and uses the root 2c / (-b - sqrt(b^2 - 4ac)),
which avoids cancellation (Durkan et al. eq. 6-8 and appendix).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(raw + _DERIVATIVE_SHIFT) = 1 at raw = 0, so zero parameters give the identity spline.
_DERIVATIVE_SHIFT = float(np.log(np.expm1(1.0 - MIN_DERIVATIVE)))


def spline_num_params(num_bins: int) -> int:
    """Unconstrained parameters per element: K widths, K heights, K - 1 interior derivatives."""
    return 3 * num_bins - 1


def _knots(raw, bound, min_size):
    """Unnormalised [..., K] -> (knot positions [..., K+1] from -bound to bound, bin sizes [..., K])."""
    k = raw.shape[-1]
    sizes = min_size + (1.0 - min_size * k) * jax.nn.softmax(raw, axis=-1)
    cum = jnp.cumsum(sizes, axis=-1)
    knots = jnp.concatenate([jnp.zeros_like(cum[..., :1]), cum], axis=-1) * (2.0 * bound) - bound
    # Pin the ends exactly (cumsum rounding), then take sizes from the pinned knots so they agree.
    knots = knots.at[..., 0].set(-bound).at[..., -1].set(bound)
    return knots, knots[..., 1:] - knots[..., :-1]


def _gather(a, idx):
    return jnp.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def rational_quadratic_spline(x, widths, heights, derivatives, bound: float, inverse: bool = False):
    """Elementwise monotone RQ spline y = g(x) (or x = g^{-1}(y) with ``inverse``).

    Args:
      x: inputs [...] (any shape).
      widths, heights: unnormalised bin widths/heights [..., K] (softmax-normalised, at least 1e-3 of 2*bound).
      derivatives: unnormalised interior knot derivatives [..., K-1] (softplus, at least 1e-3; zero gives 1).
      bound: the spline acts on [-bound, bound]; identity outside.
      inverse: evaluate g^{-1} instead.

    Returns:
      (y [...], log_det [...]): elementwise log|dy/dx| (forward) or log|dx/dy| (inverse).
    """
    x_knots, w_all = _knots(widths, bound, MIN_BIN_WIDTH)
    y_knots, h_all = _knots(heights, bound, MIN_BIN_HEIGHT)
    inner = MIN_DERIVATIVE + jax.nn.softplus(derivatives + _DERIVATIVE_SHIFT)
    ones = jnp.ones_like(inner[..., :1])
    d_all = jnp.concatenate([ones, inner, ones], axis=-1)  # boundary derivatives 1 match the linear tails

    inside = jnp.abs(x) < bound
    xc = jnp.clip(x, -bound, bound)  # keeps the untaken branch finite (and its gradients NaN-free)
    knots_in = y_knots if inverse else x_knots
    idx = jnp.sum(xc[..., None] >= knots_in[..., 1:-1], axis=-1)  # bin index in [0, K-1]
    x_k, w = _gather(x_knots, idx), _gather(w_all, idx)
    y_k, h = _gather(y_knots, idx), _gather(h_all, idx)
    d_k, d_k1 = _gather(d_all, idx), _gather(d_all, idx + 1)
    s = h / w
    curvature = d_k1 + d_k - 2.0 * s

    if inverse:
        dy = xc - y_k
        a = h * (s - d_k) + dy * curvature
        b = h * d_k - dy * curvature
        c = -s * dy
        disc = jnp.maximum(b * b - 4.0 * a * c, 0.0)
        xi = jnp.clip(2.0 * c / (-b - jnp.sqrt(disc)), 0.0, 1.0)
        out = x_k + xi * w
    else:
        xi = (xc - x_k) / w
        out = y_k + h * (s * xi**2 + d_k * xi * (1 - xi)) / (s + curvature * xi * (1 - xi))
    denom = s + curvature * xi * (1 - xi)
    log_deriv = (2.0 * jnp.log(s) + jnp.log(d_k1 * xi**2 + 2.0 * s * xi * (1 - xi) + d_k * (1 - xi) ** 2)
                 - 2.0 * jnp.log(denom))
    log_det = -log_deriv if inverse else log_deriv
    return jnp.where(inside, out, x), jnp.where(inside, log_det, 0.0)


def split_spline_params(raw, num_bins: int):
    """[..., 3K-1] conditioner output -> (widths [..., K], heights [..., K], derivatives [..., K-1])."""
    return raw[..., :num_bins], raw[..., num_bins:2 * num_bins], raw[..., 2 * num_bins:]
