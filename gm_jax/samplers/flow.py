"""Sampling a normalizing flow by running it backwards (e.g. Dinh et al. 2017; Kingma & Dhariwal 2018)."""

from __future__ import annotations

import jax


def reverse_flow_sample(inverse_fn, key, shape, temperature: float = 1.0):
    """z ~ N(0, temperature^2 I) of ``shape`` [N, ...] mapped through ``inverse_fn(z) -> x`` (the sampling
    direction). ``temperature`` < 1 trades diversity for fidelity (Glow section 5). Returns x [N, ...]."""
    z = temperature * jax.random.normal(key, shape)
    return inverse_fn(z)
