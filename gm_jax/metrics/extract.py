"""Streaming, mesh-sharded feature extraction for the sample-quality metrics (FID, IS, KID, PRDC).

A :class:`FeatureExtractor` is a pure map ``apply(variables, images) -> {name: [B, D]}`` with its variables:
the FID Inception network (:func:`inception_extractor`), a small classifier trained on the domain
(:func:`gm_jax.metrics.domain.domain_extractor`, which builds on this module), or the data itself
(:func:`raw_extractor`, for 2-D points). Images enter every extractor as float32 ``[B, H, W, C]`` in [0, 1];
points as float32 ``[B, D]``.

Examples come from a :class:`RowSource` (an array, a ``.npz``, a directory of image files or a dataset split;
read ``batch_size`` rows at a time, so the images never need to fit in memory) or straight from a sampler
(:func:`sampler_features`), whose batches are generated and embedded inside one jitted call and never leave
the devices. Each batch is padded to a fixed size (one compilation), sharded over the mesh's data axis with
the variables replicated, and only the [B, D] features come back to the host. Batch ``i + 1`` is dispatched
before batch ``i`` is fetched, so host reading overlaps device work.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from gm_jax import parallel
from gm_jax.errors import GMJaxError

__all__ = ["IMAGE_SUFFIXES", "FeatureExtractor", "raw_extractor", "inception_extractor", "RowSource",
           "to_unit_interval", "array_source", "npz_source", "directory_source", "dataset_source",
           "source_features", "sampler_features"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """A jittable feature map and its variables.

    Attributes:
      name: ``inception``, ``domain`` or ``raw``.
      apply: ``(variables, x) -> {output name: [B, D]}``; x is float32 images [B, H, W, C] in [0, 1] (or
        points [B, D]). Must be a pure function of its arguments (no batch statistics).
      variables: the network's variables (None for ``raw``).
      features_key: the output FID, KID and PRDC use (``pool3`` for Inception).
      logits_key: the class logits IS uses (``logits_unbiased`` for Inception), None without a classifier.
    """

    name: str
    apply: Callable[[Any, jax.Array], dict]
    variables: Any
    features_key: str
    logits_key: str | None = None


def _flatten(variables, x):
    del variables
    return {"raw": x.reshape(x.shape[0], -1).astype(jnp.float32)}


def raw_extractor() -> FeatureExtractor:
    """The examples themselves, flattened: the right features for low-dimensional data such as toy2d points."""
    return FeatureExtractor("raw", _flatten, None, "raw")


def inception_extractor(path: str | None = None, resize: str = "tf1") -> FeatureExtractor:
    """The FID InceptionV3 (pool3 features, unbiased logits for IS); weights from ``gm-jax inception ...``."""
    from gm_jax.metrics.inception import RESIZE_MODES, inception_apply
    from gm_jax.metrics.inception_weights import load_inception_variables

    if resize not in RESIZE_MODES:
        raise GMJaxError(f"unknown resize mode '{resize}'; use one of {', '.join(RESIZE_MODES)}")
    return FeatureExtractor("inception", functools.partial(inception_apply, resize=resize),
                            load_inception_variables(path), "pool3", "logits_unbiased")


# ----------------------------------------------------------------------------------------------- sources


@dataclasses.dataclass(frozen=True)
class RowSource:
    """Random-access examples: ``read(indices [n]) -> float32 [n, *shape]`` (images scaled to [0, 1])."""

    num: int
    shape: tuple[int, ...]
    read: Callable[[np.ndarray], np.ndarray]
    description: str


def to_unit_interval(x, num_levels: int | None):
    """Pixels to float32 [0, 1]: integer levels are divided by ``num_levels - 1``; floats are kept.

    Works on numpy and JAX arrays. ``num_levels=None`` keeps the values (points).
    """
    xp = jnp if isinstance(x, jax.Array) else np
    if num_levels is None or not xp.issubdtype(x.dtype, xp.integer):
        return x.astype(xp.float32)
    return x.astype(xp.float32) / float(num_levels - 1)


def array_source(x: np.ndarray, num_levels: int | None = 256, description: str = "array") -> RowSource:
    """Examples held in an array [N, ...]: images [N, H, W, C] (integer levels 0..num_levels-1, or floats in
    [0, 1]) or points [N, D] (``num_levels=None``, any floats)."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise GMJaxError(f"{description}: expected examples [N, ...] with N >= 1, got shape {x.shape}")
    if num_levels is not None:
        if x.ndim == 3:  # grey images without a channel axis
            x = x[..., None]
        if x.ndim != 4:
            raise GMJaxError(f"{description}: images must be [N, H, W, C], got shape {x.shape}")
        lo, hi = (0, num_levels - 1) if np.issubdtype(x.dtype, np.integer) else (0.0, 1.0)
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise GMJaxError(f"{description}: images must be integers or floats, got dtype {x.dtype}")
        if x.min() < lo or x.max() > hi:
            raise GMJaxError(f"{description}: pixel values span [{x.min()}, {x.max()}], outside [{lo}, {hi}] for "
                             f"{x.dtype}; pass integer levels 0..{num_levels - 1} or floats in [0, 1]")
    return RowSource(len(x), x.shape[1:], lambda idx: to_unit_interval(x[idx], num_levels), description)


def npz_source(path: str) -> RowSource:
    """An ``.npz`` of examples: key ``images``, ``samples`` (as written by ``gm-jax sample``) or its only array.

    Integer images are read as 8-bit (0..255) unless the file holds ``num_levels`` (``gm-jax sample`` stores
    it); float images must lie in [0, 1]. A 2-D array is taken as points.
    """
    if not os.path.isfile(path):
        raise GMJaxError(f"no such file '{path}'")
    with np.load(path) as f:
        names = [k for k in ("images", "samples") if k in f.files]
        arrays = [k for k in f.files if k != "num_levels"]
        if "mu" in f.files and "sigma" in f.files:
            raise GMJaxError(f"{path} holds FID statistics (mu, sigma), not examples; they serve only --metrics fid")
        if not names and len(arrays) != 1:
            raise GMJaxError(f"{path} holds {', '.join(f.files) or 'nothing'}; save the examples under the key "
                             "'images' (or 'samples')")
        x = f[names[0] if names else arrays[0]]
        num_levels = int(f["num_levels"]) if "num_levels" in f.files else 256
    return array_source(x, None if x.ndim == 2 else num_levels, description=path)


def directory_source(path: str) -> RowSource:
    """Image files (png, jpg, bmp, webp) in a directory, read lazily in sorted-name order as 8-bit pixels.

    Greyscale files give one channel, everything else RGB; all files must have one size.
    """
    from PIL import Image

    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise GMJaxError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in directory '{path}'")

    def load(name):
        with Image.open(os.path.join(path, name)) as im:
            im = im if im.mode == "L" else im.convert("RGB")
            a = np.asarray(im)
        return a[..., None] if a.ndim == 2 else a

    first = load(names[0])

    def read(idx):
        images = [load(names[i]) for i in idx]
        for i, a in zip(idx, images):
            if a.shape != first.shape:
                raise GMJaxError(f"{os.path.join(path, names[i])} is {a.shape}, but {names[0]} is {first.shape}; "
                                 "all images of a directory must have one size and mode")
        return np.stack(images).astype(np.float32) / 255.0

    return RowSource(len(names), first.shape, read, path)


def dataset_source(dataset, split: str = "train") -> RowSource:
    """A split of a :class:`gm_jax.data.Dataset` (images scaled by its ``num_levels``; points kept)."""
    spec = dataset.spec
    if spec.kind not in ("image", "points"):
        raise GMJaxError(f"{spec.name} holds {spec.kind}; sample-quality metrics need images or points")
    if split not in dataset.splits:
        raise GMJaxError(f"{spec.name} has no split '{split}'; use one of {', '.join(dataset.splits)}")
    levels = spec.num_levels if spec.kind == "image" else None
    return RowSource(dataset.size(split), tuple(spec.shape),
                     lambda idx: to_unit_interval(dataset.read(split, idx)[spec.data_key], levels),
                     f"{spec.name}:{split}")


# ----------------------------------------------------------------------------------------------- extraction


def _batch_size(batch_size: int, num: int, mesh) -> int:
    """The fixed (padded) batch: at most ``batch_size``, at most ``num`` rounded up, a multiple of the devices."""
    if batch_size < 1:
        raise GMJaxError(f"batch_size must be >= 1, got {batch_size}")
    return -(-min(batch_size, num) // mesh.size) * mesh.size


def _to_host(x) -> np.ndarray:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))


def _select(out: dict, keys: tuple[str, ...]) -> dict:
    missing = [k for k in keys if k not in out]
    if missing:
        raise GMJaxError(f"the feature network has no output {', '.join(missing)}; it has {', '.join(out)}")
    return {k: out[k] for k in keys}


def _stream(num: int, batch_size: int, run_batch: Callable[[int, int], dict]) -> dict:
    """Runs ``run_batch(i, lo)`` for each padded batch and concatenates the first ``num`` rows on the host."""
    chunks, pending = [], None
    for i, lo in enumerate(range(0, num, batch_size)):
        result = (run_batch(i, lo), min(batch_size, num - lo))  # dispatch i before fetching i - 1
        if pending is not None:
            chunks.append({k: _to_host(v)[:pending[1]] for k, v in pending[0].items()})
        pending = result
    chunks.append({k: _to_host(v)[:pending[1]] for k, v in pending[0].items()})
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


@functools.lru_cache(maxsize=16)
def _jit_rows(apply, keys, mesh):
    return jax.jit(lambda v, x: _select(apply(v, x), keys),
                   in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh)),
                   out_shardings=parallel.batch_sharding(mesh))


def _keys(extractor: FeatureExtractor, keys: Sequence[str] | None) -> tuple[str, ...]:
    if keys is None:
        keys = (extractor.features_key,) + ((extractor.logits_key,) if extractor.logits_key else ())
    return tuple(keys)


def source_features(extractor: FeatureExtractor, source: RowSource, batch_size: int = 200, mesh=None,
                    keys: Sequence[str] | None = None, num: int | None = None) -> dict[str, np.ndarray]:
    """Features of the first ``num`` (default all) examples of ``source``.

    Returns: {output name: float32 [num, D]} for ``keys`` (default: the extractor's features and logits).
    Each process reads only its own rows of each batch (multi-host), and the features are gathered.
    """
    mesh = mesh or parallel.make_mesh()
    num = source.num if num is None else min(int(num), source.num)
    if num < 1:
        raise GMJaxError(f"{source.description}: nothing to extract (num={num})")
    bs = _batch_size(batch_size, num, mesh)
    fn = _jit_rows(extractor.apply, _keys(extractor, keys), mesh)
    variables = parallel.put_replicated(extractor.variables, mesh)

    def run_batch(i, lo):
        idx = np.arange(lo, min(lo + bs, num))
        idx = np.pad(idx, (0, bs - len(idx)), mode="edge")
        return fn(variables, parallel.global_batch(source.read(parallel.local_rows(idx, mesh)), mesh))

    return _stream(num, bs, run_batch)


@functools.lru_cache(maxsize=16)
def _jit_sampler(apply, sample_fn, per_device: int, keys, mesh):
    def one_device(fv, sv, key):
        key = jax.random.fold_in(key, jax.lax.axis_index(parallel.DATA_AXIS))
        return _select(apply(fv, sample_fn(sv, key, per_device)), keys)

    # check_vma=False: samplers may use while loops (adaptive ODE solvers) the replication checker rejects.
    return jax.jit(jax.shard_map(one_device, mesh=mesh, in_specs=(P(), P(), P()), out_specs=P(parallel.DATA_AXIS),
                                 check_vma=False))


def sampler_features(extractor: FeatureExtractor, sample_fn: Callable, sample_variables, key, num: int,
                     batch_size: int = 200, mesh=None, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Features of ``num`` samples drawn and embedded on the devices, batch by batch.

    Args:
      sample_fn: ``(sample_variables, key, n) -> [n, ...]`` float32 in the extractor's input convention
        (images in [0, 1]); traced once per batch size. Pass the same function object for repeated calls
        to reuse the compiled step.
      key: batch i uses ``fold_in(key, i)``, and device d of the mesh ``fold_in(fold_in(key, i), d)``; so the
        samples depend on the key, the batch size and the device count.
    Returns: {output name: float32 [num, D]}.
    """
    mesh = mesh or parallel.make_mesh()
    if num < 1:
        raise GMJaxError(f"num must be >= 1 samples, got {num}")
    bs = _batch_size(batch_size, num, mesh)
    fn = _jit_sampler(extractor.apply, sample_fn, bs // mesh.size, _keys(extractor, keys), mesh)
    fvars = parallel.put_replicated(extractor.variables, mesh)
    svars = parallel.put_replicated(sample_variables, mesh)
    return _stream(num, bs, lambda i, lo: fn(fvars, svars, jax.random.fold_in(key, i)))
