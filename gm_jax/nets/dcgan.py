"""DCGAN generator and discriminator: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning
with Deep Convolutional GANs" (images NHWC, model space float32 in [-1, 1]).

Shared contract (call signatures, the "batch_stats" collection, train/eval behaviour, image sizes):
see :mod:`gm_jax.nets._gan_common`.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.nets._gan_common import F32, Norm, apply_sn, check_generator_inputs, check_images, check_norm, stages
from gm_jax.nets.projection import ProjectionCritic, ProjectionHead

__all__ = ["DCGANGenerator", "DCGANDiscriminator"]


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016): z [B, Z] -> images [B, H, W, C] float32 in [-1, 1].

    Dense projection of z to a (H/2^k, W/2^k, width * 2^(k-1)) map (k from the image size, see the module
    doc), norm + ReLU; then k - 1 stride-2 4x4 transposed convs halving the channels, each with norm + ReLU;
    a last stride-2 4x4 transposed conv to C channels and tanh. For 64x64x3 and width=128 this is the
    paper's 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3.

    Attributes:
      out_shape: (H, W, C).
      width: channels of the last hidden map (the widest is width * 2^(k-1)).
      norm: "batch" (BatchNorm: batch statistics when train=True, which needs mutable=["batch_stats"];
        running averages when train=False) or "none".
      num_classes: None, or the number of classes: a learned label embedding (size Z) is concatenated to z.
      dtype: compute dtype; params float32.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 64
    norm: str = "batch"
    num_classes: Optional[int] = None
    dtype: Any = F32

    @nn.compact
    def __call__(self, z, labels=None, train: bool = False):
        labels, k, bh, bw = check_generator_inputs(self, z, labels, "DCGANGenerator")
        channels = self.out_shape[2]
        h = z.astype(self.dtype)
        if labels is not None:
            emb = nn.Embed(self.num_classes, z.shape[-1], param_dtype=F32, name="label_embed")(labels)
            h = jnp.concatenate([h, emb.astype(self.dtype)], axis=-1)
        c = self.width * 2 ** (k - 1)
        h = nn.Dense(bh * bw * c, dtype=self.dtype, param_dtype=F32, name="project")(h)
        h = h.reshape(z.shape[0], bh, bw, c)
        h = nn.relu(Norm(self.norm, dtype=self.dtype, name="norm_0")(h, None, train))
        for i in range(1, k):
            c //= 2
            h = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype, param_dtype=F32,
                                 name=f"up_{i}")(h)
            h = nn.relu(Norm(self.norm, dtype=self.dtype, name=f"norm_{i}")(h, None, train))
        h = nn.ConvTranspose(channels, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                             param_dtype=F32, name="to_image")(h)
        return jnp.tanh(h.astype(F32))


class _DCGANFeatures(nn.Module):
    width: int
    norm: str
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x, train):
        who = "DCGANDiscriminator"
        check_images(x, who)
        check_norm(self.norm, who)
        k, _, _ = stages(x.shape[1], x.shape[2], who)
        h = x.astype(self.dtype)
        for i in range(k):
            conv = nn.Conv(self.width * 2 ** i, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                           param_dtype=F32, name=f"conv_{i}")
            h = apply_sn(conv, self.spectral_norm, train, h, f"conv_{i}")
            if i > 0:
                h = Norm(self.norm, dtype=self.dtype, name=f"norm_{i}")(h, None, train)
            h = nn.leaky_relu(h, 0.2)
        return h.reshape(h.shape[0], -1)


class DCGANDiscriminator(ProjectionCritic):
    """DCGAN discriminator (Radford et al. 2016): x [B, H, W, C] -> logits [B] float32.

    k stride-2 4x4 convs (k from the image size, as for the generator) with widths width * 2^i,
    LeakyReLU(0.2) after each; phi = the flattened last map (``features``, [B, F]); logits from a
    :class:`ProjectionHead` (a Dense(1), plus the class projection when ``num_classes`` is set).
    Submodules: "body" (the conv stack) and "head".

    Attributes:
      width: channels of the first conv.
      norm: "none" (default: each example's logit depends on it alone, as gradient penalties need) or
        "batch" (BatchNorm after every conv but the first, as in the paper).
      spectral_norm: spectrally normalise every conv/dense (Miyato et al. 2018; state in "batch_stats").
      num_classes: None or the number of classes (projection discriminator).
      dtype: compute dtype; params float32.
    """

    width: int = 64
    norm: str = "none"
    spectral_norm: bool = False
    num_classes: Optional[int] = None
    dtype: Any = F32

    def setup(self):
        self.body = _DCGANFeatures(self.width, self.norm, self.spectral_norm, self.dtype)
        self.head = ProjectionHead(self.num_classes, self.spectral_norm, self.dtype)
