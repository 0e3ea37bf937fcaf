"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", sec. 4 and app. D).

KID is the unbiased estimator of the squared MMD with the cubic polynomial kernel
``k(x, y) = (x·y / d + 1)^3``, averaged over random subsets, as in the original ``MMD-GAN/compute_scores.py``
(``mmd_est='unbiased'``), torch-fidelity, StyleGAN2-ADA and clean-fid:

    MMD^2 = sum_{i != j} k(x_i, x_j) / (m(m-1)) + sum_{i != j} k(y_i, y_j) / (n(n-1)) - 2 sum_{i,j} k(x_i, y_j) / (mn)

(the cross term keeps its diagonal). Subsets of ``subset_size`` rows are drawn without replacement,
independently for the two sets; all subsets are evaluated in one jitted float64 computation (``lax.map`` over
chunks of vmapped subsets). KID may be slightly negative for identical distributions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import features, same_dim, x64

__all__ = ["kid", "kid_subset_indices", "mmd2_unbiased"]


def _poly_kernel(a, b):
    d = a.shape[-1]
    return (jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST) / d + 1.0) ** 3


def _mmd2(x, y):
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (m * (m - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (n * (n - 1))
    return sxx + syy - 2.0 * jnp.sum(kxy) / (m * n)


_mmd2_jit = jax.jit(_mmd2)


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD^2 between samples x [m, D] and y [n, D] (m, n >= 2) with the KID cubic kernel, in float64."""
    x = features(x, "x", min_rows=2, fn="mmd2_unbiased")
    y = features(y, "y", min_rows=2, fn="mmd2_unbiased")
    same_dim(x, y, "x", "y", fn="mmd2_unbiased")
    with x64():
        return float(_mmd2_jit(jnp.asarray(x), jnp.asarray(y)))


def kid_subset_indices(key, n1: int, n2: int, num_subsets: int = 100, subset_size: int = 1000):
    """The row indices :func:`kid` uses: ([S, m] into feats1, [S, m] into feats2), each row drawn without
    replacement; subset s of the two sets uses ``fold_in(key, s)`` split in two."""
    _check_subsets(n1, n2, num_subsets, subset_size)

    def one(s):
        k1, k2 = jax.random.split(jax.random.fold_in(key, s))
        return (jax.random.choice(k1, n1, (subset_size,), replace=False),
                jax.random.choice(k2, n2, (subset_size,), replace=False))

    i1, i2 = jax.jit(jax.vmap(one))(jnp.arange(num_subsets))
    return np.asarray(i1), np.asarray(i2)


def _check_subsets(n1, n2, num_subsets, subset_size):
    if int(num_subsets) != num_subsets or num_subsets < 1:
        raise GMJaxError(f"num_subsets must be a positive integer, got {num_subsets!r}")
    if int(subset_size) != subset_size or subset_size < 2:
        raise GMJaxError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    if subset_size > min(n1, n2):
        raise GMJaxError(f"subset_size={subset_size} exceeds the number of samples (feats1: {n1}, feats2: {n2}); "
                         f"pass subset_size={min(n1, n2)} or more samples (the standard is 1000 of >= 1000 each)")


def _kid_x64(x, y, i1, i2, batch):
    return jax.lax.map(lambda ij: _mmd2(x[ij[0]], y[ij[1]]), (i1, i2), batch_size=batch)


_kid_x64_jit = jax.jit(_kid_x64, static_argnums=4)


def kid(feats1, feats2, num_subsets: int = 100, subset_size: int = 1000, key=None, subset_batch: int = 8):
    """KID between two feature sets (e.g. Inception pool3, D=2048).

    Args:
      feats1: [N1, D] features (generated, by convention; the estimator is symmetric).
      feats2: [N2, D] features (real).
      num_subsets: S, number of random subsets (100 as in MMD-GAN's CLI and torch-fidelity).
      subset_size: m rows per subset, drawn without replacement; must be <= min(N1, N2).
      key: ``jax.random.key`` choosing the subsets (required; see :func:`kid_subset_indices`).
      subset_batch: subsets evaluated at once (memory ~ 3 * subset_batch * m^2 float64).
    Returns: (mean, std) of the S per-subset MMD^2 values as Python floats; std with ddof=0 (np.std).
    """
    if key is None:
        raise GMJaxError("kid needs a PRNG key to draw its subsets; pass key=jax.random.key(0)")
    x = features(feats1, "feats1", min_rows=2, fn="kid")
    y = features(feats2, "feats2", min_rows=2, fn="kid")
    same_dim(x, y, "feats1", "feats2", fn="kid")
    i1, i2 = kid_subset_indices(key, x.shape[0], y.shape[0], num_subsets, subset_size)
    batch = max(1, min(int(subset_batch), int(num_subsets)))
    with x64():
        vals = np.asarray(_kid_x64_jit(jnp.asarray(x), jnp.asarray(y), jnp.asarray(i1), jnp.asarray(i2), batch),
                          np.float64)
    return float(np.mean(vals)), float(np.std(vals))
