"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017, "PixelCNN++: Improving the PixelCNN with Discretized
Logistic Mixture Likelihood and Other Modifications", ICLR): the network of the paper's sec. 2.3-2.5.

Two streams make the features of pixel (i, j) depend on exactly the pixels before it in raster order:
``u`` sees rows above (down-shifted 2 x 3 convolutions), ``ul`` sees rows above and the pixels to the
left (down-right-shifted 2 x 2 convolutions, plus ``u``). Each stream is a U-Net over three resolutions
(H, H/2, H/4): ``num_resnet`` gated ResNet blocks per resolution on the way down (the "up pass" of the
paper's code, which strides the resolution down) and ``num_resnet`` + 1 on the way back, each of the
latter taking the activation of its mirror block as a short-cut input (sec. 2.4). A gated ResNet block
is x + a * sigmoid(b), (a, b) = conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(short-cut))))),
every convolution weight-normalised (Salimans & Kingma 2016). The per-pixel head maps elu(ul) by a 1x1
layer to the coupled discretized logistic mixture of :mod:`gm_jax.nets.pixelcnn` (whole pixels, sec. 2.2).

Shift semantics follow the official TensorFlow code (openai/pixel-cnn ``pixel_cnn_pp/nn.py``): a
down-shifted convolution pads (k_h - 1) rows on top and (k_w - 1) / 2 columns on each side; a
down-right-shifted one pads k_h - 1 on top and k_w - 1 on the left; the transposed versions crop the
matching border; the first layer's outputs are shifted one row down (and one column right). The
parameter tree differs from the official one only in names; its count is equal (tests/nets).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.nets.pixelcnn import DMOLHead

__all__ = ["PixelCNNPlusPlus"]

F32 = jnp.float32


def concat_elu(x):
    """elu([x, -x]) on the channel axis: doubles the channels (the concatenated ELU of sec. 2.5's code)."""
    return jax.nn.elu(jnp.concatenate([x, -x], axis=-1))


def _down_shift(x):
    """Row i takes row i - 1 (zeros in row 0)."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def _right_shift(x):
    """Column j takes column j - 1 (zeros in column 0)."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class _ShiftedConv(nn.Module):
    """A weight-normalised convolution (stride 1 or 2) that sees only rows at or above the output's and,
    ``right`` (down-right-shifted), only columns at or left of it; else columns centred on it."""

    features: int
    kernel: tuple[int, int]
    right: bool = False
    stride: int = 1
    scale_init: float = 1.0
    dtype: Any = F32

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel
        cols = (kw - 1, 0) if self.right else ((kw - 1) // 2, (kw - 1) // 2)
        conv = nn.Conv(self.features, self.kernel, strides=self.stride, padding=((kh - 1, 0), cols),
                       dtype=self.dtype, param_dtype=F32)
        return nn.WeightNorm(conv, scale_init=nn.initializers.constant(self.scale_init), name="wn")(x)


class _ShiftedDeconv(nn.Module):
    """A weight-normalised stride-2 transposed convolution, cropped as the official code crops its
    down(-right)-shifted deconvolutions: [B, h, w, F] -> [B, 2h, 2w, features]."""

    features: int
    kernel: tuple[int, int]
    right: bool = False
    dtype: Any = F32

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel
        h, w = 2 * x.shape[1], 2 * x.shape[2]
        deconv = nn.ConvTranspose(self.features, self.kernel, strides=(2, 2), padding="VALID", dtype=self.dtype,
                                  param_dtype=F32)
        y = nn.WeightNorm(deconv, name="wn")(x)  # [B, 2h - 2 + kh, 2w - 2 + kw, F]
        left = 0 if self.right else (kw - 1) // 2
        return y[:, :h, left:left + w]


class _NIN(nn.Module):
    """A weight-normalised 1x1 layer ("network in network")."""

    features: int
    dtype: Any = F32

    @nn.compact
    def __call__(self, x):
        return nn.WeightNorm(nn.Dense(self.features, dtype=self.dtype, param_dtype=F32), name="wn")(x)


class _GatedResnet(nn.Module):
    """x + a * sigmoid(b): one gated ResNet block of a stream (``right``: the ul stream's kernels)."""

    right: bool
    dropout: float
    num_classes: int
    dtype: Any = F32

    @nn.compact
    def __call__(self, x, shortcut, labels, train: bool):
        f = x.shape[-1]
        kernel = (2, 2) if self.right else (2, 3)
        c = _ShiftedConv(f, kernel, self.right, dtype=self.dtype, name="conv_in")(concat_elu(x))
        if shortcut is not None:
            c = c + _NIN(f, dtype=self.dtype, name="shortcut")(concat_elu(shortcut))
        c = concat_elu(c)
        c = nn.Dropout(self.dropout, deterministic=not train)(c)
        # the official init_scale 0.1 of the residual branch's last layer, as its weight-norm scale
        c = _ShiftedConv(2 * f, kernel, self.right, scale_init=0.1, dtype=self.dtype, name="conv_out")(c)
        if self.num_classes:  # class conditioning: a learned per-class bias (one-hot h times hw, no bias)
            c = c + nn.Embed(self.num_classes, 2 * f, param_dtype=F32, name="class_bias",
                             embedding_init=nn.initializers.normal(0.05))(labels)[:, None, None].astype(c.dtype)
        a, b = jnp.split(c, 2, axis=-1)
        return x + a * jax.nn.sigmoid(b)


class _Streams(nn.Module):
    """The u and ul streams (see the module doc): x [B, H, W, C] -> ul [B, H, W, features]."""

    features: int
    num_resnet: int
    dropout: float
    num_classes: int
    dtype: Any = F32

    @nn.compact
    def __call__(self, x, labels, train: bool):
        h, w = x.shape[1:3]
        if h % 4 or w % 4:
            raise GMJaxError(f"PixelCNN++ halves the image twice: height and width must be multiples of 4, got "
                             f"{h}x{w}; use architecture=gated, or pad the images")
        f, dt = self.features, self.dtype
        block = lambda right, name: _GatedResnet(right, self.dropout, self.num_classes, dtype=dt, name=name)
        x = x.astype(dt)
        # A channel of ones tells the image from the zero padding (the official code's x_pad).
        x = jnp.concatenate([x, jnp.ones(x.shape[:3] + (1,), dt)], axis=-1)
        u = _down_shift(_ShiftedConv(f, (2, 3), dtype=dt, name="u_in")(x))
        ul = _down_shift(_ShiftedConv(f, (1, 3), dtype=dt, name="ul_in_above")(x)) + \
            _right_shift(_ShiftedConv(f, (2, 1), right=True, dtype=dt, name="ul_in_left")(x))
        us, uls = [u], [ul]
        for level in range(3):  # down the resolutions: H, H/2, H/4
            if level:
                us.append(_ShiftedConv(f, (2, 3), stride=2, dtype=dt, name=f"u_down_{level}")(us[-1]))
                uls.append(_ShiftedConv(f, (2, 2), right=True, stride=2, dtype=dt, name=f"ul_down_{level}")(uls[-1]))
            for i in range(self.num_resnet):
                us.append(block(False, f"u_{level}_{i}")(us[-1], None, labels, train))
                uls.append(block(True, f"ul_{level}_{i}")(uls[-1], us[-1], labels, train))
        u, ul = us.pop(), uls.pop()
        for level in range(3):  # back up, each block taking its mirror's activation as a short-cut
            if level:
                u = _ShiftedDeconv(f, (2, 3), dtype=dt, name=f"u_up_{level}")(u)
                ul = _ShiftedDeconv(f, (2, 2), right=True, dtype=dt, name=f"ul_up_{level}")(ul)
            for i in range(self.num_resnet + (level > 0)):
                u = block(False, f"u_back_{level}_{i}")(u, us.pop(), labels, train)
                ul = block(True, f"ul_back_{level}_{i}")(ul, jnp.concatenate([u, uls.pop()], axis=-1), labels,
                                                        train)
        assert not us and not uls
        return ul


class PixelCNNPlusPlus(nn.Module):
    """PixelCNN++: images [B, H, W, C] (bin centres in [-1, 1]; H and W divisible by 4) -> per-pixel
    coupled-DMOL parameters (a dict, see :class:`gm_jax.nets.pixelcnn.DMOLHead`) depending only on pixels
    before (i, j) in raster order.

    ``__call__(x, labels=None, train=False)``; ``features_of(x, labels, train) -> h [B, H, W, features]``
    and ``head_of(h, x)`` are its two halves (the interface of :class:`~gm_jax.nets.pixelcnn.GatedPixelCNN`).
    ``train=True`` applies dropout and needs ``rngs={"dropout": key}``.

    Attributes:
      num_channels: C.
      features: channels of both streams at every resolution (nr_filters; 160 in the paper).
      num_resnet: gated ResNet blocks per resolution on the way down (nr_resnet; 5).
      num_mixtures: logistic components (nr_logistic_mix; 10).
      dropout: dropout rate inside the blocks (0.5).
      num_classes: > 0 adds a learned per-class bias to every block.
      dtype: compute dtype (parameters float32, outputs float32).
    """

    num_channels: int
    features: int = 160
    num_resnet: int = 5
    num_mixtures: int = 10
    dropout: float = 0.5
    num_classes: int = 0
    dtype: Any = F32

    def setup(self):
        self.streams = _Streams(self.features, self.num_resnet, self.dropout, self.num_classes, dtype=self.dtype)
        self.head = DMOLHead(self.num_channels, self.num_mixtures, weight_norm=True, dtype=self.dtype)

    def features_of(self, x, labels=None, train: bool = False):
        """Per-pixel features [B, H, W, features] of the pixels strictly before each pixel."""
        return self.streams(x, labels, train)

    def head_of(self, h, x=None):
        """Coupled-DMOL parameters from the features h [..., F] (``x`` unused: whole pixels, sec. 2.2)."""
        return self.head(jax.nn.elu(h))

    def __call__(self, x, labels=None, train: bool = False):
        return self.head_of(self.features_of(x, labels, train), x)
