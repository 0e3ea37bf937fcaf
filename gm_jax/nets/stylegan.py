"""A small style-based generator after Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for
GANs": mapping network, learned constant, per-pixel noise, AdaIN, truncation (images NHWC in [-1, 1]).

Shared contract (call signatures, the "batch_stats" collection, train/eval behaviour, image sizes):
see :mod:`gm_jax.nets._gan_common`. The style generator needs square power-of-two sizes 4 * 2^k, k >= 1
(8, 16, 32, 64, ...).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.nets._gan_common import F32, check_labels, check_z, upsample2

__all__ = ["StyleGenerator", "StyleMapping", "StyleSynthesis", "pixel_norm"]


def pixel_norm(x, eps: float = 1e-8):
    """x / sqrt(mean(x^2 over the last axis) + eps) (Karras et al. 2018, progressive GAN), in float32."""
    x = x.astype(F32)
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


class _AdaIN(nn.Module):
    """Instance-normalise h [B, H, W, C] per example and channel (float32 statistics), then
    y = (1 + y_s) * h_norm + y_b with (y_s, y_b) = Dense(2C)(w) (the learned affine map "A")."""

    dtype: Any

    @nn.compact
    def __call__(self, h, w):
        c = h.shape[-1]
        h32 = h.astype(F32)
        mean = jnp.mean(h32, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(h32 - mean), axis=(1, 2), keepdims=True)
        hn = (h32 - mean) * jax.lax.rsqrt(var + 1e-8)
        style = nn.Dense(2 * c, dtype=self.dtype, param_dtype=F32, name="affine")(w.astype(self.dtype))
        ys, yb = jnp.split(style.astype(F32), 2, axis=-1)
        return ((1.0 + ys)[:, None, None, :] * hn + yb[:, None, None, :]).astype(self.dtype)


class _NoiseConvLayer(nn.Module):
    """[conv3 ->] + per-pixel noise (scaled by a learned per-channel factor, zero at init as in Karras et
    al.) -> LeakyReLU(0.2) -> AdaIN(w)."""

    channels: int
    conv: bool
    noise: bool
    dtype: Any

    @nn.compact
    def __call__(self, h, w):
        if self.conv:
            h = nn.Conv(self.channels, (3, 3), padding="SAME", dtype=self.dtype, param_dtype=F32, name="conv")(h)
        if self.noise:
            scale = self.param("noise_scale", nn.initializers.zeros, (h.shape[-1],), F32)
            if self.has_rng("noise"):
                n = jax.random.normal(self.make_rng("noise"), h.shape[:3] + (1,), F32)
            else:
                n = jnp.zeros(h.shape[:3] + (1,), F32)
            h = (h.astype(F32) + scale * n).astype(self.dtype)
        h = nn.leaky_relu(h, 0.2)
        return _AdaIN(self.dtype, name="adain")(h, w)


class StyleMapping(nn.Module):
    """Mapping network f: z [B, Z] (+ labels) -> w [B, w_dim] float32 (Karras et al. 2019, section 2).

    pixel_norm(z) (concatenated with pixel_norm(Embed(labels)) when ``num_classes`` is set, as in
    StyleGAN2-ADA), then ``num_layers`` Dense(w_dim) + LeakyReLU(0.2). (The paper's equalised learning rate
    and 0.01 mapping learning-rate multiplier are left to the optimiser.)
    """

    w_dim: int = 256
    num_layers: int = 8
    num_classes: Optional[int] = None
    dtype: Any = F32

    @nn.compact
    def __call__(self, z, labels=None):
        check_z(z, "StyleMapping")
        labels = check_labels(labels, self.num_classes, z.shape[0], "StyleMapping")
        h = pixel_norm(z)
        if labels is not None:
            emb = nn.Embed(self.num_classes, z.shape[-1], param_dtype=F32, name="label_embed")(labels)
            h = jnp.concatenate([h, pixel_norm(emb)], axis=-1)
        h = h.astype(self.dtype)
        for i in range(self.num_layers):
            h = nn.leaky_relu(nn.Dense(self.w_dim, dtype=self.dtype, param_dtype=F32, name=f"dense_{i}")(h), 0.2)
        return h.astype(F32)


class StyleSynthesis(nn.Module):
    """Synthesis network g: w [B, w_dim] -> images [B, H, W, C] float32 in [-1, 1] (Karras et al. 2019).

    A learned constant [4, 4, width]; at 4x4: noise + LeakyReLU + AdaIN, then conv3 + noise + LeakyReLU +
    AdaIN; at each further resolution (x2 nearest upsampling first): twice conv3 + noise + LeakyReLU +
    AdaIN; a 1x1 "toRGB" conv and tanh. All blocks have ``width`` channels. Every AdaIN has its own affine
    map of w. Noise comes from the "noise" rng when one is passed to apply (``rngs={"noise": key}``) and is
    zero otherwise (deterministic samples); ``noise=False`` removes the noise inputs altogether.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 128
    noise: bool = True
    dtype: Any = F32

    @nn.compact
    def __call__(self, w):
        who = "StyleSynthesis"
        if w.ndim != 2:
            raise GMJaxError(f"{who} expects styles w [B, w_dim], got shape {w.shape}")
        num_up = _style_levels(self.out_shape, who)
        const = self.param("const", nn.initializers.normal(1.0), (1, 4, 4, self.width), F32)
        h = jnp.broadcast_to(const, (w.shape[0], 4, 4, self.width)).astype(self.dtype)
        layer = lambda conv, name: _NoiseConvLayer(self.width, conv, self.noise, self.dtype, name=name)
        h = layer(False, "res4_0")(h, w)
        h = layer(True, "res4_1")(h, w)
        for i in range(1, num_up + 1):
            res = 4 * 2 ** i
            h = upsample2(h)
            h = layer(True, f"res{res}_0")(h, w)
            h = layer(True, f"res{res}_1")(h, w)
        h = nn.Conv(self.out_shape[2], (1, 1), dtype=self.dtype, param_dtype=F32, name="to_rgb")(h)
        return jnp.tanh(h.astype(F32))


def _style_levels(out_shape, who):
    height, width_px, _ = out_shape
    k = 0
    while 4 * 2 ** k < height:
        k += 1
    if height != width_px or height != 4 * 2 ** k or k < 1:
        raise GMJaxError(f"{who} makes square images of side 4 * 2^k (8, 16, 32, 64, ...), got "
                         f"{height}x{width_px}; pad or resize the images, or use DCGANGenerator")
    return k


class StyleGenerator(nn.Module):
    """A small style-based generator (Karras et al. 2019): z [B, Z] -> images [B, H, W, C] in [-1, 1].

    w = :class:`StyleMapping` (z, labels); images = :class:`StyleSynthesis` (w'), where w' applies the
    truncation trick: w' = w_avg + psi (w - w_avg) (``truncation_psi``; 1 = untruncated, 0 = every z gives
    the image of w_avg). ``w_avg`` [w_dim] float32 lives in "batch_stats" (zeros at init) and is updated
    only when ``train=True``, which then needs ``mutable=["batch_stats"]``:
    w_avg <- decay * w_avg + (1 - decay) * mean_batch(w) (the paper's code uses decay 0.995).
    Noise: see :class:`StyleSynthesis` (``rngs={"noise": key}``; zero noise without the rng).
    Methods ``mapping(z, labels)`` and ``synthesis(w)`` expose the two halves (``apply(..., method=...)``).

    Attributes: out_shape (H, W, C) with H = W in {8, 16, 32, 64, ...}; width (synthesis channels); w_dim;
    mapping_layers; noise; w_avg_decay; num_classes; dtype. No batch normalisation: eval outputs are
    per-example.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 128
    w_dim: int = 256
    mapping_layers: int = 8
    noise: bool = True
    w_avg_decay: float = 0.995
    num_classes: Optional[int] = None
    dtype: Any = F32

    def setup(self):
        _style_levels(self.out_shape, "StyleGenerator")
        self.mapping_net = StyleMapping(self.w_dim, self.mapping_layers, self.num_classes, self.dtype)
        self.synthesis_net = StyleSynthesis(tuple(self.out_shape), self.width, self.noise, self.dtype)
        self.w_avg = self.variable("batch_stats", "w_avg", lambda: jnp.zeros((self.w_dim,), F32))

    def mapping(self, z, labels=None):
        """w [B, w_dim] float32."""
        return self.mapping_net(z, labels)

    def synthesis(self, w):
        """images [B, H, W, C] float32 from styles w [B, w_dim] (no truncation applied)."""
        return self.synthesis_net(w)

    def __call__(self, z, labels=None, train: bool = False, truncation_psi=1.0):
        check_z(z, "StyleGenerator")
        w = self.mapping_net(z, labels)
        if train and not self.is_initializing():
            if not self.is_mutable_collection("batch_stats"):
                raise GMJaxError("StyleGenerator with train=True updates w_avg; call apply(..., "
                                 "mutable=['batch_stats']) (or use train=False)")
            d = self.w_avg_decay
            self.w_avg.value = d * self.w_avg.value + (1.0 - d) * jnp.mean(jax.lax.stop_gradient(w), axis=0)
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1.0):
            w_avg = self.w_avg.value
            w = w_avg + jnp.asarray(truncation_psi, F32) * (w - w_avg)
        return self.synthesis_net(w)
