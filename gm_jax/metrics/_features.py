"""Shared pieces of the metrics: input validation, the local float64 switch, and the feature-network weight
files (one ``.npz`` of flat "/"-joined variable names plus a JSON metadata entry, written atomically)."""

from __future__ import annotations

import jax
import numpy as np

from gm_jax.errors import GMJaxError


def x64():
    """Context manager enabling float64 in JAX for the enclosed computation only.

    The library runs with x64 disabled globally; the metrics enable it locally (``jax.enable_x64(True)``)
    because FID/KID/PRDC are differences or threshold comparisons of O(10^2-10^3) quantities where float32
    cancellation is visible at the 1e-5 level. Arrays are created *inside* the context and converted to numpy
    before leaving it, so no float64 JAX array escapes into float32 code.
    """
    return jax.enable_x64(True)


def features(x, name: str, min_rows: int = 1) -> np.ndarray:
    """Validate a feature matrix [N, D] (any real dtype, numpy or JAX) and return it as numpy float64."""
    x = np.asarray(jax.device_get(x))
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise GMJaxError(f"{name} must be a real-valued feature array [N, D], got dtype {x.dtype}")
    if x.ndim != 2:
        raise GMJaxError(f"{name} must have shape [N, D] (one feature vector per row), got shape {x.shape}; "
                         f"flatten it with x.reshape(len(x), -1)")
    if x.shape[0] < min_rows:
        raise GMJaxError(f"{name} needs at least {min_rows} rows (samples), got {x.shape[0]}; pass more samples")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise GMJaxError(f"{name} contains NaN or inf; check the feature extractor's input")
    return x


def same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise GMJaxError(f"{name_a} and {name_b} must have the same feature dimension, got {a.shape[1]} and "
                         f"{b.shape[1]}; extract both with the same network layer")


def default_weights_dir() -> str:
    """Where feature-network weights are cached: ``$GM_JAX_WEIGHTS_DIR``, else ``~/.cache/gm_jax/weights``.

    Nothing is downloaded into it implicitly: ``gm-jax inception convert|download`` and ``gm-jax domain train``
    write the files, and the metrics that need them say so when they are missing.
    """
    import os

    return os.environ.get("GM_JAX_WEIGHTS_DIR", os.path.join(os.path.expanduser("~"), ".cache", "gm_jax", "weights"))


WEIGHTS_METADATA_KEY = "__metadata__"


def save_weights_file(path: str, variables, metadata: dict) -> str:
    """Writes ``variables`` (a nested dict of arrays) and ``metadata`` (JSON-able) to ``path`` atomically.

    Layout: an ``.npz`` of the leaves under flat "/"-joined keys (``params/conv_0/kernel``) plus
    ``__metadata__``, a JSON string. The file is written under a temporary name in the same directory and
    renamed with ``os.replace``, so readers see the old file or the complete new one, never a partial one.
    Returns: path.
    """
    import json
    import os
    import tempfile

    from flax import traverse_util

    arrays = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(jax.device_get(dict(variables)),
                                                                       sep="/").items()}
    arrays[WEIGHTS_METADATA_KEY] = np.asarray(json.dumps(metadata))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:  # a file object, so np.savez adds no suffix
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_weights_file(path: str, remedy: str) -> tuple[dict, dict]:
    """Reads a file of :func:`save_weights_file`: (flat {"a/b/c": array}, metadata dict).

    ``remedy`` ends every error message (how to recreate the file). A missing file is the caller's to report.
    """
    import json

    try:
        with np.load(path, allow_pickle=False) as f:
            if WEIGHTS_METADATA_KEY not in f.files:
                raise GMJaxError(f"'{path}' is not a gm-jax weights file (no {WEIGHTS_METADATA_KEY}); {remedy}")
            metadata = json.loads(str(f[WEIGHTS_METADATA_KEY]))
            flat = {k: np.asarray(f[k]) for k in f.files if k != WEIGHTS_METADATA_KEY}
    except GMJaxError:
        raise
    except (OSError, ValueError) as e:
        raise GMJaxError(f"cannot read weights file '{path}' ({type(e).__name__}); {remedy}") from None
    return flat, metadata
