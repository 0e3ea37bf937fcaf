"""Samplers: jittable loops that take the network as a callable."""

from gm_jax.samplers.interpolation import lerp, slerp

__all__ = ["lerp", "slerp"]
