"""Encoders and decoders for VAEs: MLP (any data) and a small strided-conv pair (NHWC images).

Encoders map x [B, ...] (and optional one-hot labels [B, C]) to the diagonal-Gaussian posterior
parameters (mean [B, Z], log_std [B, Z]); decoders map z [B, Z] (and labels) to ``num_params`` values
per data dimension, [B, *data_shape, num_params].
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from gm_jax.nets.mlp import MLP

__all__ = ["MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder"]

_F32 = jnp.float32


def _with_labels(h, labels):
    return h if labels is None else jnp.concatenate([h, labels.astype(h.dtype)], axis=-1)


def _split_gaussian(h):
    mean, log_std = jnp.split(h.astype(_F32), 2, axis=-1)
    # Bounded log-std keeps exp() finite early in training without changing the optimum.
    return mean, jnp.clip(log_std, -10.0, 5.0)


class MLPEncoder(nn.Module):
    latent_dim: int
    hidden: Sequence[int] = (256, 256)
    dtype: Any = _F32
    activation: Any = nn.silu

    @nn.compact
    def __call__(self, x, labels=None):
        h = _with_labels(x.reshape(x.shape[0], -1).astype(self.dtype), labels)
        return _split_gaussian(MLP(tuple(self.hidden) + (2 * self.latent_dim,), activation=self.activation,
                                   dtype=self.dtype)(h))


class MLPDecoder(nn.Module):
    data_shape: Sequence[int]
    num_params: int
    hidden: Sequence[int] = (256, 256)
    dtype: Any = _F32
    activation: Any = nn.silu

    @nn.compact
    def __call__(self, z, labels=None):
        h = _with_labels(z.astype(self.dtype), labels)
        out = MLP(tuple(self.hidden) + (int(np.prod(self.data_shape)) * self.num_params,), activation=self.activation,
                  dtype=self.dtype)(h)
        return out.astype(_F32).reshape((z.shape[0], *self.data_shape, self.num_params))


class ConvEncoder(nn.Module):
    """3x3 convs, two of them with stride 2 (H and W must be divisible by 4), then a dense head."""

    latent_dim: int
    channels: int = 32
    hidden: int = 256
    dtype: Any = _F32

    @nn.compact
    def __call__(self, x, labels=None):
        conv = lambda c, s: nn.Conv(c, (3, 3), strides=s, dtype=self.dtype, param_dtype=_F32)
        h = x.astype(self.dtype)
        h = nn.silu(conv(self.channels, 1)(h))
        h = nn.silu(conv(2 * self.channels, 2)(h))
        h = nn.silu(conv(2 * self.channels, 2)(h))
        h = _with_labels(h.reshape(h.shape[0], -1), labels)
        h = nn.silu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=_F32)(h))
        return _split_gaussian(nn.Dense(2 * self.latent_dim, dtype=self.dtype, param_dtype=_F32)(h))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: dense to an (H/4, W/4) map, two stride-2 transposed convs, 3x3 head."""

    data_shape: Sequence[int]
    num_params: int
    channels: int = 32
    hidden: int = 256
    dtype: Any = _F32

    @nn.compact
    def __call__(self, z, labels=None):
        height, width, ch = self.data_shape
        c = 2 * self.channels
        h = _with_labels(z.astype(self.dtype), labels)
        h = nn.silu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=_F32)(h))
        h = nn.silu(nn.Dense(height // 4 * width // 4 * c, dtype=self.dtype, param_dtype=_F32)(h))
        h = h.reshape(z.shape[0], height // 4, width // 4, c)
        up = lambda c: nn.ConvTranspose(c, (3, 3), strides=(2, 2), dtype=self.dtype, param_dtype=_F32)
        h = nn.silu(up(c)(h))
        h = nn.silu(up(self.channels)(h))
        out = nn.Conv(ch * self.num_params, (3, 3), dtype=self.dtype, param_dtype=_F32)(h)
        return out.astype(_F32).reshape((z.shape[0], height, width, ch, self.num_params))
