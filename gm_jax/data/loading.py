"""Dataset access: TFDS builders read through ``tfds.data_source`` (array_record, no TensorFlow).

``load_dataset`` prepares a dataset on first use into a cache directory and returns a :class:`Dataset`
whose splits are random-access sources of integer (images) or float (points) examples. Batches are
chosen by :func:`batch_indices`, a pure function of (seed, step), so the data position of a run is its
step and a resumed run sees exactly the batches the uninterrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
from typing import Any, Mapping

import numpy as np

from gm_jax.errors import GMJaxError

__all__ = ["EMBEDDED", "DataSpec", "Dataset", "default_data_dir", "load_dataset", "batch_indices"]

EMBEDDED = ("digits", "digits2inverted", "shakespeare") + tuple(f"toy2d/{n}" for n in
                               ("eight_gaussians", "checkerboard", "rings", "moons", "two_spirals", "pinwheel"))


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about the data.

    Attributes:
      name: dataset name, e.g. ``digits`` or ``toy2d/moons``.
      kind: ``"image"`` (integer pixels, NHWC), ``"points"`` (float vectors) or ``"text"`` (integer
        tokens [T]).
      shape: shape of one example, e.g. (8, 8, 1), (2,) or (256,).
      num_levels: number of discrete values of a pixel (17 for digits, 256 for 8-bit) or of a token (the
        vocabulary size), None for points.
      num_classes: number of labels, 0 when the data has none.
      vocabulary: for text, the string whose i-th character is token i (to decode samples); else None.
      second_domain: the examples also hold ``image_b``, an image of a second domain, unaligned with
        ``image`` (two-domain translation datasets such as ``cycle_gan/horse2zebra``; see
        :mod:`gm_jax.data.domains`).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    num_levels: int | None
    num_classes: int
    vocabulary: str | None = None
    second_domain: bool = False

    @property
    def num_dims(self) -> int:
        return int(np.prod(self.shape))

    @property
    def data_key(self) -> str:
        return {"image": "image", "text": "text"}.get(self.kind, "point")


@dataclasses.dataclass
class Dataset:
    spec: DataSpec
    splits: Mapping[str, Any]  # split name -> random-access source of dict examples

    def size(self, split: str) -> int:
        return len(self.splits[split])

    def read(self, split: str, indices=None) -> dict[str, np.ndarray]:
        """Reads examples (all when ``indices`` is None) into a dict of stacked numpy arrays."""
        source = self.splits[split]
        if indices is None:
            indices = np.arange(len(source))
        indices = [int(i) for i in np.asarray(indices)]
        records = source.__getitems__(indices) if hasattr(source, "__getitems__") else [source[i] for i in indices]
        keys = [k for k in (self.spec.data_key, "label") if self.spec.num_classes or k != "label"]
        if self.spec.second_domain and records and "image_b" in records[0]:  # not the single-domain splits
            keys.append("image_b")
        try:
            return {k: np.stack([np.asarray(r[k]) for r in records]) for k in keys}
        except ValueError:  # np.stack of differently shaped images
            shapes = sorted({tuple(np.shape(r[k])) for r in records for k in keys if k != "label"})
            raise GMJaxError(f"{self.spec.name}:{split} holds images of different sizes {shapes[:3]}; gm-jax "
                             f"needs one size ({tuple(self.spec.shape)})") from None


def default_data_dir() -> str:
    """``$GM_JAX_DATA_DIR``, else ``~/.cache/gm_jax/datasets``."""
    return os.environ.get("GM_JAX_DATA_DIR", os.path.join(os.path.expanduser("~"), ".cache", "gm_jax", "datasets"))


@contextlib.contextmanager
def _quiet_tfds():
    """TFDS prints progress bars and INFO lines while preparing; keep the user's terminal clean."""
    from tensorflow_datasets.core.utils import tqdm_utils

    bar = tqdm_utils._active
    tqdm_utils.display_progress_bar(False)
    logging.disable(logging.WARNING)  # absl and urllib3 warnings
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)
        tqdm_utils.display_progress_bar(bar)


def _internet_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """A quick name lookup, so a machine without internet fails in a second, not after minutes of retries."""
    import socket

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(old)


def _register_builders():
    # Importing the modules registers their builders with TFDS under "digits", "digits2inverted", "toy2d" and
    # "shakespeare".
    from gm_jax.data import digits, domains, text, toy2d  # noqa: F401


def load_dataset(name: str, data_dir: str | None = None, download: bool = True) -> Dataset:
    """Prepares (on first use) and opens a dataset.

    Args:
      name: ``digits``, ``shakespeare``, ``toy2d/<name>`` or any TFDS catalog name (``mnist``, ``cifar10``, ...).
      data_dir: cache directory; default :func:`default_data_dir`.
      download: whether a catalog dataset that is not prepared may be downloaded and prepared.

    Raises:
      GMJaxError: unknown name, or a catalog dataset that is neither prepared nor downloadable.
    """
    import tensorflow_datasets as tfds

    _register_builders()
    data_dir = data_dir or default_data_dir()
    check_data_dir(data_dir)
    if name.startswith("toy2d/"):
        from gm_jax.data import toy2d

        toy2d._check_name(name.split("/", 1)[1])
    try:
        with _quiet_tfds():
            builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except Exception as e:  # tfds raises several types (DatasetNotFoundError, ValueError, ...)
        raise GMJaxError(f"unknown dataset '{name}' ({type(e).__name__}); use one of {', '.join(EMBEDDED)} "
                         "or a TFDS catalog name such as mnist or cifar10") from None
    with _quiet_tfds():
        prepared = builder.is_prepared()
    if not prepared:
        embedded = name in EMBEDDED
        try:
            if not embedded and not download:
                raise RuntimeError("downloads are disabled")
            if not embedded and not _internet_reachable():
                raise RuntimeError("no internet connection")
            with _quiet_tfds():
                builder.download_and_prepare(file_format="array_record")
        except Exception as e:
            if _prepared_meanwhile(name, data_dir):  # another process (or host) prepared it first
                return load_dataset(name, data_dir, download=False)
            raise GMJaxError(
                f"dataset '{name}' is not prepared in {data_dir} and could not be prepared here "
                f"({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'no detail'}); on a machine "
                f"with internet run `python -c \"import tensorflow_datasets as t; t.builder('{name}', "
                f"data_dir='{data_dir}', file_format='array_record').download_and_prepare()\"` "
                "and copy the directory here, or pass --data-dir") from None
    with _quiet_tfds():
        splits = builder.as_data_source()
    from gm_jax.data.domains import TWO_DOMAIN_SPLITS, two_domain_splits

    if set(TWO_DOMAIN_SPLITS) <= set(splits):
        return Dataset(spec=_spec_from_info(name, builder.info, two_domain=splits["trainA"]),
                       splits=two_domain_splits(splits))
    return Dataset(spec=_spec_from_info(name, builder.info), splits=splits)


def check_data_dir(data_dir: str | None) -> None:
    """Raises one line if ``data_dir`` exists but is not a directory (a cache folder is made when missing)."""
    if data_dir and os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise GMJaxError(f"data directory {data_dir} is a file, not a folder; pass a folder as --data-dir "
                         "(or set GM_JAX_DATA_DIR to one)")


def _prepared_meanwhile(name: str, data_dir: str) -> bool:
    import tensorflow_datasets as tfds

    with _quiet_tfds():
        return tfds.builder(name, data_dir=data_dir, file_format="array_record").is_prepared()


def _spec_from_info(name: str, info, two_domain=None) -> DataSpec:
    """The DataSpec of a TFDS dataset; ``two_domain``: its trainA source, for a two-domain dataset (whose
    images' size is that of the first A image where the catalog leaves it open, as cycle_gan's does; its
    labels name the domain and are dropped)."""
    features = info.features
    metadata = info.metadata or {}
    if "text" in features:
        shape = tuple(features["text"].shape)
        return DataSpec(name=name, kind="text", shape=shape, num_levels=int(metadata["num_levels"]),
                        num_classes=0, vocabulary=metadata.get("vocabulary"))
    if "image" in features:
        shape = tuple(features["image"].shape)
        if None in shape and two_domain is not None and len(two_domain):
            shape = tuple(np.shape(two_domain[0]["image"]))
        if None in shape:
            raise GMJaxError(f"dataset '{name}' has images of varying size {shape}; gm-jax needs a fixed size")
        num_levels = int(info.metadata.get("num_levels", 256)) if info.metadata else 256
        kind = "image"
    elif "point" in features:
        shape, num_levels, kind = tuple(features["point"].shape), None, "points"
    else:
        raise GMJaxError(f"dataset '{name}' has no 'image', 'point' or 'text' feature "
                         f"(features: {', '.join(features.keys())})")
    if two_domain is not None:
        if kind != "image":
            raise GMJaxError(f"dataset '{name}' has the two-domain splits trainA, trainB, testA and testB but no "
                             "images")
        return DataSpec(name=name, kind=kind, shape=shape, num_levels=num_levels, num_classes=0, second_domain=True)
    num_classes = features["label"].num_classes if "label" in features else 0
    return DataSpec(name=name, kind=kind, shape=shape, num_levels=num_levels, num_classes=num_classes)


def batch_indices(seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
    """Indices [batch_size] of the examples of global batch ``step``: epoch-wise shuffling without replacement.

    Epoch e uses the permutation drawn from ``numpy.random.default_rng((seed, e))``; each epoch yields
    ``num_examples // batch_size`` batches (the remainder is dropped), so the result depends on
    (seed, step) only.
    """
    if batch_size > num_examples:
        raise GMJaxError(f"batch_size {batch_size} exceeds the {num_examples} training examples; "
                         "lower it with --set batch_size=N")
    per_epoch = num_examples // batch_size
    epoch, i = divmod(int(step), per_epoch)
    perm = _epoch_permutation(seed, epoch, num_examples)
    return perm[i * batch_size:(i + 1) * batch_size]


@functools.lru_cache(maxsize=2)  # a run needs one epoch at a time; memoised so steps don't redraw it
def _epoch_permutation(seed, epoch, n):
    perm = np.random.default_rng((seed, epoch)).permutation(n).astype(np.int32)
    perm.flags.writeable = False
    return perm
