"""The DDPM U-Net (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", appendix B).

A PixelCNN++-style U-Net (Salimans et al. 2017) with Wide-ResNet blocks, GroupNorm, self-attention at
chosen resolutions and a sinusoidal time embedding added inside every residual block:

- time: ``timestep_embedding(t, channels)`` -> Dense(4 ch) -> swish -> Dense(4 ch) (= ``temb``); with
  ``num_classes`` a learned class embedding (``num_classes + 1`` rows; the last is the "null" label of
  classifier-free guidance, Ho & Salimans 2021) is added to ``temb``.
- encoder: a 3x3 conv to ``channels``; then per level ``num_res_blocks`` ResBlocks of width
  ``channels * channel_mult[level]`` (each followed by attention at the listed resolutions) and, except at
  the last level, a stride-2 3x3 conv. Every output is kept for a skip connection.
- middle: ResBlock, attention, ResBlock.
- decoder: per level (reversed) ``num_res_blocks + 1`` ResBlocks, each on the concatenation with one
  popped skip (+ attention at the listed resolutions), then (except at the top) nearest-neighbour x2 and a
  3x3 conv.
- out: GroupNorm, swish, zero-initialised 3x3 conv.

ResBlock(x, temb): h = conv3x3(swish(GN(x))); h += Dense(swish(temb)); h = conv3x3(dropout(swish(GN(h))));
return h + (x, or a 1x1 projection of x when the width changes). As in Ho et al.'s code, the last layer of
every residual branch (the second conv of a ResBlock, the output projection of attention) is
zero-initialised, so each block starts as the identity; other kernels are Glorot-uniform (Ho et al.'s
``variance_scaling(1, "fan_avg", "uniform")``), biases zero.

Tiny configs: ``UNet(channels=32, channel_mult=(1, 2), attention_resolutions=(4,), dropout=0.0)`` suits
8x8 digits (1.0M parameters); jit ``init`` (eager Flax init dispatches every op separately).

With the CIFAR-10 configuration (32x32x3 and the defaults) the network has 35.7M parameters, as reported.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["timestep_embedding", "UNet"]


def timestep_embedding(t, dim: int, max_period: float = 10000.0):
    """Sinusoidal embedding of (possibly fractional) times, as for Transformer positions (Vaswani et al.
    2017) and the DDPM U-Net (Ho et al. 2020).

    Frequencies are geometric from 1 down to 1/max_period: w_k = max_period^(-k / (half - 1)),
    k = 0..half-1, half = dim // 2 (the spacing of Ho et al.'s code). Output is
    [sin(t w_0), ..., sin(t w_{half-1}), cos(t w_0), ..., cos(t w_{half-1})], zero-padded to ``dim``
    when ``dim`` is odd.

    Args:
      t: [B] int or float times, embedded as given (scale them first if they live in [0, 1]).
      dim: embedding size >= 1.
    Returns: [B, dim] float32.
    """
    if dim < 1:
        raise GMJaxError(f"timestep embedding dim must be >= 1, got {dim}")
    t = jnp.asarray(t)
    if t.ndim != 1:
        raise GMJaxError(f"t must have shape [B], got {t.shape}; pass one time per example")
    half = dim // 2
    if half == 0:
        return jnp.zeros((t.shape[0], dim), jnp.float32)
    freqs = jnp.exp(-math.log(max_period) / max(half - 1, 1) * jnp.arange(half, dtype=jnp.float32))
    args = t.astype(jnp.float32)[:, None] * freqs[None, :]
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


def _groups(channels: int, num_groups: int) -> int:
    """The largest divisor of ``channels`` that is <= ``num_groups`` and leaves >= 4 channels per group
    (Ho et al.'s narrowest level has 128 / 32 = 4), or 1.

    Why the floor: with one channel per group GroupNorm subtracts each channel's spatial mean, which erases
    the per-channel time-embedding bias a ResBlock adds just before its second norm: the net would ignore t.
    """
    g = max(1, min(num_groups, channels // 4))
    while channels % g:
        g -= 1
    return g


class _Norm(nn.Module):
    num_groups: int
    dtype: Any

    @nn.compact
    def __call__(self, x):
        # Flax computes GroupNorm statistics in float32 even for bf16 inputs; epsilon as in Ho et al.'s code.
        return nn.GroupNorm(num_groups=_groups(x.shape[-1], self.num_groups), epsilon=1e-6, dtype=self.dtype,
                            param_dtype=jnp.float32, name="gn")(x)


# Ho et al.'s ``variance_scaling(1, "fan_avg", "uniform")`` (Glorot-uniform) for every non-zero kernel.
_GLOROT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")


def _conv(features, dtype, name, strides=1, zero=False):
    return nn.Conv(features, (3, 3), strides=(strides, strides), padding="SAME", dtype=dtype,
                   param_dtype=jnp.float32, kernel_init=nn.initializers.zeros_init() if zero else _GLOROT, name=name)


def _dense(features, dtype, name, zero=False):
    return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32,
                    kernel_init=nn.initializers.zeros_init() if zero else _GLOROT, name=name)


class ResBlock(nn.Module):
    """Wide-ResNet block with the time embedding added after the first conv.

    x [B, H, W, C_in], temb [B, E] -> [B, H, W, features].
    """

    features: int
    dropout: float
    num_groups: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, temb, train: bool = False):
        """With ``train`` dropout draws from the 'dropout' rng."""
        dt, f = self.dtype, self.features
        h = nn.swish(_Norm(self.num_groups, dt, name="norm1")(x))
        h = _conv(f, dt, "conv1")(h)
        h = h + _dense(f, dt, "temb_proj")(nn.swish(temb))[:, None, None, :]
        h = nn.swish(_Norm(self.num_groups, dt, name="norm2")(h))
        h = nn.Dropout(self.dropout, deterministic=not train or self.dropout == 0)(h)
        h = _conv(f, dt, "conv2", zero=True)(h)
        if x.shape[-1] != f:
            x = _dense(f, dt, "skip")(x)  # 1x1 conv ("NIN" in Ho et al.'s code)
        return x + h


class AttnBlock(nn.Module):
    """Self-attention over all H*W positions with a residual connection: [B, H, W, C] -> same.

    ``num_heads`` = 1 is Ho et al.'s single-head block. Logits and softmax are computed in float32.
    """

    num_groups: int
    num_heads: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, hgt, wid, c = x.shape
        if c % self.num_heads:
            raise GMJaxError(f"attention width {c} is not divisible by num_heads={self.num_heads}; "
                             "choose num_heads dividing every attended width")
        h = _Norm(self.num_groups, self.dtype, name="norm")(x)
        qkv = _dense(3 * c, self.dtype, "qkv")(h)
        qkv = qkv.reshape(b, hgt * wid, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, N, heads, d]
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
        weights = jax.nn.softmax(logits * (c // self.num_heads) ** -0.5, axis=-1).astype(self.dtype)
        h = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, hgt, wid, c)
        return x + _dense(c, self.dtype, "proj_out", zero=True)(h)


class UNet(nn.Module):
    """The DDPM U-Net: noisy images and times -> [B, H, W, out_channels] (float32), e.g. the noise ε.

    ``__call__(x [B, H, W, C], t [B], labels=None [B] int, train=False)``. ``t`` is an int step index or a
    float, multiplied by ``time_scale`` and embedded as given (for t in [0, 1] use e.g. time_scale=999, as
    Song et al. 2021 do). ``labels`` in [0, num_classes] (``num_classes`` is the null label) are required
    iff ``num_classes`` is set. With ``train=True`` dropout draws from the ``'dropout'`` rng.
    H and W must be divisible by 2^(len(channel_mult) - 1).

    Attributes:
      channels: base width ``ch``; level l has width ``ch * channel_mult[l]``; the time embedding is 4 ch.
      channel_mult: width multipliers per resolution level (one stride-2 downsample between levels).
      num_res_blocks: ResBlocks per level in the encoder (the decoder has one more).
      attention_resolutions: spatial sizes (H at that level) where self-attention follows each ResBlock.
      dropout: rate inside the ResBlocks (Ho et al.: 0.1 on CIFAR-10).
      num_classes: None, or the class count for a learned class embedding (table of num_classes + 1 rows).
      out_channels: output channels (default: the input's; 2x for a learned variance).
      num_groups: GroupNorm groups (clamped to a divisor of each width leaving >= 4 channels per group).
      num_heads: attention heads (Ho et al.: 1).
      time_scale: t is multiplied by this before the sinusoidal embedding.
      dtype: compute dtype (e.g. bfloat16); parameters stay float32 and the output is float32.

    Configurations: Ho et al.'s CIFAR-10 net is the default (35.7M parameters); ``UNet(channels=32,
    channel_mult=(1, 2), attention_resolutions=(4,), dropout=0.0)`` suits 8x8 digits (1.0M parameters).
    """

    channels: int = 128
    channel_mult: Sequence[int] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attention_resolutions: Sequence[int] = (16,)
    dropout: float = 0.1
    num_classes: Optional[int] = None
    out_channels: Optional[int] = None
    num_groups: int = 32
    num_heads: int = 1
    time_scale: float = 1.0
    dtype: Any = jnp.float32

    def _check(self, x, t, labels):
        if self.channels < 1 or self.num_res_blocks < 1 or not self.channel_mult or min(self.channel_mult) < 1:
            raise GMJaxError("UNet needs channels >= 1, num_res_blocks >= 1 and a non-empty channel_mult of "
                             f"positive ints; got channels={self.channels}, num_res_blocks={self.num_res_blocks}, "
                             f"channel_mult={tuple(self.channel_mult)}")
        if not 0.0 <= self.dropout < 1.0:
            raise GMJaxError(f"dropout must be in [0, 1), got {self.dropout}")
        if x.ndim != 4:
            raise GMJaxError(f"UNet expects images [B, H, W, C], got shape {x.shape}")
        factor = 2 ** (len(self.channel_mult) - 1)
        if x.shape[1] % factor or x.shape[2] % factor:
            raise GMJaxError(f"image size {x.shape[1]}x{x.shape[2]} is not divisible by {factor} "
                             f"(2^(len(channel_mult)-1)); use fewer levels or pad the images")
        if jnp.shape(t) != (x.shape[0],):
            raise GMJaxError(f"t must have shape [B] = ({x.shape[0]},), got {jnp.shape(t)}")
        if self.num_classes is not None:
            if labels is None:
                raise GMJaxError(f"this UNet is class-conditional (num_classes={self.num_classes}); pass labels "
                                 f"[B] in [0, {self.num_classes}] ({self.num_classes} = null label)")
            if jnp.shape(labels) != (x.shape[0],):
                raise GMJaxError(f"labels must have shape [B] = ({x.shape[0]},), got {jnp.shape(labels)}")
        elif labels is not None:
            raise GMJaxError("labels were passed to an unconditional UNet; set num_classes or drop labels")

    @nn.compact
    def __call__(self, x, t, labels=None, train: bool = False):
        self._check(x, t, labels)
        ch, dt = self.channels, self.dtype
        out_ch = self.out_channels or x.shape[-1]
        attn = set(self.attention_resolutions)
        block = lambda f, name: ResBlock(f, self.dropout, self.num_groups, dt, name=name)
        attend = lambda name: AttnBlock(self.num_groups, self.num_heads, dt, name=name)

        temb = timestep_embedding(jnp.asarray(t, jnp.float32) * self.time_scale, ch)
        temb = _dense(4 * ch, dt, "temb_dense0")(temb.astype(dt))
        temb = _dense(4 * ch, dt, "temb_dense1")(nn.swish(temb))
        if self.num_classes is not None:  # N(0, 1) rows, as torch.nn.Embedding (guided-diffusion's)
            temb = temb + nn.Embed(self.num_classes + 1, 4 * ch, dtype=dt, param_dtype=jnp.float32,
                                   embedding_init=nn.initializers.normal(1.0), name="label_emb")(labels)

        h = _conv(ch, dt, "conv_in")(x.astype(dt))
        skips = [h]
        levels = len(self.channel_mult)
        for level, mult in enumerate(self.channel_mult):
            for i in range(self.num_res_blocks):
                h = block(ch * mult, f"down_{level}_block_{i}")(h, temb, train)
                if h.shape[1] in attn:
                    h = attend(f"down_{level}_attn_{i}")(h)
                skips.append(h)
            if level != levels - 1:
                h = _conv(h.shape[-1], dt, f"down_{level}_downsample", strides=2)(h)
                skips.append(h)

        h = block(h.shape[-1], "mid_block_0")(h, temb, train)
        h = attend("mid_attn")(h)
        h = block(h.shape[-1], "mid_block_1")(h, temb, train)

        for level in reversed(range(levels)):
            for i in range(self.num_res_blocks + 1):
                h = block(ch * self.channel_mult[level], f"up_{level}_block_{i}")(
                    jnp.concatenate([h, skips.pop()], axis=-1), temb, train)
                if h.shape[1] in attn:
                    h = attend(f"up_{level}_attn_{i}")(h)
            if level != 0:
                b, hh, ww, c = h.shape
                h = jnp.broadcast_to(h[:, :, None, :, None, :], (b, hh, 2, ww, 2, c)).reshape(b, 2 * hh, 2 * ww, c)
                h = _conv(c, dt, f"up_{level}_upsample")(h)
        assert not skips

        h = nn.swish(_Norm(self.num_groups, dt, name="norm_out")(h))
        return _conv(out_ch, dt, "conv_out", zero=True)(h).astype(jnp.float32)
