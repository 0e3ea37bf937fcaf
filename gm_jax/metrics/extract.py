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
import zipfile
import zlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from gm_jax import parallel
from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import one_line, open_npz

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
    if np.issubdtype(x.dtype, np.inexact):
        # NaN passes the range check below (comparisons with NaN are false) and yields a finite, wrong FID.
        finite = np.isfinite(x)
        bad = x.size - int(np.count_nonzero(finite))
        if bad:
            rows = len(x) - int(np.count_nonzero(finite.reshape(len(x), -1).all(axis=1)))
            raise GMJaxError(f"{description}: {bad} values in {rows} of {len(x)} examples are NaN or inf; "
                             f"drop those examples or fix the sampler that produced them")
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
    remedy = "write the examples with np.savez(path, images=x) or `gm-jax sample --out FILE.npz`"
    with open_npz(path, remedy) as f:
        try:
            x, num_levels = _npz_examples(f, path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # a damaged member
            raise GMJaxError(f"{path}: cannot read it as an .npz archive ({one_line(e)}); {remedy}") from None
    return array_source(x, None if x.ndim == 2 else num_levels, description=path)


def _npz_examples(f, path: str):
    """(examples, num_levels) from an open NpzFile (see :func:`npz_source` for the keys)."""
    names = [k for k in ("images", "samples") if k in f.files]
    arrays = [k for k in f.files if k != "num_levels"]
    if "mu" in f.files and "sigma" in f.files:
        raise GMJaxError(f"{path} holds FID statistics (mu, sigma), not examples; they serve only --metrics fid")
    if not names and len(arrays) != 1:
        raise GMJaxError(f"{path} holds {', '.join(f.files) or 'nothing'}; save the examples under the key "
                         "'images' (or 'samples')")
    key = names[0] if names else arrays[0]
    x = f[key]
    if not isinstance(x, np.ndarray):  # NpzFile returns a member without the .npy header as raw bytes
        raise GMJaxError(f"{path}: its member '{key}' is not a .npy array; save the examples with "
                         "np.savez(path, images=x)")
    if "num_levels" not in f.files:
        return x, 256
    levels = f["num_levels"]
    if levels.shape != () or not np.issubdtype(levels.dtype, np.integer) or levels < 2:
        raise GMJaxError(f"{path}: num_levels must be one integer >= 2 (e.g. 256 for 8-bit pixels), got "
                         f"{levels.dtype} {levels.shape} {levels.ravel()[:3]}; save it as num_levels=256")
    return x, int(levels)


def _read_image(file: str) -> tuple[np.ndarray, int]:
    """One image file as (float32 pixels [H, W, C] in [0, 1], bit depth 8 or 16).

    8-bit greyscale (PIL mode ``L``) gives one channel divided by 255; 16-bit greyscale (``I;16*``, and ``I``,
    as older Pillow opens 16-bit PNGs) one channel divided by 65535 (``convert("RGB")`` would clip it to 0/255);
    everything else is converted to 8-bit RGB. A file PIL cannot decode raises GMJaxError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            if im.mode.startswith("I;16") or im.mode == "I":
                a, bits = np.asarray(im).astype(np.int64), 16
            else:
                a, bits = np.asarray(im if im.mode == "L" else im.convert("RGB")), 8
    except UnidentifiedImageError:
        raise GMJaxError(f"{file} is not an image file PIL can read; remove it from the directory or re-save it "
                         "as PNG") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or corrupt data (PIL's own types)
        raise GMJaxError(f"{file}: cannot decode the image ({one_line(e)}); remove it from the directory or "
                         "re-save it as PNG") from None
    if bits == 16 and (a.min() < 0 or a.max() > 65535):  # mode "I" is 32-bit in general
        raise GMJaxError(f"{file} holds values in [{a.min()}, {a.max()}], outside 16-bit 0..65535; save the "
                         "images as 8-bit or 16-bit PNG")
    a = a.astype(np.float32) / (65535.0 if bits == 16 else 255.0)
    return (a[..., None] if a.ndim == 2 else a), bits


def directory_source(path: str) -> RowSource:
    """Image files (png, jpg, bmp, webp) in a directory, read lazily in sorted-name order, scaled to [0, 1].

    8-bit greyscale files give one channel, 16-bit greyscale ones one channel divided by 65535, everything else
    8-bit RGB; all files must have one size, mode and bit depth (mixed depths usually mean mixed sources).
    Unreadable files raise GMJaxError naming the file.
    """
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise GMJaxError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in directory '{path}'")
    first, first_bits = _read_image(os.path.join(path, names[0]))

    def read(idx):
        images = []
        for i in idx:
            file = os.path.join(path, names[i])
            a, bits = _read_image(file)
            if a.shape != first.shape:
                raise GMJaxError(f"{file} is {a.shape}, but {names[0]} is {first.shape}; all images of a directory "
                                 "must have one size and mode")
            if bits != first_bits:
                raise GMJaxError(f"{file} is {bits}-bit, but {names[0]} is {first_bits}-bit; convert the "
                                 "directory's images to one bit depth")
            images.append(a)
        return np.stack(images)

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


def _select(out: dict, keys: tuple[str, ...]) -> dict:
    missing = [k for k in keys if k not in out]
    if missing:
        raise GMJaxError(f"the feature network has no output {', '.join(missing)}; it has {', '.join(out)}")
    return {k: out[k] for k in keys}


def _stream(num: int, batch_size: int, run_batch: Callable[[int, int], dict], desc: str | None = None) -> dict:
    """Runs ``run_batch(i, lo)`` for each padded batch and concatenates the first ``num`` rows on the host;
    with ``desc``, a progress bar on stderr counts the rows."""
    chunks, pending = [], None
    bar = tqdm(total=num, desc=desc, unit="ex", leave=False, dynamic_ncols=True,
               disable=desc is None or jax.process_index() != 0)
    with bar:  # closed (and cleared) on an error too, so the error line starts on a clean line
        for i, lo in enumerate(range(0, num, batch_size)):
            result = (run_batch(i, lo), min(batch_size, num - lo))  # dispatch i before fetching i - 1
            if pending is not None:
                chunks.append({k: parallel.to_host(v)[:pending[1]] for k, v in pending[0].items()})
                bar.update(pending[1])
            pending = result
        chunks.append({k: parallel.to_host(v)[:pending[1]] for k, v in pending[0].items()})
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
                    keys: Sequence[str] | None = None, num: int | None = None, *,
                    progress: bool = False) -> dict[str, np.ndarray]:
    """Features of the first ``num`` (default all) examples of ``source`` (``progress``: a bar on stderr).

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

    return _stream(num, bs, run_batch, f"{extractor.name} features of {source.description}" if progress else None)


@functools.lru_cache(maxsize=16)
def _jit_sampler(apply, sample_fn, per_device: int, keys, mesh):
    def one_device(fv, sv, key):
        key = jax.random.fold_in(key, jax.lax.axis_index(parallel.DATA_AXIS))
        return _select(apply(fv, sample_fn(sv, key, per_device)), keys)

    # check_vma=False: samplers may use while loops (adaptive ODE solvers) the replication checker rejects.
    return jax.jit(jax.shard_map(one_device, mesh=mesh, in_specs=(P(), P(), P()), out_specs=P(parallel.DATA_AXIS),
                                 check_vma=False))


def sampler_features(extractor: FeatureExtractor, sample_fn: Callable, sample_variables, key, num: int,
                     batch_size: int = 200, mesh=None, keys: Sequence[str] | None = None, *,
                     progress: bool | str = False) -> dict[str, np.ndarray]:
    """Features of ``num`` samples drawn and embedded on the devices, batch by batch (``progress``: a bar
    on stderr; a string labels it).

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
    return _stream(num, bs, lambda i, lo: fn(fvars, svars, jax.random.fold_in(key, i)),
                   progress if isinstance(progress, str) else
                   f"sampling and {extractor.name} features" if progress else None)
