"""The noise levels of noise-conditional score networks (Song & Ermon 2019, "Generative Modeling by
Estimating Gradients of the Data Distribution", sec. 4.2): a geometric sequence sigma_1 > ... > sigma_L,
so that consecutive levels keep a constant ratio and their Gaussians overlap at every scale."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError

__all__ = ["geometric_noise_levels"]


def geometric_noise_levels(sigma_max: float, sigma_min: float, num_levels: int):
    """The levels [L] float32, decreasing geometrically from ``sigma_max`` to ``sigma_min`` (computed in
    float64). Song & Ermon use sigma_max = 1, sigma_min = 0.01, L = 10 on images in [0, 1]."""
    if int(num_levels) != num_levels or num_levels < 2:
        raise GMJaxError(f"geometric_noise_levels: num_levels must be an integer >= 2, got {num_levels}")
    if not (np.isfinite(sigma_min) and np.isfinite(sigma_max) and 0.0 < sigma_min < sigma_max):
        raise GMJaxError(f"geometric_noise_levels: need finite 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, "
                         f"sigma_max={sigma_max}")
    return jnp.asarray(np.geomspace(float(sigma_max), float(sigma_min), int(num_levels)), jnp.float32)
