"""Latent interpolation paths between two codes (used by VAEs and GANs)."""

from __future__ import annotations

import jax.numpy as jnp


def lerp(z0, z1, t):
    """Linear path: z0 [..., Z], z1 [..., Z], t [T] -> [T, ..., Z]."""
    t = jnp.reshape(t, (-1,) + (1,) * jnp.ndim(z0))
    return (1 - t) * z0 + t * z1


def slerp(z0, z1, t, eps: float = 1e-7):
    """Spherical path (Shoemake 1985; White 2016, "Sampling generative networks"):
    sin((1-t) w)/sin(w) z0 + sin(t w)/sin(w) z1 with w the angle between z0 and z1. Unlike the chord of
    :func:`lerp` it keeps codes of equal norm at that norm, i.e. at the typical radius of a Gaussian
    prior. Falls back to :func:`lerp` for (nearly) parallel codes. Shapes as in :func:`lerp`.
    """
    n0 = jnp.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = jnp.linalg.norm(z1, axis=-1, keepdims=True)
    cos = jnp.clip(jnp.sum(z0 * z1, -1, keepdims=True) / jnp.maximum(n0 * n1, eps), -1.0, 1.0)
    omega = jnp.arccos(cos)
    t = jnp.reshape(t, (-1,) + (1,) * jnp.ndim(z0))
    sin = jnp.sin(omega)
    parallel = sin < 1e-4
    safe_sin = jnp.where(parallel, 1.0, sin)
    arc = (jnp.sin((1 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / safe_sin
    return jnp.where(parallel, (1 - t) * z0 + t * z1, arc)
