"""The networks of CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", sec. 4 and appendix 7.2), at configurable size.

- :class:`ResNetTranslator`: the image-to-image generator of Johnson et al. (2016) as CycleGAN uses it:
  ``c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-C`` (a k x k stride-1 conv with reflection padding, stride-2
  down-sampling convs, residual blocks, stride-1/2 transposed convs back up, a k x k conv to C channels and
  tanh), instance normalisation (Ulyanov et al. 2016) and ReLU after every conv but the last. The input
  kernel ``in_kernel`` (7 in the paper; 3 suits 8 x 8 images) and the number of down/up-sampling stages
  ``num_down`` (2 in the paper; 0 or 1 for 8 x 8) are attributes.
- :class:`PatchDiscriminator`: the PatchGAN of Isola et al. (2017) as CycleGAN uses it: ``C64-C128-C256``,
  k x k stride-2 convs with LeakyReLU 0.2 (instance norm on all but the first), a stride-1 ``C512``, then a
  stride-1 conv to one channel, so the output is a map of logits [B, h, w], one per overlapping image patch.

Instance norm has no learned scale or shift, as in the official code (PyTorch's InstanceNorm2d, affine
False), so the parameter counts equal the official networks' (11,378,179 and 2,764,737 at the paper's size).

Contract. ``ResNetTranslator()(x [B, H, W, C]) -> [B, H, W, out_channels]`` float32 in (-1, 1);
``PatchDiscriminator()(x [B, H, W, C]) -> logits [B, H / 2^L, W / 2^L]`` float32 (sides rounded up, L =
``num_layers``). Both act on each example independently (instance norm, no batch statistics), so neither
has any variable collection besides "params". ``dtype`` is the compute dtype; parameters and outputs are
float32.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["ResNetTranslator", "PatchDiscriminator", "padded_conv", "PADDINGS", "Padding"]

Padding = Literal["reflect", "zero"]
PADDINGS = typing.get_args(Padding)

_F32 = jnp.float32
_INIT = nn.initializers.normal(0.02)  # the paper's weight init, N(0, 0.02) (Zhu et al. 2017, sec. 7.1)


def _check_images(x, who):
    if x.ndim != 4:
        raise GMJaxError(f"{who} expects images [B, H, W, C], got shape {x.shape}; add the missing axes")


def padded_conv(x, features: int, kernel: int, name: str, dtype=None, padding: str = "reflect"):
    """A stride-1 k x k convolution (k odd) keeping the image size, as a call inside a compact module:
    [B, H, W, C] -> [B, H, W, features]. ``padding``: "reflect" (the paper's padding in the generator;
    needs (k - 1) / 2 < H, W) or "zero"."""
    p = (kernel - 1) // 2
    if padding == "reflect" and p >= min(x.shape[1], x.shape[2]):
        raise GMJaxError(f"a {kernel}x{kernel} reflection-padded conv needs images larger than {p} pixels a side, "
                         f"got {x.shape[1]}x{x.shape[2]}; use a smaller kernel")
    return nn.Conv(features, (kernel, kernel), padding="REFLECT" if padding == "reflect" else "SAME", dtype=dtype,
                   param_dtype=_F32, kernel_init=_INIT, name=name)(x)


def _norm(x, name, dtype):
    return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False, dtype=dtype, name=name)(x)


class ResNetTranslator(nn.Module):
    """The CycleGAN ResNet generator (Zhu et al. 2017, appendix 7.2; Johnson et al. 2016).

    Attributes:
      width: channels of the first conv (64 in the paper); stage i of the down-sampling has width * 2^i.
      num_blocks: residual blocks at the lowest resolution (6 for 128 x 128 images, 9 for 256 x 256).
      num_down: stride-2 down-sampling convs, matched by as many stride-2 transposed convs (2 in the paper);
        H and W must be divisible by 2^num_down.
      in_kernel: kernel size of the first and last convs (7 in the paper; odd).
      out_channels: channels of the output (None: those of the input).
      padding: of the stride-1 convs: "reflect" (the paper) or "zero" (compiles and runs about twice as
        fast on CPU).
      dtype: compute dtype.

    ``__call__(x [B, H, W, C]) -> [B, H, W, out_channels]`` float32, tanh output in (-1, 1).
    """

    width: int = 64
    num_blocks: int = 6
    num_down: int = 2
    in_kernel: int = 7
    out_channels: int | None = None
    padding: str = "reflect"
    dtype: Any = None

    @nn.compact
    def __call__(self, x):
        _check_images(x, "ResNetTranslator")
        if self.padding not in PADDINGS:
            raise GMJaxError(f"unknown padding '{self.padding}'; use reflect or zero")
        factor = 2 ** self.num_down
        if x.shape[1] % factor or x.shape[2] % factor:
            raise GMJaxError(f"ResNetTranslator with num_down={self.num_down} needs H and W divisible by {factor}, "
                             f"got {x.shape[1]}x{x.shape[2]}; lower num_down")
        out_channels = self.out_channels or x.shape[-1]
        dt, pad = self.dtype, self.padding
        h = x.astype(dt or _F32)
        h = nn.relu(_norm(padded_conv(h, self.width, self.in_kernel, "conv_in", dt, pad), "norm_in", dt))
        for i in range(self.num_down):  # d_k: 3x3 stride-2 conv, instance norm, ReLU
            h = nn.Conv(self.width * 2 ** (i + 1), (3, 3), strides=(2, 2), padding="SAME", dtype=dt,
                        param_dtype=_F32, kernel_init=_INIT, name=f"down_{i}")(h)
            h = nn.relu(_norm(h, f"down_norm_{i}", dt))
        features = self.width * 2 ** self.num_down
        for i in range(self.num_blocks):  # R_k: two 3x3 convs and a skip connection
            r = nn.relu(_norm(padded_conv(h, features, 3, f"block_{i}_conv_0", dt, pad), f"block_{i}_norm_0", dt))
            r = _norm(padded_conv(r, features, 3, f"block_{i}_conv_1", dt, pad), f"block_{i}_norm_1", dt)
            h = h + r
        for i in reversed(range(self.num_down)):  # u_k: 3x3 stride-1/2 (transposed) conv, instance norm, ReLU
            h = nn.ConvTranspose(self.width * 2 ** i, (3, 3), strides=(2, 2), padding="SAME", dtype=dt,
                                 param_dtype=_F32, kernel_init=_INIT, name=f"up_{i}")(h)
            h = nn.relu(_norm(h, f"up_norm_{i}", dt))
        h = padded_conv(h, out_channels, self.in_kernel, "conv_out", dt, pad)
        return jnp.tanh(h.astype(_F32))


class PatchDiscriminator(nn.Module):
    """The CycleGAN PatchGAN discriminator (Zhu et al. 2017, appendix 7.2; Isola et al. 2017).

    Attributes:
      width: channels of the first conv (64 in the paper); layer i has width * 2^i.
      num_layers: stride-2 convs L (3 in the paper's 70 x 70 PatchGAN), followed by a stride-1 conv of
        width * 2^L channels (C512) and the stride-1 conv to one logit; the logit map has sides H / 2^L
        (rounded up).
      kernel: kernel size of every conv (4 in the paper).
      dtype: compute dtype.

    ``__call__(x [B, H, W, C]) -> logits [B, h, w]`` float32: a real/fake logit per patch, each seeing a
    receptive field of ``3 (k - 1) 2^L - k + 2`` pixels a side for kernel k (70 for the paper's L = 3, k = 4;
    at most the whole image).
    """

    width: int = 64
    num_layers: int = 3
    kernel: int = 4
    dtype: Any = None

    @nn.compact
    def __call__(self, x):
        _check_images(x, "PatchDiscriminator")
        dt = self.dtype
        h = x.astype(dt or _F32)
        k = (self.kernel, self.kernel)
        for i in range(self.num_layers):  # C_k: k x k stride-2 conv, instance norm (not on the first), LReLU 0.2
            h = nn.Conv(self.width * 2 ** i, k, strides=(2, 2), padding="SAME", dtype=dt, param_dtype=_F32,
                        kernel_init=_INIT, name=f"conv_{i}")(h)
            if i > 0:
                h = _norm(h, f"norm_{i}", dt)
            h = nn.leaky_relu(h, 0.2)
        h = nn.Conv(self.width * 2 ** self.num_layers, k, padding="SAME", dtype=dt, param_dtype=_F32,
                    kernel_init=_INIT, name="conv_last")(h)
        h = nn.leaky_relu(_norm(h, "norm_last", dt), 0.2)
        h = nn.Conv(1, k, padding="SAME", dtype=dt, param_dtype=_F32, kernel_init=_INIT, name="conv_out")(h)
        return h[..., 0].astype(_F32)
