"""Samplers: jittable loops that take the network as a callable."""

from gm_jax.samplers.ancestral import ancestral_sample
from gm_jax.samplers.flow import reverse_flow_sample
from gm_jax.samplers.interpolation import lerp, slerp

__all__ = ["ancestral_sample", "lerp", "reverse_flow_sample", "slerp"]
