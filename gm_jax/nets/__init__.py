"""Flax (linen) networks. They know nothing of losses; models bind them to the maths."""

from gm_jax.nets.mlp import MLP
from gm_jax.nets.vae_nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

__all__ = ["MLP", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder"]
