"""Conditioner networks of coupling layers: x_masked [B, *event] -> parameters [B, *event, num_params].

Both zero-initialise their output layer, so a fresh coupling is the identity map (every transformer in
gm_jax.flows is the identity at zero parameters).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.nets.mlp import MLP


class MLPConditioner(nn.Module):
    """Vectors [B, D] -> [B, D, num_params]: an MLP with hidden widths ``hidden`` and a zero output layer."""

    num_params: int
    hidden: tuple[int, ...] = (64, 64)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        h = x.astype(self.dtype)
        if self.hidden:
            h = nn.silu(MLP(tuple(self.hidden), activation=nn.silu, dtype=self.dtype, name="mlp")(h))
        out = nn.Dense(d * self.num_params, kernel_init=nn.initializers.zeros, dtype=self.dtype,
                       param_dtype=jnp.float32, name="out")(h)
        return out.astype(jnp.float32).reshape(x.shape + (self.num_params,))


class ConvConditioner(nn.Module):
    """Images [B, H, W, C] -> [B, H, W, C, num_params]: a small ResNet (RealNVP / Glow style).

    3x3 conv to ``channels``, ``num_blocks`` residual blocks (3x3 conv, SiLU, 1x1 conv), SiLU and a
    zero-initialised 3x3 conv to C * num_params.
    """

    num_params: int
    channels: int = 64
    num_blocks: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, name, **kw: nn.Conv(f, (k, k), padding="SAME", dtype=self.dtype,
                                                param_dtype=jnp.float32, name=name, **kw)
        h = conv(self.channels, 3, "in")(x.astype(self.dtype))
        for i in range(self.num_blocks):
            r = conv(self.channels, 3, f"block_{i}_a")(nn.silu(h))
            h = h + conv(self.channels, 1, f"block_{i}_b")(nn.silu(r))
        out = conv(x.shape[-1] * self.num_params, 3, "out", kernel_init=nn.initializers.zeros)(nn.silu(h))
        return out.astype(jnp.float32).reshape(x.shape + (self.num_params,))
