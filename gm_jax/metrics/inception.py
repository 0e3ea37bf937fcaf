"""The FID Inception V3 feature extractor: preprocessing (the resize conventions) and the forward.

Network: :class:`gm_jax.nets.inception.FIDInceptionV3`, the Inception V3 of Szegedy et al. (2016) in the
TF ``inception-2015-12-05`` form that Heusel et al. (2017) used to define FID, as ported by pytorch-fid
(Seitzer) and torch-fidelity (Obukhov et al.). Its weights (pytorch-fid's ``.pth``, converted to a local
``.npz``; the state-dict layout; random test variables) are handled by :mod:`gm_jax.metrics.inception_weights`.

Preprocessing conventions (:func:`preprocess_for_inception`), the main source of FID differences between
implementations:

- ``"tf1"`` (default): what the TF graph itself does, hence TTUR, improved-gan's IS, torch-fidelity and the
  OpenAI (ADM) evaluator: TF1 legacy bilinear resize to 299 (``align_corners=False`` with the *legacy*
  sampling ``src = dst * in / out``, floor, upper index clamped; **not** half-pixel) on float 0..255
  values, then ``(x - 128) / 128`` (range [-1, 0.9921875]).
- ``"pytorch_fid"``: pytorch-fid with ``resize_input=True, normalize_input=True``: torch
  ``F.interpolate(mode="bilinear", align_corners=False)`` (half-pixel ``src = (dst + 0.5) * in / out - 0.5``,
  clamped at 0, no antialias) on [0, 1] values, then ``2x - 1``.

The two resizes differ by a sub-pixel shift on upsampling (e.g. 32 -> 299) and so give different FIDs; use
the one of the numbers you compare against.

Typical use::

    from gm_jax.metrics import fid, inception_apply, inception_score, load_inception_variables

    variables = load_inception_variables()                      # after `gm-jax inception download`
    feats = jax.jit(inception_apply, static_argnames="resize")(variables, uint8_images)
    fid(feats_a["pool3"], feats_b["pool3"]); inception_score(feats["logits_unbiased"])
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.nets.inception import INCEPTION_MIN_SIZE, FIDInceptionV3

__all__ = ["RESIZE_MODES", "INCEPTION_SIZE", "preprocess_for_inception", "resize_bilinear", "inception_apply"]

RESIZE_MODES = ("tf1", "pytorch_fid")
INCEPTION_SIZE = 299

_MODEL = FIDInceptionV3()


# ----------------------------------------------------------------------------------------------------------
# Preprocessing


def _tf1_axis(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1 legacy bilinear sampling along one axis: (lo, hi, lerp) with src = dst * (in / out).

    float32 arithmetic as in TF's ``resize_bilinear_op`` (scale = (float)in / out; src = (float)dst * scale),
    so the weights equal TF's bit for bit.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.arange(n_out, dtype=np.float32) * scale
    lo = np.minimum(np.floor(src).astype(np.int32), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)  # clamp the upper neighbour (TF: min(ceil(src), in - 1); same values)
    lerp = (src - np.floor(src)).astype(np.float32)
    return lo, hi, lerp


def _half_pixel_axis(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch ``F.interpolate(bilinear, align_corners=False)`` sampling along one axis: (lo, hi, lerp).

    src = max((dst + 0.5) * (in / out) - 0.5, 0), rounded as in ATen's upsample_bilinear2d.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    # ATen: float scale times (dst + 0.5) evaluated in double, rounded once to float.
    src = (np.float64(scale) * (np.arange(n_out, dtype=np.float64) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0))
    lo = np.minimum(src.astype(np.int32), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    lerp = (src - lo.astype(np.float32)).astype(np.float32)
    return lo, hi, lerp


def _resize_axis(x: jax.Array, axis: int, lo, hi, lerp, tf_form: bool) -> jax.Array:
    """Two static gathers + a lerp along ``axis``. tf_form: a + (b - a) t (TF); else (1 - t) a + t b (torch)."""
    a = jnp.take(x, jnp.asarray(lo), axis=axis)
    b = jnp.take(x, jnp.asarray(hi), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = len(lerp)
    t = jnp.asarray(lerp).reshape(shape)
    if tf_form:
        return a + (b - a) * t
    return (1.0 - t) * a + t * b


def _check_images(images, what: str):
    shape, dtype = getattr(images, "shape", None), getattr(images, "dtype", None)
    if shape is None or len(shape) != 4 or shape[-1] not in (1, 3):
        raise GMJaxError(f"{what} expects images [N, H, W, C] with C in {{1, 3}}, got shape {shape}; "
                         f"add the batch/channel axis (NHWC)")
    if not (dtype == np.uint8 or jnp.issubdtype(dtype, jnp.floating)):
        raise GMJaxError(f"{what} expects uint8 images in [0, 255] or float images in [0, 1], got dtype "
                         f"{dtype}; convert with .astype(np.uint8) or scale to [0, 1]")


def resize_bilinear(x, size: int, mode: str = "tf1") -> jax.Array:
    """Bilinear resize of float images [N, H, W, C] -> [N, size, size, C], values unchanged in scale.

    ``mode="tf1"``: TF1 ``ResizeBilinear(align_corners=False)`` legacy sampling, src = dst * in / out (equal to
    torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``); ``"pytorch_fid"``: torch
    ``F.interpolate(bilinear, align_corners=False)``, half-pixel, no antialias. No antialiasing in either
    mode (downsampling skips pixels, as the references do). Static index/weight tables, two gathers and a
    lerp per axis: jittable, exact to float32 rounding, cheap next to the network.
    """
    if mode not in RESIZE_MODES:
        raise GMJaxError(f"unknown Inception resize mode {mode!r}; use one of {', '.join(RESIZE_MODES)}")
    if getattr(x, "ndim", None) != 4:
        raise GMJaxError(f"resize_bilinear expects images [N, H, W, C], got shape {getattr(x, 'shape', None)}; "
                         f"add the batch/channel axis (NHWC)")
    x = jnp.asarray(x, jnp.float32)
    _, h, w, _ = x.shape
    axis_fn, tf_form = (_tf1_axis, True) if mode == "tf1" else (_half_pixel_axis, False)
    # Width first, then height: the order of TF's kernel and of torch's weights (matters only at 1 ulp).
    if w != size:
        x = _resize_axis(x, 2, *axis_fn(w, size), tf_form=tf_form)
    if h != size:
        x = _resize_axis(x, 1, *axis_fn(h, size), tf_form=tf_form)
    return x


def preprocess_for_inception(images, mode: str = "tf1", size: int = INCEPTION_SIZE) -> jax.Array:
    """Resize and normalise images for :class:`FIDInceptionV3`. Jittable (mode, size and shapes are static).

    Args:
      images: [N, H, W, C], C in {1, 3} (1 is repeated to RGB); uint8 in [0, 255] or float in [0, 1].
      mode: ``"tf1"`` -- TF1 legacy bilinear (src = dst * in / out; what TTUR / torch-fidelity / the OpenAI
        evaluator get from the TF graph) on 0..255 values, then (x - 128) / 128; or ``"pytorch_fid"`` -- torch
        half-pixel bilinear (``F.interpolate(align_corners=False)``, no antialias) on [0, 1] values, then
        2x - 1. Both are the identity resize when H = W = size.
      size: output side (299 for the standard features).
    Returns: [N, size, size, 3] float32 in about [-1, 1].
    """
    if mode not in RESIZE_MODES:
        raise GMJaxError(f"unknown Inception resize mode {mode!r}; use one of {', '.join(RESIZE_MODES)}")
    _check_images(images, "preprocess_for_inception")
    if size < INCEPTION_MIN_SIZE:
        raise GMJaxError(f"Inception input size must be >= {INCEPTION_MIN_SIZE}, got {size}; use 299")
    is_uint8 = images.dtype == np.uint8
    x = jnp.asarray(images).astype(jnp.float32)
    if mode == "tf1":
        x = x if is_uint8 else x * 255.0  # TF's graph resizes 0..255 floats
        x = (resize_bilinear(x, size, mode) - 128.0) / 128.0
    else:
        x = x / 255.0 if is_uint8 else x  # pytorch-fid resizes ToTensor()'s [0, 1] floats
        x = 2.0 * resize_bilinear(x, size, mode) - 1.0
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    return x


def inception_apply(variables, images, resize: Optional[str] = "tf1") -> Dict[str, jax.Array]:
    """FID Inception features of a batch. Pure and jittable (``static_argnames="resize"``).

    Args:
      variables: {"params", "batch_stats"} from
        :func:`~gm_jax.metrics.inception_weights.load_inception_variables` (or
        :func:`~gm_jax.metrics.inception_weights.init_inception_variables` for tests).
      images: [N, H, W, C] uint8 / float in [0, 1] (see :func:`preprocess_for_inception`); with
        ``resize=None`` already-preprocessed float [N, H, W, 3] in about [-1, 1], H, W >= 75.
      resize: ``"tf1"`` (default), ``"pytorch_fid"`` or None.
    Returns: {"block_64": [N, 64], "block_192": [N, 192], "block_768": [N, 768], "pool3": [N, 2048],
      "logits_unbiased": [N, 1008], "logits": [N, 1008]} float32. FID/KID/PRDC use "pool3", the Inception
      Score "logits_unbiased" (no fc bias, as the TF graph's softmax/logits/MatMul).
    """
    if not isinstance(variables, Mapping) or "params" not in variables or "batch_stats" not in variables:
        raise GMJaxError("inception variables must be a dict with 'params' and 'batch_stats'; load them with "
                         "gm_jax.metrics.load_inception_variables()")
    if resize is None:
        _check_images(images, "inception_apply")
        if images.shape[-1] != 3 or not jnp.issubdtype(images.dtype, jnp.floating):
            raise GMJaxError(f"inception_apply(resize=None) expects preprocessed float [N, H, W, 3], got "
                             f"{images.dtype} {images.shape}; pass resize='tf1' for raw images")
        x = jnp.asarray(images, jnp.float32)
    else:
        x = preprocess_for_inception(images, mode=resize)
    return _MODEL.apply(variables, x)
