"""Shared pieces of the metrics: input validation, the local float64 switch, opening ``.npz`` files, and the
feature-network weight files (one ``.npz`` of flat "/"-joined variable names plus a JSON metadata entry, written
atomically)."""

from __future__ import annotations

import zipfile

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


def features(x, name: str, min_rows: int = 1, fn: str | None = None) -> np.ndarray:
    """Validate a feature matrix [N, D] (any real dtype, numpy or JAX) and return it as numpy float64.

    ``fn`` (the public function checking its argument ``name``) starts every error message. NaN or inf is
    refused: one non-finite feature turns FID/KID into NaN or, worse, into a finite wrong number (PRDC's
    comparisons with NaN are simply false).
    """
    where = f"{fn}: {name}" if fn else name
    x = np.asarray(jax.device_get(x))
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise GMJaxError(f"{where} must be a real-valued feature array [N, D], got dtype {x.dtype}")
    if x.ndim != 2:
        raise GMJaxError(f"{where} must have shape [N, D] (one feature vector per row), got shape {x.shape}; "
                         f"flatten it with x.reshape(len(x), -1)")
    if x.shape[0] < min_rows:
        raise GMJaxError(f"{where} needs at least {min_rows} rows (samples), got {x.shape[0]}; pass more samples")
    x = x.astype(np.float64)
    bad = x.size - int(np.count_nonzero(np.isfinite(x)))
    if bad:
        rows = int(np.count_nonzero(~np.isfinite(x).all(axis=1)))
        raise GMJaxError(f"{where} has {bad} NaN or inf values (in {rows} of {x.shape[0]} rows); check the "
                         f"inputs of the feature network, or drop those rows")
    return x


def same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str, fn: str | None = None) -> None:
    if a.shape[1] != b.shape[1]:
        where = f"{fn}: " if fn else ""
        raise GMJaxError(f"{where}{name_a} and {name_b} must have the same feature dimension, got {a.shape[1]} and "
                         f"{b.shape[1]}; extract both with the same network layer")


def one_line(e: BaseException) -> str:
    """An exception as ``Type: message`` on one line (PIL and zipfile messages may hold newlines)."""
    return " ".join(f"{type(e).__name__}: {e}".split())


def open_npz(path: str, remedy: str):
    """``np.load(path)`` as an NpzFile, or GMJaxError (ending with ``remedy``) when the file is not a readable
    ``.npz``. np.load's own errors mislead here: text reads as "pickled data" (with advice to unpickle it) and a
    ``.npy`` file loads as a bare array."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise GMJaxError(f"{path} holds a single .npy array, not an .npz archive of named arrays; {remedy}")
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise GMJaxError(f"{path} is not an .npz archive (it does not start like a zip file); {remedy}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise GMJaxError(f"{path}: cannot read it as an .npz archive ({one_line(e)}); {remedy}") from None


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
