"""The SNGAN CIFAR ResNets of Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for GANs"
(appendix B.4), at configurable width/depth (images NHWC, model space float32 in [-1, 1]).

Shared contract (call signatures, the "batch_stats" collection, train/eval behaviour, image sizes):
see :mod:`gm_jax.nets._gan_common`.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.nets._gan_common import F32, Norm, apply_sn, avgpool2, check_generator_inputs, check_images, stages, \
    upsample2
from gm_jax.nets.projection import ProjectionCritic, ProjectionHead

__all__ = ["ResNetGenerator", "ResNetDiscriminator"]


class _GBlock(nn.Module):
    """Up ResBlock: h = conv3(relu(cBN(conv3(up(relu(cBN(x))))))); shortcut conv1x1(up(x))."""

    channels: int
    norm: str
    num_classes: Optional[int]
    dtype: Any

    @nn.compact
    def __call__(self, x, labels, train):
        conv = lambda c, k, name: nn.Conv(c, (k, k), padding="SAME", dtype=self.dtype, param_dtype=F32,
                                          name=name)
        h = nn.relu(Norm(self.norm, self.num_classes, self.dtype, name="norm_1")(x, labels, train))
        h = conv(self.channels, 3, "conv_1")(upsample2(h))
        h = nn.relu(Norm(self.norm, self.num_classes, self.dtype, name="norm_2")(h, labels, train))
        h = conv(self.channels, 3, "conv_2")(h)
        return h + conv(self.channels, 1, "shortcut")(upsample2(x))


class _DBlock(nn.Module):
    """Down ResBlock (SNGAN): h = [avgpool](conv3(relu(conv3(relu(x))))); the first ("optimized") block omits
    the leading relu and pools its shortcut before the 1x1 conv. The shortcut is a 1x1 conv when the block
    downsamples or changes width, else the identity. Every conv spectrally normalised if asked."""

    channels: int
    down: bool
    first: bool
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x, train):
        def conv(h, k, name):
            layer = nn.Conv(self.channels, (k, k), padding="SAME", dtype=self.dtype, param_dtype=F32, name=name)
            return apply_sn(layer, self.spectral_norm, train, h, name)

        h = x if self.first else nn.relu(x)
        h = conv(nn.relu(conv(h, 3, "conv_1")), 3, "conv_2")
        if self.down:
            h = avgpool2(h)
        if self.first:
            s = conv(avgpool2(x), 1, "shortcut")
        elif self.down or x.shape[-1] != self.channels:
            s = conv(x, 1, "shortcut")
            s = avgpool2(s) if self.down else s
        else:
            s = x
        return h + s


class ResNetGenerator(nn.Module):
    """SNGAN ResNet generator (Miyato et al. 2018, CIFAR: Table 4 / appendix B.4): z -> [B, H, W, C].

    Dense projection of z to a (H/2^k, W/2^k, width) map; k up ResBlocks of width ``width``
    (BN-ReLU-nearest x2-conv3-BN-ReLU-conv3, shortcut nearest x2 + conv1x1); BN, ReLU, conv3 to C, tanh.
    32x32 gives k=3 (4 -> 8 -> 16 -> 32, the paper's generator with width=256); 8x8 gives k=1.
    With ``num_classes`` the BatchNorms are class-conditional (per-class gain and bias, as in the
    projection-discriminator paper's generator).

    Attributes: out_shape (H, W, C); width; norm "batch" (batch statistics when train=True, needs
    mutable=["batch_stats"]; running averages otherwise) or "none"; num_classes; dtype.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 256
    norm: str = "batch"
    num_classes: Optional[int] = None
    dtype: Any = F32

    @nn.compact
    def __call__(self, z, labels=None, train: bool = False):
        labels, k, bh, bw = check_generator_inputs(self, z, labels, "ResNetGenerator")
        channels = self.out_shape[2]
        h = nn.Dense(bh * bw * self.width, dtype=self.dtype, param_dtype=F32, name="project")(z.astype(self.dtype))
        h = h.reshape(z.shape[0], bh, bw, self.width)
        for i in range(k):
            h = _GBlock(self.width, self.norm, self.num_classes, self.dtype, name=f"block_{i}")(h, labels, train)
        h = nn.relu(Norm(self.norm, None, self.dtype, name="norm_out")(h, None, train))
        h = nn.Conv(channels, (3, 3), padding="SAME", dtype=self.dtype, param_dtype=F32, name="to_image")(h)
        return jnp.tanh(h.astype(F32))


class ResNetDiscriminator(ProjectionCritic):
    """SNGAN ResNet discriminator (Miyato et al. 2018, CIFAR): x [B, H, W, C] -> logits [B] float32.

    ``num_down`` downsampling ResBlocks (the first one "optimized"), then ``num_plain`` ResBlocks at that
    resolution, all of width ``width``; ReLU; global sum pooling gives phi [B, width] (``features``); logits from a
    :class:`ProjectionHead`. Every conv, the dense psi and the class embedding are spectrally normalised
    (``spectral_norm=True``, the default; flax ``nn.SpectralNorm``, one power-iteration step per call, state
    in "batch_stats", updated only when train=True). Submodules "body" and "head". No batch
    normalisation: each example's logit depends on that example alone, in train mode too.

    ``num_down=None`` picks max(1, k - 1) with k as for the generator: 32x32 -> 2 (32 -> 16 -> 8, then two
    plain blocks at 8x8: the paper's CIFAR discriminator with width=128); 8x8 -> 1 (8 -> 4).
    """

    width: int = 128
    num_down: Optional[int] = None
    num_plain: int = 2
    spectral_norm: bool = True
    num_classes: Optional[int] = None
    dtype: Any = F32

    def setup(self):
        self.body = _ResNetFeatures(self.width, self.num_down, self.num_plain, self.spectral_norm, self.dtype)
        self.head = ProjectionHead(self.num_classes, self.spectral_norm, self.dtype)


class _ResNetFeatures(nn.Module):
    width: int
    num_down: Optional[int]
    num_plain: int
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x, train):
        who = "ResNetDiscriminator"
        check_images(x, who)
        k, _, _ = stages(x.shape[1], x.shape[2], who)
        num_down = max(1, k - 1) if self.num_down is None else self.num_down
        if num_down < 1 or num_down > k or self.num_plain < 0:
            raise GMJaxError(f"{who}: num_down must be in [1, {k}] for {x.shape[1]}x{x.shape[2]} images and "
                             f"num_plain >= 0, got num_down={num_down}, num_plain={self.num_plain}")
        h = x.astype(self.dtype)
        for i in range(num_down + self.num_plain):
            h = _DBlock(self.width, down=i < num_down, first=i == 0, spectral_norm=self.spectral_norm,
                        dtype=self.dtype, name=f"block_{i}")(h, train)
        return jnp.sum(nn.relu(h), axis=(1, 2))
