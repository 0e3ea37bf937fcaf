"""k-NN precision/recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", sec. 2) and density/coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models", sec. 3), computed blockwise so the N x M distance matrix never exists.

With D[i, j] = ||real_i - fake_j||, r_i the distance from real_i to its k-th nearest *other* real sample and
s_j the same within the fake set ("<" below is replaced by "<=" with ``comparison="<="``):

- precision = mean_j [exists i: D[i, j] < r_i]      (fakes inside the real manifold)
- recall    = mean_i [exists j: D[i, j] < s_j]      (reals inside the fake manifold)
- density   = (1/k) mean_j sum_i [D[i, j] < r_i]
- coverage  = mean_i [min_j D[i, j] < r_i]

Conventions. The ``prdc`` package (Naeem et al.'s code, pip ``prdc==0.2``) uses Euclidean distances and strict
``<`` everywhere; the default here reproduces it exactly on float64 features where no radius is 0 (see
"Repeated points"). Kynkäänniemi's official code,
StyleGAN2-ADA and torch-fidelity use ``<=`` (Kynkäänniemi on *squared* distances: ``squared=True``). The two
conventions differ only on exact ties (duplicated samples, lattice-valued features). The radius counts the
sample itself as its 0-th neighbour, so it is the (k+1)-th smallest distance in its row, as in every reference.

Repeated points. A sample present more than k times (a collapsed generator, lattice-valued or duplicated
data) has radius 0, and a strict ``D < 0`` ball is empty: ``prdc`` then scores such a set against itself as
precision = recall = density = coverage = 0 (or as whatever the round-off of its distance expansion makes of
the ties). Here a ball always contains its centre: with ``"<"`` the test is ``D < r or D == 0``, so points
coinciding with a sample count as inside its ball (with ``"<="`` they already do). This changes nothing when
no radius is 0, and gives precision = recall = coverage = 1 for a set against itself, duplicates or not; density
counts every copy, as its formula says (points each repeated c > k times have density c/k against themselves).
Squared distances below the expansion's round-off, ``64 eps (|a|^2 + |b|^2)``, are taken as exactly 0, so
duplicated rows are at distance 0 on every backend.

Numerics: squared distances ``|a|^2 - 2 a.b + |b|^2``, round-off level set to 0 (the same expansion as
scikit-learn, which ``prdc`` calls) in float64 under a local x64 context, on row x column tiles of
``block_size``; k-NN radii are a running (k+1)-smallest over column tiles (``lax.scan``), row tiles go through
``lax.map``/``lax.scan``, so memory is O(block_size^2 + (N + M) D).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import features, same_dim, x64

__all__ = ["prdc", "knn_radii"]

_COMPARISONS = ("<", "<=")


# Squared distances under this many eps of |a|^2 + |b|^2 are round-off of the expansion: they are set to 0, so
# that duplicated rows coincide exactly (their zero radii and "D == 0" ties are then exact, see the docstring).
_TIE_EPS = 64.0


def _dist(a, an, b, bn, squared: bool):
    d = -2.0 * jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST) + an[:, None] + bn[None, :]
    tie = _TIE_EPS * jnp.finfo(d.dtype).eps * (an[:, None] + bn[None, :])
    d = jnp.where(d <= tie, 0.0, d)
    return d if squared else jnp.sqrt(d)


def _tiles(x, block):
    """Pad [N, D] to a multiple of ``block`` rows: (tiles [T, B, D], sq. norms [T, B], valid [T, B])."""
    n, dim = x.shape
    t = -(-n // block)
    xp = jnp.zeros((t * block, dim), x.dtype).at[:n].set(x)
    valid = jnp.arange(t * block) < n
    norms = jnp.einsum("ij,ij->i", xp, xp, precision=jax.lax.Precision.HIGHEST)
    return xp.reshape(t, block, dim), norms.reshape(t, block), valid.reshape(t, block)


def _k_smallest(v, kk: int):
    """The kk smallest values of each row of v [B, C], ascending, counting duplicates (a multiset, like
    ``np.partition``). Repeated min-extraction for small kk (much faster than a sort-based top_k on CPU)."""
    if kk > 16:
        return -jax.lax.top_k(-v, kk)[0]
    cols = jnp.arange(v.shape[1])[None, :]
    out = []
    for _ in range(kk):
        idx = jnp.argmin(v, axis=1)
        out.append(jnp.take_along_axis(v, idx[:, None], axis=1)[:, 0])
        v = jnp.where(cols == idx[:, None], jnp.inf, v)
    return jnp.stack(out, axis=1)


@functools.partial(jax.jit, static_argnames=("k", "block", "squared"))
def _radii_x64(x, k, block, squared):
    tiles, norms, valid = _tiles(x, block)

    def row_tile(args):
        xb, xbn = args

        def col_step(best, col):
            yb, ybn, vb = col
            d = jnp.where(vb[None, :], _dist(xb, xbn, yb, ybn, squared), jnp.inf)
            return _k_smallest(jnp.concatenate([best, d], axis=1), k + 1), None

        best, _ = jax.lax.scan(col_step, jnp.full((block, k + 1), jnp.inf, x.dtype), (tiles, norms, valid))
        return best[:, k]  # ascending: index k is the (k+1)-th smallest, self included

    return jax.lax.map(row_tile, (tiles, norms)).reshape(-1)[:x.shape[0]]


@functools.partial(jax.jit, static_argnames=("block", "squared", "inclusive"))
def _prdc_x64(real, fake, r, s, block, squared, inclusive):
    # A ball always holds its centre: with "<", a zero radius (a point repeated more than k times) would make it
    # empty and score a duplicated set against itself as 0.
    cmp = jnp.less_equal if inclusive else (lambda d, r: (d < r) | (d == 0.0))
    rt, rn, rv = _tiles(real, block)
    ft, fn, fv = _tiles(fake, block)
    pad = lambda v, t: jnp.zeros((t.shape[0] * block,), v.dtype).at[:v.shape[0]].set(v).reshape(t.shape[:2])
    rr, ss = pad(r, rt), pad(s, ft)

    def row_tile(counts, row):
        xb, xbn, rb, vb = row

        def col_step(carry, col):
            rec_any, min_d = carry
            yb, ybn, sb, vcb = col
            d = _dist(xb, xbn, yb, ybn, squared)
            in_real = cmp(d, rb[:, None]) & vb[:, None] & vcb[None, :]
            in_fake = cmp(d, sb[None, :]) & vcb[None, :]
            rec_any = rec_any | jnp.any(in_fake, axis=1)
            min_d = jnp.minimum(min_d, jnp.min(jnp.where(vcb[None, :], d, jnp.inf), axis=1))
            return (rec_any, min_d), jnp.sum(in_real, axis=0, dtype=jnp.int32)

        init = (jnp.zeros((block,), bool), jnp.full((block,), jnp.inf, real.dtype))
        (rec_any, min_d), col_counts = jax.lax.scan(col_step, init, (ft, fn, ss, fv))
        return counts + col_counts.reshape(-1), (rec_any, cmp(min_d, rb))

    counts, (rec_any, covered) = jax.lax.scan(row_tile, jnp.zeros((ft.shape[0] * block,), jnp.int32),
                                              (rt, rn, rr, rv))
    n, m = real.shape[0], fake.shape[0]
    return counts[:m], rec_any.reshape(-1)[:n], covered.reshape(-1)[:n]


def _check_args(k, block_size, comparison):
    if int(k) != k or k < 1:
        raise GMJaxError(f"k (nearest neighbours) must be a positive integer, got {k!r}")
    if int(block_size) != block_size or block_size < 1:
        raise GMJaxError(f"block_size must be a positive integer, got {block_size!r}")
    if comparison not in _COMPARISONS:
        raise GMJaxError(f"comparison must be '<' (prdc package, Naeem et al.) or '<=' (Kynkäänniemi et al., "
                         f"torch-fidelity, StyleGAN2-ADA), got {comparison!r}")


def knn_radii(feats, k: int = 5, block_size: int = 1000, squared: bool = False) -> np.ndarray:
    """Distance from each row of feats [N, D] to its k-th nearest other row, [N] float64 (squared if asked)."""
    _check_args(k, block_size, "<")
    x = features(feats, "feats", min_rows=int(k) + 1, fn="knn_radii")
    block = int(min(block_size, x.shape[0]))
    with x64():
        return np.asarray(_radii_x64(jnp.asarray(x), int(k), block, bool(squared)), np.float64)


def prdc(real_feats, fake_feats, k: int = 5, block_size: int = 1000, comparison: str = "<",
         squared: bool = False) -> dict:
    """Precision, recall, density and coverage of fake features against real ones.

    Args:
      real_feats: [N, D] features of real data (N > k), e.g. Inception pool3 or VGG-16 fc2.
      fake_feats: [M, D] features of generated samples (M > k).
      k: neighbourhood size for the radii (5 in Naeem et al. and ``prdc``; 3 in Kynkäänniemi et al.).
      block_size: tile edge for the pairwise distances; memory ~ block_size^2 float64 per tile. Results do not
        depend on it.
      comparison: ``"<"`` (``prdc`` package, default) or ``"<="`` (Kynkäänniemi et al., torch-fidelity, StyleGAN2).
        Either way a ball contains its centre, so points repeated more than k times (zero radii) still count.
      squared: compare squared Euclidean distances (Kynkäänniemi's code) instead of distances (``prdc``);
        the same except at rounding-level near-ties.
    Returns: dict with Python floats ``precision``, ``recall``, ``density`` (may exceed 1) and ``coverage``.
    """
    _check_args(k, block_size, comparison)
    k = int(k)
    real = features(real_feats, "real_feats", min_rows=k + 1, fn="prdc")
    fake = features(fake_feats, "fake_feats", min_rows=k + 1, fn="prdc")
    same_dim(real, fake, "real_feats", "fake_feats", fn="prdc")
    block = int(min(block_size, max(real.shape[0], fake.shape[0])))
    with x64():
        r = _radii_x64(jnp.asarray(real), k, int(min(block, real.shape[0])), bool(squared))
        s = _radii_x64(jnp.asarray(fake), k, int(min(block, fake.shape[0])), bool(squared))
        counts, rec_any, covered = _prdc_x64(jnp.asarray(real), jnp.asarray(fake), r, s, block, bool(squared),
                                             comparison == "<=")
        counts, rec_any, covered = (np.asarray(a) for a in (counts, rec_any, covered))
    return {"precision": float(np.mean(counts > 0)), "recall": float(np.mean(rec_any)),
            "density": (1.0 / float(k)) * float(np.mean(counts)), "coverage": float(np.mean(covered))}
