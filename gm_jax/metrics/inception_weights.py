"""The FID Inception V3 weights: pytorch-fid's state dict <-> Flax variables, and the local weight file.

pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (the TF ``inception-2015-12-05`` graph of Heusel et
al. 2017, ported by Seitzer) is converted once to a local ``.npz`` by :func:`convert_weights` /
:func:`download_weights` (``gm-jax inception convert|download``); nothing is downloaded implicitly.
:func:`load_inception_variables` reads it back for :func:`gm_jax.metrics.inception.inception_apply`.

- :func:`convert_state_dict` / :func:`to_state_dict`: the pure rename + layout change between torch and
  Flax (bit-exact round trip); no torch needed (:func:`gm_jax.metrics.torch_pickle.read_torch_state_dict`).
- :func:`init_inception_variables`: random variables of the right shapes, for tests and benchmarks.
- :func:`default_inception_weights_path`: ``<$GM_JAX_WEIGHTS_DIR or ~/.cache/gm_jax/weights>/fid_inception_v3.npz``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import Any, Dict, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import default_weights_dir, read_weights_file, save_weights_file
from gm_jax.metrics.inception import INCEPTION_SIZE
from gm_jax.metrics.torch_pickle import read_torch_state_dict
from gm_jax.nets.inception import INCEPTION_MIN_SIZE, FIDInceptionV3

__all__ = ["PYTORCH_FID_URL", "PYTORCH_FID_SHA256", "INCEPTION_WEIGHTS_FILE", "convert_state_dict",
           "to_state_dict", "convert_weights", "download_weights", "load_inception_variables",
           "init_inception_variables", "default_inception_weights_path"]

PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
PYTORCH_FID_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_WEIGHTS_FILE = "fid_inception_v3.npz"
_FORMAT = "gm_jax.fid_inception_v3/1"

_MODEL = FIDInceptionV3()


# ----------------------------------------------------------------------------------------------------------
# Variables <-> pytorch-fid state dict


def _flatten(tree: Mapping) -> Dict[str, Any]:
    return traverse_util.flatten_dict(dict(tree), sep="/")


def _unflatten(flat: Mapping[str, Any]) -> Dict[str, Any]:
    return traverse_util.unflatten_dict(dict(flat), sep="/")


@functools.lru_cache(maxsize=1)
def _variable_shapes() -> Dict[str, Tuple[int, ...]]:
    """Flat "/"-joined variable name -> shape, from the model definition (jax.eval_shape: nothing is run)."""
    x = jax.ShapeDtypeStruct((1, INCEPTION_MIN_SIZE, INCEPTION_MIN_SIZE, 3), jnp.float32)
    shapes = jax.eval_shape(_MODEL.init, jax.random.key(0), x)
    return {k: tuple(v.shape) for k, v in _flatten(shapes).items()}


# flax leaf (collection, last two path parts) -> torch suffix; the rest of the path is shared.
_BN_MAP = {("params", "scale"): "weight", ("params", "bias"): "bias",
           ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}


def _torch_name(flax_key: str) -> Tuple[str, str]:
    """Flax flat key -> (torch key, transform) with transform in {"conv", "fc", "id"}."""
    collection, *path = flax_key.split("/")
    *module, leaf = path
    if module[-1] == "conv" and leaf == "kernel":
        return ".".join(module) + ".weight", "conv"
    if module == ["fc"]:
        return ("fc.weight", "fc") if leaf == "kernel" else ("fc.bias", "id")
    return ".".join(module) + "." + _BN_MAP[(collection, leaf)], "id"


def _to_torch_shape(shape, transform):
    if transform == "conv":  # HWIO -> OIHW
        return (shape[3], shape[2], shape[0], shape[1])
    return tuple(reversed(shape)) if transform == "fc" else tuple(shape)


@functools.lru_cache(maxsize=1)
def _torch_layout() -> "collections.OrderedDict[str, Tuple[str, str, Tuple[int, ...]]]":
    """torch key -> (flax key, transform, torch shape), for every variable of the model."""
    out = collections.OrderedDict()
    for fk, shape in _variable_shapes().items():
        tk, tr = _torch_name(fk)
        out[tk] = (fk, tr, _to_torch_shape(shape, tr))
    return out


def _few(names) -> str:
    names = sorted(names)
    return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")


def convert_state_dict(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """pytorch-fid / torch-fidelity Inception ``state_dict`` -> Flax variables (numpy float32, host memory).

    Pure rename + layout change: conv ``weight`` OIHW -> ``kernel`` HWIO (transpose(2, 3, 1, 0)); ``bn.weight``
    -> ``scale``, ``bn.bias`` -> ``bias`` (params); ``bn.running_mean/var`` -> ``mean/var`` (batch_stats);
    ``fc.weight`` [1008, 2048] -> ``fc/kernel`` [2048, 1008] (transposed), ``fc.bias`` -> ``fc/bias``.
    ``*.num_batches_tracked`` is ignored. Missing, unexpected or misshaped entries raise GMJaxError.
    Returns: {"params": ..., "batch_stats": ...} (470 BN/conv leaves + 2 fc leaves).
    """
    if not isinstance(state_dict, Mapping):
        raise GMJaxError(f"convert_state_dict expects a mapping name -> array, got {type(state_dict).__name__}")
    layout = _torch_layout()
    given = {k for k in state_dict if not str(k).endswith("num_batches_tracked")}
    missing, unexpected = set(layout) - given, given - set(layout)
    if missing or unexpected:
        parts = ([f"missing {len(missing)} keys: {_few(missing)}"] if missing else []) + (
            [f"unexpected {len(unexpected)} keys: {_few(unexpected)}"] if unexpected else [])
        raise GMJaxError(f"not a pytorch-fid Inception state dict ({'; '.join(parts)}); pass "
                         f"pt_inception-2015-12-05-6726825d.pth")
    flat = {}
    for tk, (fk, tr, shape) in layout.items():
        a = np.asarray(state_dict[tk])
        if a.shape != shape:
            raise GMJaxError(f"state dict entry {tk} has shape {a.shape}, expected {shape}; pass the FID Inception "
                             f"weights (pt_inception-2015-12-05-6726825d.pth)")
        if not np.issubdtype(a.dtype, np.floating):
            raise GMJaxError(f"state dict entry {tk} has dtype {a.dtype}, expected floats; the file is not the "
                             f"FID Inception weights")
        a = a.astype(np.float32, copy=False)
        if tr == "conv":
            a = a.transpose(2, 3, 1, 0)
        elif tr == "fc":
            a = a.T
        flat[fk] = np.ascontiguousarray(a)
    return _unflatten(flat)


def _check_variables(flat: Mapping[str, Any], where: str) -> None:
    expected = _variable_shapes()
    missing, unexpected = set(expected) - set(flat), set(flat) - set(expected)
    if missing or unexpected:
        raise GMJaxError(f"{where} does not match FIDInceptionV3 (missing: {_few(missing) or 'none'}; "
                         f"unexpected: {_few(unexpected) or 'none'}); reconvert with `gm-jax inception convert`")
    for k, shape in expected.items():
        if tuple(np.shape(flat[k])) != shape:
            raise GMJaxError(f"{where}: {k} has shape {tuple(np.shape(flat[k]))}, expected {shape}; reconvert "
                             f"with `gm-jax inception convert`")


def to_state_dict(variables: Mapping) -> "collections.OrderedDict[str, np.ndarray]":
    """Inverse of :func:`convert_state_dict`: Flax variables -> pytorch-fid key names and torch layouts.

    ``convert_state_dict(to_state_dict(v))`` reproduces ``v`` bit for bit (transposes only). No
    ``num_batches_tracked`` entries are written (torch-fidelity's converter writes none either).
    """
    flat = _flatten(variables)
    _check_variables(flat, "variables")
    out = collections.OrderedDict()
    for tk, (fk, tr, _) in _torch_layout().items():
        a = np.asarray(jax.device_get(flat[fk]), dtype=np.float32)
        if tr == "conv":
            a = a.transpose(3, 2, 0, 1)
        elif tr == "fc":
            a = a.T
        out[tk] = np.ascontiguousarray(a)
    return out


def init_inception_variables(key, size: int = INCEPTION_SIZE) -> Dict[str, Any]:
    """Random FIDInceptionV3 variables, for tests and benchmarks (not meaningful features).

    Conv kernels He-normal (std sqrt(2 / fan_in)), fc kernel LeCun-normal, biases 0, BN scale 1, mean 0, var 1.
    Shapes come from ``jax.eval_shape`` and all values from one normal draw: a jitted ``model.init`` would
    compile the whole forward (about a minute on CPU). ``size`` only needs to be a valid input side (the
    variables do not depend on it). Returns device (jax) arrays.
    """
    if size < INCEPTION_MIN_SIZE:
        raise GMJaxError(f"Inception input size must be >= {INCEPTION_MIN_SIZE}, got {size}; use 299")
    shapes = _variable_shapes()
    kernels = [k for k in shapes if k.endswith("/kernel")]
    total = sum(int(np.prod(shapes[k])) for k in kernels)
    z = np.asarray(jax.random.normal(key, (total,), jnp.float32))
    flat, pos = {}, 0
    for k, shape in shapes.items():
        if k.endswith("/kernel"):
            n = int(np.prod(shape))
            gain = 2.0 if k.split("/")[-2] == "conv" else 1.0
            flat[k] = (z[pos:pos + n] * np.sqrt(gain / np.prod(shape[:-1]))).reshape(shape).astype(np.float32)
            pos += n
        elif k.endswith("/scale") or k.endswith("/var"):
            flat[k] = np.ones(shape, np.float32)
        else:
            flat[k] = np.zeros(shape, np.float32)
    return jax.device_put(_unflatten(flat))


# ----------------------------------------------------------------------------------------------------------
# Weight files


def default_inception_weights_path() -> str:
    """``<default_weights_dir()>/fid_inception_v3.npz`` ($GM_JAX_WEIGHTS_DIR or ~/.cache/gm_jax/weights)."""
    return os.path.join(default_weights_dir(), INCEPTION_WEIGHTS_FILE)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_weights(src: str, dst: Optional[str] = None,
                    expected_sha256: Optional[str] = PYTORCH_FID_SHA256) -> str:
    """Convert pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` to this library's ``.npz``. No torch needed.

    Checks the SHA-256 of ``src`` first (``expected_sha256=None`` skips it, for other/random weights), reads
    it with :func:`gm_jax.metrics.torch_pickle.read_torch_state_dict`, converts with
    :func:`convert_state_dict` and writes ``dst`` (default :func:`default_inception_weights_path`) atomically:
    flat "/"-joined variable names -> float32 arrays, plus ``__metadata__`` (JSON: format, source SHA-256),
    by :func:`gm_jax.metrics._features.save_weights_file`.
    Returns: dst.
    """
    src = os.fspath(src)
    if not os.path.isfile(src):
        raise GMJaxError(f"Inception weights source not found at {src}; download {PYTORCH_FID_URL}")
    found = _sha256(src)
    if expected_sha256 is not None and found != expected_sha256.lower():
        raise GMJaxError(f"{src} has SHA-256 {found}, expected {expected_sha256}; download {PYTORCH_FID_URL} "
                         f"again (or pass expected_sha256=None for other weights)")
    variables = convert_state_dict(read_torch_state_dict(src))
    dst = default_inception_weights_path() if dst is None else os.fspath(dst)
    return save_weights_file(dst, variables, {"format": _FORMAT, "source_sha256": found,
                                              "source_file": os.path.basename(src)})


def download_weights(dst: Optional[str] = None, url: str = PYTORCH_FID_URL,
                     expected_sha256: Optional[str] = PYTORCH_FID_SHA256) -> str:
    """Download pytorch-fid's Inception weights (95.6 MB), check the SHA-256, convert them (:func:`convert_weights`).

    The download goes to a temporary file next to ``dst``, removed afterwards. Returns: dst.
    """
    dst = default_inception_weights_path() if dst is None else os.fspath(dst)
    d = os.path.dirname(os.path.abspath(dst))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".download-", suffix=".pth")
    try:
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError) as e:
            raise GMJaxError(f"could not download {url} ({e}); download it by hand and run "
                             f"`gm-jax inception convert FILE`") from None
        return convert_weights(tmp, dst, expected_sha256=expected_sha256)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_inception_variables(path: Optional[str] = None) -> Dict[str, Any]:
    """Load converted FID Inception weights (``.npz`` from :func:`convert_weights`) as device arrays.

    Default path: :func:`default_inception_weights_path`. Returns {"params", "batch_stats"} for
    :func:`gm_jax.metrics.inception.inception_apply`. A missing file raises GMJaxError saying how to obtain it.
    """
    path = default_inception_weights_path() if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise GMJaxError(f"FID Inception weights not found at {path}; run `gm-jax inception download` (needs "
                         f"internet) or download {PYTORCH_FID_URL} and run `gm-jax inception convert FILE`")
    flat, metadata = read_weights_file(path, "reconvert with `gm-jax inception convert FILE`")
    if metadata.get("format") != _FORMAT:
        raise GMJaxError(f"{path} has format {metadata.get('format')!r}, not converted FID Inception weights "
                         f"({_FORMAT!r}); reconvert with `gm-jax inception convert FILE`")
    _check_variables(flat, path)
    return jax.device_put(_unflatten(flat))
