"""Small energy networks E(x) -> [B] for energy-based models (Du & Mordatch 2019).

Both use swish (x * sigmoid(x)) activations: Langevin sampling follows grad_x E, and a smooth activation
gives a continuous gradient field (with ReLU the drift jumps across each unit's kink). They are sized to
compile in seconds on XLA:CPU; neither normalises across the batch, so each example's energy depends on
that example alone (required for per-example Langevin gradients).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["EnergyMLP", "EnergyConvNet"]


class EnergyMLP(nn.Module):
    """Points x [B, D] -> energies [B] float32: swish MLP with widths ``hidden``, then Dense(1)."""

    hidden: Sequence[int] = (128, 128)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        if x.ndim != 2:
            raise GMJaxError(f"EnergyMLP expects points [B, D], got shape {x.shape}; flatten the event axes first")
        if not self.hidden or min(self.hidden) < 1:
            raise GMJaxError(f"EnergyMLP needs non-empty hidden widths >= 1, got {tuple(self.hidden)}")
        h = x.astype(self.dtype)
        for i, w in enumerate(self.hidden):
            h = nn.swish(nn.Dense(w, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(h))
        return nn.Dense(1, dtype=self.dtype, param_dtype=jnp.float32, name="out")(h)[:, 0].astype(jnp.float32)


class EnergyConvNet(nn.Module):
    """Images x [B, H, W, C] -> energies [B] float32.

    A 3x3 convolution to ``channels[0]``, then one stride-2 3x3 convolution per further width (halving H
    and W each time), swish after each; the features are averaged over space and a Dense(1) gives E.
    With the default (32, 64) an 8x8 digit becomes 4x4x64 before pooling.
    """

    channels: Sequence[int] = (32, 64)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        if x.ndim != 4:
            raise GMJaxError(f"EnergyConvNet expects images [B, H, W, C], got shape {x.shape}")
        if not self.channels or min(self.channels) < 1:
            raise GMJaxError(f"EnergyConvNet needs non-empty channel widths >= 1, got {tuple(self.channels)}")
        h = x.astype(self.dtype)
        for i, c in enumerate(self.channels):
            h = nn.Conv(c, (3, 3), strides=(1, 1) if i == 0 else (2, 2), padding="SAME", dtype=self.dtype,
                        param_dtype=jnp.float32, name=f"conv_{i}")(h)
            h = nn.swish(h)
        h = jnp.mean(h, axis=(1, 2))
        return nn.Dense(1, dtype=self.dtype, param_dtype=jnp.float32, name="out")(h)[:, 0].astype(jnp.float32)
