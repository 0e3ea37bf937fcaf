"""Data-copying test C_T (Meehan, Chaudhuri & Dasgupta 2020, "A Non-Parametric Test to Detect Data-Copying in
Generative Models", AISTATS, sec. 3-4), with the k-means partition it runs on.

Inputs are features of three samples: the training set T (what the model was fit on), a held-out test set P_n
(n points from the data distribution, never seen in training) and generated samples Q_m (m points). A model that
copies its training data puts its samples *closer* to T than fresh data lies.

1. Partition the space into K cells pi by k-means fitted on T (:func:`kmeans`); every point of T, P_n and Q_m goes
   to the cell of its nearest centroid.
2. In each cell, L(x) = min over training points t in the *same* cell of ||x - t|| (Euclidean), for each test
   point (L(P_n)) and each generated point (L(Q_m)) in it.
3. Mann-Whitney U of (L(Q_m), L(P_n)) in the cell, with n, m now the in-cell counts:
       U = #{(q, p): L_q > L_p} + 0.5 #{(q, p): L_q = L_p}      (= ``scipy.stats.mannwhitneyu(LQ, LP).statistic``)
       Z_U = (U - (n m / 2 - 0.5)) / sqrt(n m (n + m + 1) / 12)
   The "- 0.5" is the continuity correction of the authors' code (``data_copying_tests.py``, function ``Zu``),
   reproduced as is: it shifts every Z_U by +0.5 / sd, whatever the sign of U - n m / 2.
4. C_T = sum_{pi in Pi_tau} P_n(pi) Z_U(pi) / sum_{pi in Pi_tau} P_n(pi), with P_n(pi) the fraction of test points
   in pi and Pi_tau = {pi: Q_m(pi) > tau} the cells holding more than a fraction tau of the generated points
   (default tau = 20 / m: cells with more than 20 generated points, as in the paper).

Reading it: C_T << 0 (say below -3): the samples are closer to the training set than held-out data is, i.e. data
copying; C_T ~ 0: no evidence of either; C_T >> 0: the samples are farther from the training data than fresh data
(underfitting). Under the null each Z_U is approximately N(0, 1).

Every cell must hold test and training points (the authors' code raises otherwise; so does this one, asking for
fewer cells). Numerics: float64 under a local x64 context; nearest-neighbour distances are computed blockwise on
``block_size`` tiles with a running minimum (other cells masked with inf), as in :mod:`gm_jax.metrics.manifold`,
so memory is O(block_size^2 + (N + n + m) D). U needs no n x m matrix: sorting the pooled test and generated points
by (cell, distance) lets each generated point count the test points of its cell below it and level with it, in
O((n + m) log(n + m)) for all cells at once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import features, same_dim, x64
from gm_jax.metrics.manifold import _dist, _tiles

__all__ = ["kmeans", "data_copying_test"]

# Rows per tile when kmeans assigns points to centroids (memory ~ rows x K per tile).
_ASSIGN_BLOCK = 4096


def _nearest_centroid(x, centroids, block):
    """Index of the nearest centroid (squared Euclidean; the lowest index on ties) of each row of x [N, D]: [N]
    int32. Row tiles of ``block`` go through ``lax.map``; memory O(block K)."""
    tiles, norms, _ = _tiles(x, block)
    cn = jnp.einsum("kd,kd->k", centroids, centroids, precision=jax.lax.Precision.HIGHEST)
    idx = jax.lax.map(lambda t: jnp.argmin(_dist(t[0], t[1], centroids, cn, True), axis=1).astype(jnp.int32),
                      (tiles, norms))
    return idx.reshape(-1)[:x.shape[0]]


def _cell_means(x, assign, old):
    """Mean of the rows of x [N, D] assigned to each cell, [K, D]; a cell with no row keeps its ``old`` centre."""
    k = old.shape[0]
    sums = jax.ops.segment_sum(x, assign, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones(x.shape[0], x.dtype), assign, num_segments=k)
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], old)


def _kmeans_pp(x, k, key):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): the first centre uniformly among the rows of x [N, D], each
    next one with probability proportional to D(x)^2, the squared distance to the nearest centre chosen so far
    (rows already chosen have D = 0 and are never drawn again). Sampling is by inverse CDF, index = first i with
    cumsum(D^2)_i > u sum(D^2) for u ~ U[0, 1), from k uniforms drawn at once. If every D(x)^2 is 0 (fewer distinct
    rows than k) the pick is uniform. Returns [k, D]."""
    n = x.shape[0]
    u = jax.random.uniform(key, (k,), x.dtype)

    def draw(weights, ui):
        cdf = jnp.cumsum(weights)
        idx = jnp.searchsorted(cdf, ui * cdf[-1], side="right", method="compare_all")
        return jnp.minimum(jnp.where(cdf[-1] > 0, idx, jnp.floor(ui * n).astype(idx.dtype)), n - 1)

    first = x[draw(jnp.zeros(n, x.dtype), u[0])]
    d2 = jnp.sum((x - first) ** 2, axis=1)
    cents = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)

    def step(i, carry):
        cents, d2 = carry
        c = x[draw(d2, u[i])]
        return cents.at[i].set(c), jnp.minimum(d2, jnp.sum((x - c) ** 2, axis=1))

    cents, _ = jax.lax.fori_loop(1, k, step, (cents, d2))
    return cents


@functools.partial(jax.jit, static_argnames=("k", "num_iters", "block"))
def _kmeans_x64(x, key, k, num_iters, block):
    """Lloyd's algorithm from a k-means++ start: alternate c <- means of the cells, a <- nearest centre, until a
    stops changing or after ``num_iters`` updates. The returned a is always the nearest-centre assignment of the
    returned c; c is the mean of its cell of a once converged (empty cells keep their previous centre)."""
    c0 = _kmeans_pp(x, k, key)
    a0 = _nearest_centroid(x, c0, block)

    def cond(state):
        it, _, _, changed = state
        return (it < num_iters) & changed

    def body(state):
        it, c, a, _ = state
        c = _cell_means(x, a, c)
        a_new = _nearest_centroid(x, c, block)
        return it + 1, c, a_new, jnp.any(a_new != a)

    _, c, a, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), c0, a0, jnp.bool_(True)))
    return c, a


def _positive_int(value, name, fn, least=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < least:
        raise GMJaxError(f"{fn}: {name} must be a {'positive' if least else 'non-negative'} integer, got {value!r}")
    return int(value)


def kmeans(x, num_clusters: int, *, key, num_iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(centroids [K, D] float64, assignment [N] int) by Lloyd's algorithm from a k-means++ start (Arthur &
    Vassilvitskii 2007).

    Args:
      x: [N, D] points (N >= num_clusters), any real dtype; finite.
      num_clusters: K >= 1.
      key: ``jax.random.key`` for the k-means++ seeding; the result is a deterministic function of (x, K, key).
      num_iters: at most this many Lloyd updates (centres <- cell means, assignment <- nearest centre); it stops
        earlier once the assignment no longer changes.
    Returns: (centroids, assignment) as numpy. ``assignment[i]`` is the index of the centroid nearest to x[i]
    (squared Euclidean, lowest index on ties); at convergence each centroid is the mean of its points. A cluster
    that empties keeps its last centre (possible only with duplicated or very unevenly spread points).
    """
    k = _positive_int(num_clusters, "num_clusters", "kmeans")
    num_iters = _positive_int(num_iters, "num_iters", "kmeans", least=0)
    if key is None:
        raise GMJaxError("kmeans needs a PRNG key for its k-means++ seeding; pass key=jax.random.key(0)")
    x = features(x, "x", min_rows=k, fn="kmeans")
    with x64():
        c, a = _kmeans_x64(jnp.asarray(x), key, k, num_iters, int(min(_ASSIGN_BLOCK, x.shape[0])))
        return np.asarray(c, np.float64), np.asarray(a).astype(np.int64)


def _nearest_in_cell(q, q_cell, t, t_cell, block_q, block_t):
    """L(q) = min over t with t_cell == q_cell of ||q - t||, for queries q [M, D] (cells q_cell [M]) against
    training points t [N, D] (cells t_cell [N]): [M], inf where the cell holds no training point. Query tiles go
    through ``lax.map``, training tiles through a ``lax.scan`` keeping the running minimum; other cells and
    padding are masked with inf."""
    qt, qn, _ = _tiles(q, block_q)
    tt, tn, tv = _tiles(t, block_t)
    pad = lambda v, blk, tiles: jnp.full((tiles.shape[0] * blk,), -1, v.dtype).at[:v.shape[0]].set(v).reshape(
        tiles.shape[:2])
    qc, tc = pad(q_cell, block_q, qt), pad(t_cell, block_t, tt)

    def row_tile(row):
        xb, xbn, cb = row

        def col_step(best, col):
            yb, ybn, vb, cyb = col
            ok = vb[None, :] & (cb[:, None] == cyb[None, :])
            d = jnp.where(ok, _dist(xb, xbn, yb, ybn, False), jnp.inf)
            return jnp.minimum(best, jnp.min(d, axis=1)), None

        best, _ = jax.lax.scan(col_step, jnp.full((block_q,), jnp.inf, q.dtype), (tt, tn, tv, tc))
        return best

    return jax.lax.map(row_tile, (qt, qn, qc)).reshape(-1)[:q.shape[0]]


def _tests_below(l_test, c_test, l_fake, c_fake, k, level_counts: bool):
    """sum over generated q in each cell of #{test p in the cell: L_p < L_q} ([K]), or of #{... L_p <= L_q} with
    ``level_counts``. One sort of the pooled points by (cell, L, side), where ties in L put the test points after
    the generated ones (strict count) or before them (count with ties); a generated point then counts the test
    points sorted before it, less those of the earlier cells."""
    n = l_test.shape[0]
    cells = jnp.concatenate([c_test, c_fake])
    vals = jnp.concatenate([l_test, l_fake])
    is_fake = jnp.concatenate([jnp.zeros(n, jnp.int32), jnp.ones(l_fake.shape[0], jnp.int32)])
    side = is_fake if level_counts else 1 - is_fake  # sorted ascending: 0 comes first among equal (cell, L)
    cells, _, side = jax.lax.sort((cells, vals, side), num_keys=3)
    fake = side == (1 if level_counts else 0)
    tests_before = jnp.cumsum(~fake, dtype=jnp.int32) - (~fake)
    per_cell = jax.ops.segment_sum(jnp.ones(n, jnp.int32), c_test, num_segments=k)
    earlier_cells = jnp.cumsum(per_cell) - per_cell
    counts = jnp.where(fake, tests_before - earlier_cells[cells], 0)
    return jax.ops.segment_sum(counts.astype(l_test.dtype), cells, num_segments=k)


def _cell_u(l_test, c_test, l_fake, c_fake, k):
    """Mann-Whitney U of (L(Q_m), L(P_n)) in every cell at once: [K] with
        U(pi) = sum_{q in pi} (#{p in pi: L_p < L_q} + 0.5 #{p in pi: L_p = L_q})
              = 0.5 sum_{q in pi} (#{p in pi: L_p < L_q} + #{p in pi: L_p <= L_q}).
    Two sorts of the n + m pooled distances, O((n + m) log(n + m)): no n x m matrix, no loop over cells."""
    strict = _tests_below(l_test, c_test, l_fake, c_fake, k, False)
    with_ties = _tests_below(l_test, c_test, l_fake, c_fake, k, True)
    return 0.5 * (strict + with_ties)


@functools.partial(jax.jit, static_argnames=("block_all", "block_query", "block_train"))
def _data_copying_x64(train, test, fake, centroids, tau, block_all, block_query, block_train):
    k, n_tr, n_te = centroids.shape[0], train.shape[0], test.shape[0]
    cells = _nearest_centroid(jnp.concatenate([train, test, fake]), centroids, block_all)
    c_train, c_test, c_fake = cells[:n_tr], cells[n_tr:n_tr + n_te], cells[n_tr + n_te:]
    dist = _nearest_in_cell(jnp.concatenate([test, fake]), cells[n_tr:], train, c_train, block_query, block_train)
    l_test, l_fake = dist[:n_te], dist[n_te:]
    count = lambda c: jax.ops.segment_sum(jnp.ones(c.shape[0], train.dtype), c, num_segments=k)
    n_train, n, m = count(c_train), count(c_test), count(c_fake)
    u = _cell_u(l_test, c_test, l_fake, c_fake, k)
    z = (u - (n * m / 2.0 - 0.5)) / jnp.sqrt(n * m * (n + m + 1.0) / 12.0)  # -0.5: the authors' continuity corr.
    test_share, fake_share = n / test.shape[0], m / fake.shape[0]
    used = fake_share > tau
    z = jnp.where(used, z, jnp.nan)
    c_t = jnp.sum(jnp.where(used, test_share * z, 0.0)) / jnp.sum(jnp.where(used, test_share, 0.0))
    return c_t, z, test_share, fake_share, used, n_train, n


def data_copying_test(train_feats, test_feats, fake_feats, *, num_cells: int = 5, tau: float | None = None,
                      key=None, block_size: int = 1000, centroids=None) -> dict:
    """The C_T data-copying statistic of Meehan et al. 2020 (see the module docstring for the maths).

    Args:
      train_feats: [N, D] features of the model's training set T (N >= num_cells).
      test_feats: [n, D] features of held-out data P_n from the same distribution.
      fake_feats: [m, D] features of generated samples Q_m.
      num_cells: K, the number of k-means cells fitted on train_feats (ignored when ``centroids`` is given).
        Every cell needs test and training points: with few test points, use fewer cells.
      tau: a cell enters C_T when the fraction of generated points in it exceeds tau, in [0, 1). Default
        20 / m (more than 20 generated points), the paper's choice.
      key: ``jax.random.key`` for the k-means++ seeding (required unless ``centroids`` is given).
      block_size: tile edge for the nearest-neighbour distances; memory ~ block_size^2 float64 per tile. Results
        do not depend on it.
      centroids: optional [K, D] fixed cell centres (e.g. from :func:`kmeans`, or to reproduce a published
        partition); k-means is then skipped and each point goes to its nearest centre.
    Returns: dict with
      ``c_t`` (float): C_T; << 0 means data copying, ~ 0 fine, >> 0 underfitting;
      ``cell_z`` ([K] float64): Z_U per cell, NaN for cells outside Pi_tau;
      ``cell_test_share``, ``cell_fake_share`` ([K] float64): P_n(pi) and Q_m(pi), the fractions of test and of
        generated points in each cell;
      ``cells_used`` (int): |Pi_tau|, the number of cells entering C_T.
    """
    fn = "data_copying_test"
    block = _positive_int(block_size, "block_size", fn)
    train = features(train_feats, "train_feats", fn=fn)
    test = features(test_feats, "test_feats", fn=fn)
    fake = features(fake_feats, "fake_feats", fn=fn)
    same_dim(train, test, "train_feats", "test_feats", fn=fn)
    same_dim(train, fake, "train_feats", "fake_feats", fn=fn)
    if tau is not None:
        if isinstance(tau, bool) or not isinstance(tau, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(tau) < 1.0:
            raise GMJaxError(f"{fn}: tau (the least fraction of generated points a cell needs to count) must be in "
                             f"[0, 1), got {tau!r}; the paper uses 20 / m (tau=None)")
        tau = float(tau)
    else:
        tau = 20.0 / fake.shape[0]
    if centroids is None:
        k = _positive_int(num_cells, "num_cells", fn)
        if k > train.shape[0]:
            raise GMJaxError(f"{fn}: num_cells={k} exceeds the {train.shape[0]} training points; use fewer cells")
        if key is None:
            raise GMJaxError(f"{fn} needs a PRNG key for the k-means cells; pass key=jax.random.key(0), or fixed "
                             f"centroids=")
        centroids, _ = kmeans(train, k, key=key)
    else:
        centroids = features(centroids, "centroids", fn=fn)
        same_dim(train, centroids, "train_feats", "centroids", fn=fn)
    n_train, n_query = train.shape[0], test.shape[0] + fake.shape[0]
    with x64():
        out = _data_copying_x64(jnp.asarray(train), jnp.asarray(test), jnp.asarray(fake), jnp.asarray(centroids),
                                jnp.float64(tau), min(block, n_train + n_query), min(block, n_query),
                                min(block, n_train))
        c_t, z, test_share, fake_share, used, train_counts, test_counts = (np.asarray(a) for a in out)
    for what, counts in (("training", train_counts), ("test", test_counts)):
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise GMJaxError(f"{fn}: {empty.size} of {len(counts)} cells (cell {int(empty[0])} first) hold no "
                             f"{what} points, so their distances cannot be compared; reduce num_cells (or pass fewer "
                             f"centroids) or pass more {what} points")
    if not used.any():
        raise GMJaxError(f"{fn}: no cell holds more than a fraction tau={tau:.4g} of the {fake.shape[0]} generated "
                         f"points (the paper needs > 20 per cell); pass more generated samples, reduce num_cells or "
                         f"lower tau")
    return {"c_t": float(c_t), "cell_z": z.astype(np.float64), "cell_test_share": test_share.astype(np.float64),
            "cell_fake_share": fake_share.astype(np.float64), "cells_used": int(np.count_nonzero(used))}
