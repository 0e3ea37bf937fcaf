"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks of gated convolutions make the features of pixel (i, j) depend on exactly the pixels before
it in raster order, with no blind spot:

- the vertical stack at (i, j) sees only rows < i (all columns within its receptive field). Its first
  layer is shifted down by one row ("mask A"); later layers see the current row of the previous vertical
  features, which themselves only see rows above ("mask B").
- the horizontal stack at (i, j) sees row i at columns < j (first layer shifted right by one, later
  layers include column j of the previous horizontal features) and, through a 1x1 link, the vertical
  stack at (i, j).

Instead of masking n x n kernels, each stack uses un-masked (n//2 + 1) x n and 1 x n kernels on shifted,
padded inputs; this is the same function class without the multiplications by zero. Every layer computes
tanh(W_f * x + V_f y) * sigmoid(W_g * x + V_g y), where y is a learned per-class bias (class conditioning).
The horizontal stack has residual connections and contributes to a skip sum, which a 1x1 network maps to
per-pixel features ``h``.

Heads (per pixel, applied to h): a K-way categorical per channel, generated in channel order: channel c's
logits are an MLP of h and of the current pixel's channels < c (a masked dense link), so the whole model is
autoregressive over (row, column, channel); or the parameters of PixelCNN++'s coupled mixture of
discretized logistics (Salimans et al. 2017; see
:func:`gm_jax.distributions.coupled_discretized_logistic_mixture_log_prob`), which orders the channels
inside the distribution.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GatedPixelCNN", "DMOLHead", "dmol_num_params", "MIN_LOG_SCALE"]

MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on the logistic log-scale; keeps bins' log-mass finite


def dmol_num_params(num_channels: int, num_mixtures: int) -> int:
    """Outputs per pixel of the DMOL head: M weights, C means, C log-scales, C(C-1)/2 coupling coefficients."""
    return num_mixtures * (1 + 2 * num_channels + num_channels * (num_channels - 1) // 2)


def _gate(x):
    f, g = jnp.split(x, 2, axis=-1)
    return jnp.tanh(f) * jax.nn.sigmoid(g)


class _ShiftedConv(nn.Module):
    """A convolution whose output (i, j) sees input rows [i - rows + 1 - down, i - down] and columns
    [j - left, j - left + cols - 1] (zero outside the image).

    x [B, H, W, F_in] -> [B, H, W, features]. Written as one matmul over the stacked shifted copies of x
    (im2col): on CPU, XLA's convolution gradient inside the layers' scan is an order of magnitude slower.
    """

    features: int
    rows: int
    cols: int
    left: int
    down: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        h, w = x.shape[1:3]
        top = self.rows - 1 + self.down
        xp = jnp.pad(x, ((0, 0), (top, 0), (self.left, max(self.cols - 1 - self.left, 0)), (0, 0)))
        taps = [xp[:, r:r + h, c:c + w] for r in range(self.rows) for c in range(self.cols)]
        return nn.Dense(self.features, dtype=self.dtype, param_dtype=jnp.float32, name="conv")(
            jnp.concatenate(taps, axis=-1))


class _GatedLayer(nn.Module):
    """One gated layer of both stacks: (v, h, skip) -> (v', h', skip'). ``first`` is the shifted (mask A) layer."""

    features: int
    skip_features: int
    kernel_size: int
    num_classes: int
    first: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry, labels):
        v, h, skip = carry
        f, k = self.features, self.kernel_size
        shift = 1 if self.first else 0
        # Vertical: rows [i - k//2 - shift, i - shift], columns [j - k//2, j + k//2].
        v_pre = _ShiftedConv(2 * f, k // 2 + 1, k, left=k // 2, down=shift, dtype=self.dtype, name="vertical")(v)
        # Horizontal: row i, columns [j - k + 1 - shift, j - shift].
        h_pre = _ShiftedConv(2 * f, 1, k, left=k - 1 + shift, dtype=self.dtype,
                             name="horizontal")(h)
        h_pre = h_pre + nn.Dense(2 * f, dtype=self.dtype, param_dtype=jnp.float32, name="vertical_to_horizontal")(v_pre)
        if self.num_classes:
            bias = nn.Embed(self.num_classes, 4 * f, dtype=self.dtype, param_dtype=jnp.float32,
                            name="class_bias")(labels)
            bias_v, bias_h = jnp.split(bias[:, None, None, :], 2, axis=-1)
            v_pre, h_pre = v_pre + bias_v, h_pre + bias_h
        gated = _gate(h_pre)
        skip = skip + nn.Dense(self.skip_features, dtype=self.dtype, param_dtype=jnp.float32, name="skip")(gated)
        h_out = nn.Dense(f, dtype=self.dtype, param_dtype=jnp.float32, name="residual")(gated)
        if not self.first:
            h_out = h_out + h
        return (_gate(v_pre), h_out, skip), None


class _CategoricalChannelHead(nn.Module):
    """Per-pixel K-way logits for each channel, channel c conditioned on the pixel's channels < c.

    h [..., F_h], x [..., C] (bin centres) -> logits [..., C, K] (float32). A hidden layer per channel,
    relu(A_c h + sum_{j<c} U_jc x_j), then a dense map to K logits.
    """

    num_levels: int
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h, x):
        c, f = x.shape[-1], self.features
        a = nn.Dense(c * f, dtype=self.dtype, param_dtype=jnp.float32, name="from_features")(h)
        a = a.reshape(a.shape[:-1] + (c, f))
        if c > 1:
            mask = np.tril(np.ones((c, c), np.float32), -1)  # mask[c_out, j] = 1 iff j < c_out
            u = self.param("from_channels", nn.initializers.lecun_normal(in_axis=0, out_axis=(1, 2)), (c, c, f),
                           jnp.float32)
            u = (u * mask.T[:, :, None]).astype(self.dtype)  # u[j, c_out, :] is used only for j < c_out
            a = a + jnp.einsum("...j,jcf->...cf", x.astype(self.dtype), u)
        hidden = nn.relu(a)
        w = self.param("out_kernel", nn.initializers.lecun_normal(in_axis=1, out_axis=2),
                       (c, f, self.num_levels), jnp.float32)
        b = self.param("out_bias", nn.initializers.zeros, (c, self.num_levels), jnp.float32)
        return (jnp.einsum("...cf,cfk->...ck", hidden, w.astype(self.dtype)) + b).astype(jnp.float32)


class DMOLHead(nn.Module):
    """Per-pixel parameters of the coupled discretized logistic mixture.

    h [..., F_h] -> dict(logit_weights [..., M], means [..., C, M], log_scales [..., C, M] (floored at
    MIN_LOG_SCALE), coeffs [..., C(C-1)/2, M]), float32.
    """

    num_channels: int
    num_mixtures: int
    weight_norm: bool = False  # PixelCNN++'s weight-normalised output layer
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h):
        c, m = self.num_channels, self.num_mixtures
        p = c * (c - 1) // 2
        dense = nn.Dense(dmol_num_params(c, m), dtype=self.dtype, param_dtype=jnp.float32,
                         name=None if self.weight_norm else "params")
        out = nn.WeightNorm(dense, name="params")(h) if self.weight_norm else dense(h)
        out = out.astype(jnp.float32).reshape(out.shape[:-1] + (1 + 2 * c + p, m))
        return {
            "logit_weights": out[..., 0, :],
            "means": out[..., 1:1 + c, :],
            "log_scales": jnp.maximum(out[..., 1 + c:1 + 2 * c, :], MIN_LOG_SCALE),
            "coeffs": out[..., 1 + 2 * c:, :],
        }


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN: images [B, H, W, C] (bin centres in [-1, 1]) -> per-subpixel distribution parameters.

    ``__call__(x, labels=None)``: ``head="categorical"``: logits [B, H, W, C, num_levels] (float32), where
    the logits of (i, j, c) depend only on pixels before (i, j) in raster order and on channels < c of
    (i, j). ``head="dmol"``: a dict of coupled-DMOL parameters (see ``DMOLHead``) depending only on
    pixels before (i, j). ``labels`` [B] int (class conditioning) when ``num_classes`` > 0.

    The two halves are exposed for sampling (``apply(..., method="features_of" / "head_of")``):
    ``features_of(x, labels) -> h [B, H, W, head_features]`` (pixels before (i, j) only) and
    ``head_of(h, x)`` (per pixel; any leading shape).

    Attributes:
      num_levels: K, for the categorical head.
      num_channels: C of the images.
      features: channels of each stack (p in the paper).
      num_layers: gated layers (the first is the shifted one; the rest run under one ``nn.scan``).
      kernel_size: n: the vertical kernel is (n//2 + 1) x n and the horizontal one 1 x n.
      head_features: width of the per-pixel output network.
      num_classes: > 0 adds a learned per-class bias to every gate.
      head: ``"categorical"`` or ``"dmol"``.
      num_mixtures: M, for the DMOL head.
      dtype: compute dtype (parameters stay float32; outputs are float32).
    """

    num_levels: int
    num_channels: int
    features: int = 64
    num_layers: int = 8
    kernel_size: int = 3
    head_features: int = 128
    num_classes: int = 0
    head: str = "categorical"
    num_mixtures: int = 5
    dtype: Any = jnp.float32

    def setup(self):
        kw = dict(features=self.features, skip_features=self.head_features, kernel_size=self.kernel_size,
                  num_classes=self.num_classes, dtype=self.dtype)
        self.first_layer = _GatedLayer(first=True, **kw)
        if self.num_layers > 1:
            # Homogeneous layers: one scanned module with stacked params keeps compile time flat in depth.
            self.layers = nn.scan(_GatedLayer, variable_axes={"params": 0}, split_rngs={"params": True},
                                  in_axes=nn.broadcast, length=self.num_layers - 1)(**kw)
        self.out_dense = nn.Dense(self.head_features, dtype=self.dtype, param_dtype=jnp.float32)
        if self.head == "categorical":
            self.output_head = _CategoricalChannelHead(self.num_levels, self.head_features, dtype=self.dtype)
        else:
            self.output_head = DMOLHead(self.num_channels, self.num_mixtures, dtype=self.dtype)

    def features_of(self, x, labels=None):
        """Per-pixel features h [B, H, W, head_features] of the pixels strictly before each pixel."""
        x = x.astype(self.dtype)
        skip = jnp.zeros(x.shape[:3] + (self.head_features,), self.dtype)
        carry, _ = self.first_layer((x, x, skip), labels)
        if self.num_layers > 1:
            carry, _ = self.layers(carry, labels)
        return nn.relu(self.out_dense(nn.relu(carry[2])))

    def head_of(self, h, x):
        """Distribution parameters from features h [..., F] and the pixel's values x [..., C] (centres)."""
        if self.head == "categorical":
            return self.output_head(h, x)
        return self.output_head(h)

    def __call__(self, x, labels=None):
        return self.head_of(self.features_of(x, labels), x)
