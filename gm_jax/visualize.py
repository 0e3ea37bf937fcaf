"""Pictures of samples: image grids and 2-D point histograms as PNG (pillow only), and text as text."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from gm_jax.data.loading import DataSpec

__all__ = ["save_samples", "save_samples_png", "samples_filename", "can_save_samples", "image_grid",
           "point_histogram", "samples_text"]


def image_grid(images: np.ndarray, num_levels: int, ncols: int | None = None, scale: int = 4) -> np.ndarray:
    """Integer images [N, H, W, C] in [0, K) -> one uint8 grid [rows*(H+1)+1, cols*(W+1)+1, C] scaled up."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1, c), 128, np.uint8)
    pix = np.round(images.astype(np.float64) * 255.0 / (num_levels - 1)).clip(0, 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = pix[i]
    return np.kron(grid, np.ones((scale, scale, 1), np.uint8))


def point_histogram(points: np.ndarray, extent: float = 4.5, bins: int = 200) -> np.ndarray:
    """2-D points [N, 2] -> uint8 image [bins, bins] of their log-scaled histogram over [-extent, extent]^2."""
    hist, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=bins, range=[[-extent, extent]] * 2)
    img = np.log1p(hist[::-1])
    return (255 - 255 * img / max(img.max(), 1e-12)).astype(np.uint8)


def save_samples_png(samples, spec: DataSpec, path: str, ncols: int | None = None) -> None:
    """Writes samples in data space as a PNG: an image grid (``ncols`` images per row; default about
    square), or a histogram of 2-D points."""
    samples = np.asarray(samples)
    if spec.kind == "image":
        arr = image_grid(samples, spec.num_levels, ncols)
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path)
    elif spec.shape == (2,):
        Image.fromarray(point_histogram(samples)).save(path)
    else:
        raise ValueError(f"cannot draw samples of shape {spec.shape} as a picture; save them as .npz")


def samples_text(samples, spec: DataSpec) -> str:
    """Token windows [N, T] -> their decoded text, one block per sample under a ``--- sample i ---`` line."""
    from gm_jax.data.text import decode

    if spec.vocabulary is None:
        raise ValueError(f"dataset {spec.name} has no vocabulary to decode its samples with")
    return "".join(f"--- sample {i} ---\n{decode(s, spec.vocabulary)}\n\n" for i, s in enumerate(np.asarray(samples)))


def samples_filename(spec: DataSpec) -> str:
    """Where the trainer writes samples of this data: ``samples.txt`` for text, else ``samples.png``."""
    return "samples.txt" if spec.kind == "text" else "samples.png"


def can_save_samples(spec: DataSpec) -> bool:
    """Whether :func:`save_samples` can write samples of this data (text, images or 2-D points)."""
    return spec.kind in ("text", "image") or spec.shape == (2,)


def save_samples(samples, spec: DataSpec, path: str) -> None:
    """Writes samples in data space: decoded text for text data, else a PNG (:func:`save_samples_png`)."""
    if spec.kind == "text":
        with open(path, "w", encoding="utf-8") as f:
            f.write(samples_text(samples, spec))
    else:
        save_samples_png(samples, spec, path)
