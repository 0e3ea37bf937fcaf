"""Shared input validation and the local float64 switch for the feature-space metrics."""

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
