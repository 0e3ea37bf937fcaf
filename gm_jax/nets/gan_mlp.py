"""MLP generator and discriminator for low-dimensional data (the 2-D ``toy2d`` sets), the GAN toy setting
of Goodfellow et al. (2014) and of the mode-collapse studies (Metz et al. 2017, eight Gaussians on a ring).

The generator maps z [B, latent] (and optional labels, one-hot concatenated) through ReLU layers to
[B, out_dim]; the discriminator maps x [B, D] through LeakyReLU(0.2) layers to a logit [B], with a
projection term <embed(y), phi(x)> for labels (Miyato & Koyama 2018).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["MLPDiscriminator", "MLPGenerator"]


def _check_labels(labels, num_classes, batch):
    if (labels is None) != (num_classes is None):
        raise GMJaxError(f"pass labels [B] iff num_classes is set (num_classes={num_classes}, "
                         f"labels={'None' if labels is None else 'given'})")
    if labels is not None and jnp.shape(labels) != (batch,):
        raise GMJaxError(f"labels must have shape [B] = ({batch},), got {jnp.shape(labels)}")


class MLPGenerator(nn.Module):
    """z [B, latent] (labels [B] when ``num_classes``) -> points [B, out_dim] float32 (unbounded)."""

    out_dim: int
    hidden: Sequence[int] = (128, 128, 128)
    num_classes: Optional[int] = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, labels=None, train: bool = False):
        if z.ndim != 2:
            raise GMJaxError(f"the generator expects latents [B, latent], got shape {z.shape}")
        _check_labels(labels, self.num_classes, z.shape[0])
        h = z
        if self.num_classes is not None:
            h = jnp.concatenate([h, jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype)], axis=-1)
        h = h.astype(self.dtype)
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(h))
        out = nn.Dense(self.out_dim, dtype=self.dtype, param_dtype=jnp.float32, name="out")(h)
        return out.astype(jnp.float32)


class MLPDiscriminator(nn.Module):
    """x [B, D] (labels [B] when ``num_classes``) -> logits [B] float32."""

    hidden: Sequence[int] = (128, 128, 128)
    num_classes: Optional[int] = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, labels=None, train: bool = False):
        if x.ndim != 2:
            raise GMJaxError(f"the discriminator expects points [B, D], got shape {x.shape}")
        _check_labels(labels, self.num_classes, x.shape[0])
        h = x.astype(self.dtype)
        for i, width in enumerate(self.hidden):
            h = nn.leaky_relu(nn.Dense(width, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(h), 0.2)
        logit = nn.Dense(1, dtype=self.dtype, param_dtype=jnp.float32, name="out")(h)[:, 0].astype(jnp.float32)
        if self.num_classes is not None:
            embed = nn.Embed(self.num_classes, h.shape[-1], param_dtype=jnp.float32, name="label_proj")(labels)
            logit = logit + jnp.sum(embed * h.astype(jnp.float32), axis=-1)
        return logit
