"""Multi-layer perceptron."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["MLP"]


class MLP(nn.Module):
    """Dense layers with an activation between them (none after the last).

    Input [B, F_in] -> output [B, features[-1]]. ``dtype`` is the compute dtype (e.g. bfloat16);
    parameters stay float32.
    """

    features: Sequence[int]
    activation: Callable = nn.silu
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        for i, f in enumerate(self.features):
            x = nn.Dense(f, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(x)
            if i < len(self.features) - 1:
                x = self.activation(x)
        return x
