"""The projection discriminator output of Miyato & Koyama 2018, "cGANs with Projection Discriminator":
logit = psi(phi(x)) + <embed(y), phi(x)>, and the base of the discriminators built from a feature body and
that head (:class:`~gm_jax.nets.dcgan.DCGANDiscriminator`, :class:`~gm_jax.nets.resnet_gan.ResNetDiscriminator`).

Shared contract (call signatures, the "batch_stats" collection, train/eval behaviour, image sizes):
see :mod:`gm_jax.nets._gan_common`.
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.nets._gan_common import F32, check_labels, apply_sn

__all__ = ["ProjectionHead", "ProjectionCritic"]


class ProjectionHead(nn.Module):
    """Discriminator output from features phi [B, F] (Miyato & Koyama 2018):

        logit = psi(phi) + <embed(y), phi>,   psi = Dense(1),  embed = Embed(num_classes, F).

    With ``num_classes=None`` only psi. With ``spectral_norm`` both psi's kernel and the embedding matrix
    are spectrally normalised (as in Miyato & Koyama's code). Returns logits [B] float32. Parameters:
    "psi" (kernel [F, 1], bias [1]) and "embed" (embedding [num_classes, F]).
    """

    num_classes: Optional[int] = None
    spectral_norm: bool = False
    dtype: Any = F32

    @nn.compact
    def __call__(self, phi, labels=None, train: bool = False):
        if phi.ndim != 2:
            raise GMJaxError(f"ProjectionHead expects features [B, F], got shape {phi.shape}")
        labels = check_labels(labels, self.num_classes, phi.shape[0], "ProjectionHead")
        phi = phi.astype(self.dtype)
        out = apply_sn(nn.Dense(1, dtype=self.dtype, param_dtype=F32, name="psi"), self.spectral_norm, train, phi,
                       "psi")[:, 0].astype(F32)
        if labels is not None:
            emb = apply_sn(nn.Embed(self.num_classes, phi.shape[-1], param_dtype=F32, name="embed"),
                           self.spectral_norm, train, labels, "embed")
            out = out + jnp.sum(emb.astype(F32) * phi.astype(F32), axis=-1)
        return out


class ProjectionCritic(nn.Module):
    """A feature network ``body`` followed by a :class:`ProjectionHead` ``head`` (both made in setup)."""

    def features(self, x, train: bool = False):
        """phi(x) [B, F] (compute dtype): the body's output."""
        return self.body(x, train)

    def __call__(self, x, labels=None, train: bool = False):
        return self.head(self.body(x, train), labels, train)
