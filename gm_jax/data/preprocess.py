"""Maps dataset integers to model space, with the log-Jacobian that keeps likelihoods in discrete units.

DESIGN.md's unit: ``log_prob`` is in nats per example relative to the discrete data. A continuous model
of y = a (x + u) / K + b, with x in {0..K-1} and u ~ U[0, 1)^D (uniform dequantization), bounds
log P(x) >= E_u[log p_y(y)] + D log(a / K) (Theis et al. 2016, "A note on the evaluation of generative
models"), so :func:`dequantize` returns that log-Jacobian term with y.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["RANGES", "dequantize", "quantize", "data_to_model_space", "model_to_data_space", "to_centres",
           "from_centres", "binarize"]

RANGES = {"[-1,1]": (-1.0, 1.0), "[0,1]": (0.0, 1.0)}


def _range(name):
    try:
        return RANGES[name]
    except KeyError:
        from gm_jax.errors import GMJaxError

        raise GMJaxError(f"unknown data range '{name}'; choose one of {', '.join(RANGES)}") from None


def dequantize(x, num_levels: int, key, data_range: str = "[-1,1]", noise: bool = True):
    """Uniform dequantization and affine scaling of integer data.

    Args:
      x: integers in [0, num_levels), any shape [B, ...].
      num_levels: K.
      key: PRNG key for the uniform noise (unused when ``noise`` is False, which maps to bin centres).
      data_range: ``"[-1,1]"`` or ``"[0,1]"``: the interval [lo, hi] that [0, K) maps onto.
      noise: add u ~ U[0, 1) (training and likelihood) or 0.5 (bin centres, e.g. for reconstructions).

    Returns:
      (y [B, ...] float32, log_det [B]): y = lo + (hi - lo) (x + u) / K, and log_det = D log((hi - lo) / K),
      the term to add to log p_y(y) to get (a bound on) log P(x) in discrete units.
    """
    lo, hi = _range(data_range)
    x = jnp.asarray(x, jnp.float32)
    u = jax.random.uniform(key, x.shape) if noise else 0.5
    y = lo + (hi - lo) * (x + u) / num_levels
    num_dims = int(np.prod(x.shape[1:]))
    log_det = jnp.full(x.shape[:1], num_dims * np.log((hi - lo) / num_levels), jnp.float32)
    return y, log_det


def quantize(y, num_levels: int, data_range: str = "[-1,1]"):
    """Inverse of :func:`dequantize`: model-space values back to integers in [0, num_levels) (uint8 when K <= 256)."""
    lo, hi = _range(data_range)
    x = jnp.floor((y - lo) / (hi - lo) * num_levels)
    dtype = jnp.uint8 if num_levels <= 256 else jnp.int32
    return jnp.clip(x, 0, num_levels - 1).astype(dtype)


def data_to_model_space(spec, x, key, data_range: str = "[-1,1]"):
    """A batch of ``spec``'s data -> (model-space float32 [B, ...], log-Jacobian [B] to discrete units):
    points pass through (log-Jacobian 0); integer images are dequantized into ``data_range``."""
    if spec.kind == "points":
        return jnp.asarray(x, jnp.float32), jnp.zeros(jnp.shape(x)[:1], jnp.float32)
    return dequantize(x, spec.num_levels, key, data_range)


def model_to_data_space(spec, y, data_range: str = "[-1,1]"):
    """Inverse of :func:`data_to_model_space`: points pass through, images are quantized."""
    if spec.kind == "points":
        return y
    return quantize(y, spec.num_levels, data_range)


def to_centres(x, num_levels: int):
    """Integers to the bin centres in [-1, 1] used by discretized likelihoods: 2 x / (K - 1) - 1."""
    return 2.0 * jnp.asarray(x, jnp.float32) / (num_levels - 1) - 1.0


def from_centres(y, num_levels: int):
    """Inverse of :func:`to_centres`, rounding to the nearest level."""
    x = jnp.round((y + 1.0) * (num_levels - 1) / 2.0)
    dtype = jnp.uint8 if num_levels <= 256 else jnp.int32
    return jnp.clip(x, 0, num_levels - 1).astype(dtype)


def binarize(x, num_levels: int, key=None):
    """Binarization to {0, 1} float32: dynamic (Bernoulli with p = x / (K-1)) with a key, else threshold at half."""
    p = jnp.asarray(x, jnp.float32) / (num_levels - 1)
    if key is None:
        return (p >= 0.5).astype(jnp.float32)
    return jax.random.bernoulli(key, p).astype(jnp.float32)
