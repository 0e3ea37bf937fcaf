"""NCSN's score network: the conditional RefineNet with dilated convolutions of Song & Ermon (2019,
"Generative Modeling by Estimating Gradients of the Data Distribution", appendix B.1), conditioned on the
noise level's index through conditional instance normalisation++.

Layout (the official ``CondRefineNetDilated``, ermongroup/ncsn ``models/cond_refinenet_dilated.py``): a 3x3
conv to F channels; four stages of two pre-activation residual blocks (ELU), [F, 2F (halving the
resolution by conv + 2x2 mean pool), 2F (dilation 2), 2F (dilation 4)], the last two keeping the
resolution; four RefineNet blocks (Lin et al. 2017) fusing the stages from the deepest up (residual conv
units, multi-resolution fusion by bilinear upsampling with aligned corners, chained residual pooling with
5x5 average pools); then CIN++, ELU and a 3x3 conv to C channels. Every norm is
:class:`CondInstanceNormPlus`: instance norm plus the normalised channel means times alpha, scaled by gamma
and shifted by beta, (gamma, alpha, beta) looked up by the level index (NCSN's appendix A).

``RefineNet(channels=F, num_classes=L)(x [B, H, W, C], y [B] int) -> [B, H, W, C]`` float32, the score
at level y (not divided by sigma: NCSN v1's parameterisation). H and W must be even. Parameter counts
equal the official network's (tests/nets/test_refinenet.py counts them from its source).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["RefineNet", "CondInstanceNormPlus", "resize_align_corners"]

F32 = jnp.float32


def _embedding_init(key, shape, dtype=F32):
    """[L, 3F]: gamma and alpha ~ N(1, 0.02), beta = 0 (the official initialisation)."""
    f = shape[1] // 3
    scale = 1.0 + 0.02 * jax.random.normal(key, (shape[0], 2 * f), dtype)
    return jnp.concatenate([scale, jnp.zeros((shape[0], f), dtype)], axis=1)


class CondInstanceNormPlus(nn.Module):
    """Conditional instance norm++: x [B, H, W, F], y [B] -> gamma_y (IN(x) + alpha_y mu~) + beta_y, where
    mu~ [B, F] are the channel means standardised across channels (unbiased variance, eps 1e-5)."""

    num_classes: int

    @nn.compact
    def __call__(self, x, y):
        f = x.shape[-1]
        x32 = x.astype(F32)
        means = x32.mean(axis=(1, 2))  # [B, F]
        m, v = means.mean(-1, keepdims=True), means.var(-1, keepdims=True, ddof=1)
        means = (means - m) / jnp.sqrt(v + 1e-5)
        h = (x32 - x32.mean(axis=(1, 2), keepdims=True)) / jnp.sqrt(x32.var(axis=(1, 2), keepdims=True) + 1e-5)
        gamma, alpha, beta = jnp.split(nn.Embed(self.num_classes, 3 * f, embedding_init=_embedding_init,
                                                name="embed")(y), 3, axis=-1)
        h = h + means[:, None, None] * alpha[:, None, None]
        return (gamma[:, None, None] * h + beta[:, None, None]).astype(x.dtype)


def resize_align_corners(x, shape):
    """Bilinear resize of x [B, h, w, F] to [B, H, W, F] with aligned corners (PyTorch's
    ``interpolate(..., mode="bilinear", align_corners=True)``: output pixel i samples i (h - 1) / (H - 1))."""
    for axis, (n_in, n_out) in enumerate(zip(x.shape[1:3], shape), start=1):
        if n_in == n_out:
            continue
        pos = jnp.arange(n_out, dtype=F32) * ((n_in - 1) / max(n_out - 1, 1))
        lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, n_in - 1)
        hi = jnp.clip(lo + 1, 0, n_in - 1)
        frac = (pos - lo).reshape((-1,) + (1,) * (x.ndim - axis - 1))
        x = jnp.take(x, lo, axis=axis) * (1 - frac) + jnp.take(x, hi, axis=axis) * frac
    return x


def _conv(features, name, *, dilation=1, bias=True, kernel=3, dtype=None):
    return nn.Conv(features, (kernel, kernel), padding="SAME", kernel_dilation=dilation, use_bias=bias,
                   dtype=dtype, param_dtype=F32, name=name)


class _ResidualBlock(nn.Module):
    """The official ConditionalResidualBlock: norm, ELU, conv, norm, ELU, conv, plus the input (or a conv
    shortcut when the block changes width or ``down``-samples). ``down`` without dilation: the second conv
    and the shortcut (1x1) are followed by a 2x2 mean pool; with dilation the resolution stays."""

    features: int
    num_classes: int
    down: bool = False
    dilation: int | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, x, y):
        cin, d = x.shape[-1], self.dilation or 1
        pool = lambda h: nn.avg_pool(h, (2, 2), strides=(2, 2))
        h = nn.elu(CondInstanceNormPlus(self.num_classes, name="norm_1")(x, y))
        mid = cin if self.down else self.features
        h = _conv(mid, "conv_1", dilation=d, dtype=self.dtype)(h)
        h = nn.elu(CondInstanceNormPlus(self.num_classes, name="norm_2")(h, y))
        h = _conv(self.features, "conv_2", dilation=d, dtype=self.dtype)(h)
        if self.down and self.dilation is None:
            h = pool(h)
        if not self.down and self.features == cin:
            return x + h
        if self.dilation is None:  # a 1x1 conv (ConvMeanPool when down-sampling)
            shortcut = _conv(self.features, "shortcut", kernel=1, dtype=self.dtype)(x)
            return (pool(shortcut) if self.down else shortcut) + h
        return _conv(self.features, "shortcut", dilation=d, dtype=self.dtype)(x) + h


class _RCU(nn.Module):
    """Residual conv units: ``blocks`` x (x + [norm, ELU, conv3x3 without bias] x 2)."""

    blocks: int
    num_classes: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x, y):
        f = x.shape[-1]
        for i in range(self.blocks):
            h = x
            for j in range(2):
                h = nn.elu(CondInstanceNormPlus(self.num_classes, name=f"norm_{i}_{j}")(h, y))
                h = _conv(f, f"conv_{i}_{j}", bias=False, dtype=self.dtype)(h)
            x = x + h
        return x


class _RefineBlock(nn.Module):
    """A RefineNet block: an RCU (2 units) per input, multi-resolution fusion (norm, conv3x3 to ``features``,
    upsample to the first input's size, sum) when there are two inputs, chained residual pooling (ELU, then
    2 x [norm, 5x5 mean pool, conv3x3 without bias] added on), and an output RCU (3 units if ``end``)."""

    features: int
    num_classes: int
    end: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, xs, y):
        hs = [_RCU(2, self.num_classes, self.dtype, name=f"adapt_{i}")(x, y) for i, x in enumerate(xs)]
        if len(hs) > 1:
            size = hs[0].shape[1:3]
            h = sum(resize_align_corners(_conv(self.features, f"fuse_conv_{i}", dtype=self.dtype)(
                CondInstanceNormPlus(self.num_classes, name=f"fuse_norm_{i}")(hi, y)), size)
                for i, hi in enumerate(hs))
        else:
            h = hs[0]
        h = nn.elu(h)
        path = h
        for i in range(2):
            path = CondInstanceNormPlus(self.num_classes, name=f"pool_norm_{i}")(path, y)
            path = nn.avg_pool(path, (5, 5), strides=(1, 1), padding=((2, 2), (2, 2)), count_include_pad=True)
            path = _conv(self.features, f"pool_conv_{i}", bias=False, dtype=self.dtype)(path)
            h = h + path
        return _RCU(3 if self.end else 1, self.num_classes, self.dtype, name="output")(h, y)


class RefineNet(nn.Module):
    """The conditional dilated RefineNet of NCSN (see the module doc).

    Attributes:
      channels: F (ngf; 128 for CIFAR-10 in the official config).
      num_classes: L, the number of noise levels (the conditioning index is in [0, L)).
      dtype: compute dtype (parameters float32; the norms compute in float32; output float32).
    """

    channels: int = 128
    num_classes: int = 10
    dtype: Any = None

    @nn.compact
    def __call__(self, x, y):
        if x.ndim != 4 or x.shape[1] % 2 or x.shape[2] % 2:
            raise GMJaxError(f"RefineNet needs images [B, H, W, C] with even H and W, got shape {x.shape}")
        f, c, n, dt = self.channels, x.shape[-1], self.num_classes, self.dtype
        block = lambda features, name, **kw: _ResidualBlock(features, n, dtype=dt, name=name, **kw)
        h = _conv(f, "begin", dtype=dt)(x.astype(dt or F32))
        layer1 = block(f, "res1_1")(block(f, "res1_0")(h, y), y)
        layer2 = block(2 * f, "res2_1")(block(2 * f, "res2_0", down=True)(layer1, y), y)
        layer3 = block(2 * f, "res3_1", dilation=2)(block(2 * f, "res3_0", down=True, dilation=2)(layer2, y), y)
        layer4 = block(2 * f, "res4_1", dilation=4)(block(2 * f, "res4_0", down=True, dilation=4)(layer3, y), y)
        ref = _RefineBlock(2 * f, n, dtype=dt, name="refine1")([layer4], y)
        ref = _RefineBlock(2 * f, n, dtype=dt, name="refine2")([layer3, ref], y)
        ref = _RefineBlock(f, n, dtype=dt, name="refine3")([layer2, ref], y)
        ref = _RefineBlock(f, n, end=True, dtype=dt, name="refine4")([layer1, ref], y)
        h = nn.elu(CondInstanceNormPlus(n, name="norm_out")(ref, y))
        return _conv(c, "end", dtype=dt)(h).astype(F32)
