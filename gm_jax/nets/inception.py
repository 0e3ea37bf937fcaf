"""The FID variant of Inception V3 (Flax linen), for FID / IS / KID / PRDC features.

Architecture: Inception V3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
Vision"), in the form of the TensorFlow graph ``inception-2015-12-05`` that Heusel et al. (2017, "GANs
Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", the TTUR code) used to
define FID, as ported to PyTorch by pytorch-fid (``pytorch_fid.inception.fid_inception_v3``) and
torch-fidelity (``FeatureExtractorInceptionV3``). It differs from the standard (torchvision) Inception V3:

- every conv is ``BasicConv`` = conv (no bias) -> BatchNorm(eps=1e-3, running statistics only) -> ReLU;
- the pooling branch of Mixed_5b-d (A), Mixed_6b-e (C) and Mixed_7b (first E) is a 3x3 stride-1 average
  pool that does **not** count the zero padding (TF semantics; ``count_include_pad=False`` in torch);
- the pooling branch of Mixed_7c (last E) is a 3x3 stride-1 **max** pool (a quirk of the TF graph that
  every port keeps);
- 1008 output classes (1000 ImageNet classes + 8 unused), no auxiliary head, no input transform.

Submodule names are those of pytorch-fid's module tree (``Conv2d_1a_3x3``, ``Mixed_5b/branch5x5_1``, each
BasicConv with children ``conv`` and ``bn``, and ``fc``), so its state dict converts by a pure rename
(``gm_jax.metrics.inception_weights.convert_state_dict``).

Input: float32 NHWC, already resized and normalised to about [-1, 1] (see
``gm_jax.metrics.inception.preprocess_for_inception``); any spatial size >= 75 (299 for the standard
features). Output: a dict of [N, D] float32 arrays, see ``FIDInceptionV3``.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["FIDInceptionV3", "avg_pool_exclude_pad", "max_pool_same", "INCEPTION_MIN_SIZE",
           "INCEPTION_NUM_CLASSES"]

INCEPTION_MIN_SIZE = 75  # smallest input for which Mixed_7a still has a 1x1 output
INCEPTION_NUM_CLASSES = 1008

_HIGHEST = jax.lax.Precision.HIGHEST
# He-normal: keeps random-weight activations O(1) through ~20 ReLU layers (real weights are converted in).
_KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")

IntPair = Union[int, Tuple[int, int]]


def _pair(v: IntPair) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool with 1-pixel padding that divides by the number of *real* pixels.

    TF's AvgPool (SAME) excludes padding from the average (torch: ``count_include_pad=False``); a border
    pixel averages 6 and a corner 4 inputs. [N, H, W, C] -> [N, H, W, C].
    """
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def max_pool_same(x: jax.Array) -> jax.Array:
    """3x3 stride-1 max pool, 1-pixel (-inf) padding: the pool branch of Mixed_7c. [N,H,W,C] -> same."""
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_valid(x: jax.Array) -> jax.Array:
    """3x3 stride-2 VALID max pool (stem, Mixed_6a, Mixed_7a). [N,H,W,C] -> [N,(H-3)//2+1,(W-3)//2+1,C]."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class BasicConv(nn.Module):
    """conv (no bias, HIGHEST precision) -> BatchNorm(eps=1e-3, running stats) -> ReLU.

    ``padding`` is symmetric per spatial axis, as in torch: (pad_h, pad_w).
    """

    features: int
    kernel_size: IntPair
    strides: IntPair = 1
    padding: IntPair = 0

    @nn.compact
    def __call__(self, x):
        ph, pw = _pair(self.padding)
        x = nn.Conv(self.features, _pair(self.kernel_size), strides=_pair(self.strides),
                    padding=((ph, ph), (pw, pw)), use_bias=False, precision=_HIGHEST,
                    kernel_init=_KERNEL_INIT, name="conv")(x)
        # Hard-wired inference statistics: FID features must not depend on the batch (a train-mode BN is the
        # classic port bug that makes features batch-dependent).
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _cat(xs: Sequence[jax.Array]) -> jax.Array:
    return jnp.concatenate(xs, axis=-1)


class InceptionA(nn.Module):
    """Mixed_5b/c/d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool(excl. pad)-1x1. -> 224 + pool_features ch."""

    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(64, 1, name="branch1x1")(x)
        b5 = BasicConv(48, 1, name="branch5x5_1")(x)
        b5 = BasicConv(64, 5, padding=2, name="branch5x5_2")(b5)
        b3 = BasicConv(64, 1, name="branch3x3dbl_1")(x)
        b3 = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(b3)
        b3 = BasicConv(96, 3, padding=1, name="branch3x3dbl_3")(b3)
        bp = BasicConv(self.pool_features, 1, name="branch_pool")(avg_pool_exclude_pad(x))
        return _cat([b1, b5, b3, bp])


class InceptionB(nn.Module):
    """Mixed_6a (grid reduction): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2. -> 384 + 96 + C_in ch."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(384, 3, strides=2, name="branch3x3")(x)
        bd = BasicConv(64, 1, name="branch3x3dbl_1")(x)
        bd = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = BasicConv(96, 3, strides=2, name="branch3x3dbl_3")(bd)
        return _cat([b3, bd, _max_pool_valid(x)])


class InceptionC(nn.Module):
    """Mixed_6b-e: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool(excl. pad)-1x1. -> 768 ch."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = BasicConv(192, 1, name="branch1x1")(x)
        b7 = BasicConv(c7, 1, name="branch7x7_1")(x)
        b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv(c7, 1, name="branch7x7dbl_1")(x)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = BasicConv(192, 1, name="branch_pool")(avg_pool_exclude_pad(x))
        return _cat([b1, b7, bd, bp])


class InceptionD(nn.Module):
    """Mixed_7a (grid reduction): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2. -> 320 + 192 + C_in ch."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(192, 1, name="branch3x3_1")(x)
        b3 = BasicConv(320, 3, strides=2, name="branch3x3_2")(b3)
        b7 = BasicConv(192, 1, name="branch7x7x3_1")(x)
        b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv(192, 3, strides=2, name="branch7x7x3_4")(b7)
        return _cat([b3, b7, _max_pool_valid(x)])


class InceptionE(nn.Module):
    """Mixed_7b/7c: 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1. -> 2048 ch.

    ``max_pool=False``: average pool excluding padding (Mixed_7b); ``True``: max pool (Mixed_7c, TF quirk).
    """

    max_pool: bool = False

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(320, 1, name="branch1x1")(x)
        b3 = BasicConv(384, 1, name="branch3x3_1")(x)
        b3 = _cat([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                   BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)])
        bd = BasicConv(448, 1, name="branch3x3dbl_1")(x)
        bd = BasicConv(384, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = _cat([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                   BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)])
        pooled = max_pool_same(x) if self.max_pool else avg_pool_exclude_pad(x)
        bp = BasicConv(192, 1, name="branch_pool")(pooled)
        return _cat([b1, b3, bd, bp])


class _FC(nn.Module):
    """The 2048 -> 1008 classifier; returns (pool3 @ W, pool3 @ W + b) from the same matmul."""

    features: int = INCEPTION_NUM_CLASSES

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        unbiased = jnp.dot(x, kernel, precision=_HIGHEST)
        return unbiased, unbiased + bias


def _spatial_mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x, axis=(1, 2))


class FIDInceptionV3(nn.Module):
    """FID Inception V3 (TF 2015-12-05 graph, as ported by pytorch-fid). Inference only.

    __call__(x): x [N, H, W, 3] float32, resized and normalised to about [-1, 1], H, W >= 75.
    Returns dict of float32:
      "block_64":  [N, 64]   global mean after the first max pool   (pytorch-fid block 0)
      "block_192": [N, 192]  global mean after the second max pool  (block 1)
      "block_768": [N, 768]  global mean after Mixed_6e             (block 2)
      "pool3":     [N, 2048] global mean after Mixed_7c: the FID/KID/PRDC features (block 3, TF pool_3)
      "logits_unbiased": [N, 1008] pool3 @ W, the Inception Score logits (TF softmax/logits/MatMul)
      "logits":    [N, 1008] pool3 @ W + b

    Variables: {"params": kernels, BN scale/bias, fc; "batch_stats": BN mean/var}. BN always uses the
    stored statistics, so ``apply`` needs no ``mutable``/``train`` argument.
    """

    @nn.compact
    def __call__(self, x) -> Dict[str, jax.Array]:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise GMJaxError(f"FIDInceptionV3 expects [N, H, W, 3] images, got shape {x.shape}; "
                             f"preprocess with gm_jax.metrics.preprocess_for_inception")
        if min(x.shape[1], x.shape[2]) < INCEPTION_MIN_SIZE:
            raise GMJaxError(f"FIDInceptionV3 needs H, W >= {INCEPTION_MIN_SIZE}, got {x.shape[1:3]}; "
                             f"resize to 299 with gm_jax.metrics.preprocess_for_inception")
        out = {}
        x = BasicConv(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv(32, 3, name="Conv2d_2a_3x3")(x)
        x = BasicConv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
        x = _max_pool_valid(x)
        out["block_64"] = _spatial_mean(x)
        x = BasicConv(80, 1, name="Conv2d_3b_1x1")(x)
        x = BasicConv(192, 3, name="Conv2d_4a_3x3")(x)
        x = _max_pool_valid(x)
        out["block_192"] = _spatial_mean(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        out["block_768"] = _spatial_mean(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(max_pool=False, name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        pool3 = _spatial_mean(x)
        out["pool3"] = pool3
        # Dropout before fc is the identity at inference; omitted.
        out["logits_unbiased"], out["logits"] = _FC(name="fc")(pool3)
        return out
