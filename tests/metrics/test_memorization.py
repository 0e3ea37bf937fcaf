"""The C_T data-copying test (Meehan et al. 2020) against an independent numpy + scipy re-implementation of the
authors' per-cell procedure on fixed cells, on lattice features full of ties, on closed cases (copies, fresh
draws, underfitting), plus k-means and input validation."""

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

import jax

from gm_jax.errors import GMJaxError
from gm_jax.metrics.memorization import data_copying_test, kmeans


def _assign(x, centroids):
    d2 = np.array([[np.sum((xi - c) ** 2) for c in centroids] for xi in x])
    return np.argmin(d2, axis=1)


def _reference(train, test, fake, centroids, tau):
    """The authors' procedure written out: loop over cells, brute-force in-cell nearest training distances with
    np.linalg.norm, scipy's Mann-Whitney U, their continuity-corrected Z-score, P_n-weighted mean over Pi_tau."""
    ct, cp, cq = _assign(train, centroids), _assign(test, centroids), _assign(fake, centroids)
    k = len(centroids)
    z, share_p, share_q = np.full(k, np.nan), np.zeros(k), np.zeros(k)
    ties = 0
    for c in range(k):
        tc, pc, qc = train[ct == c], test[cp == c], fake[cq == c]
        assert len(tc) and len(pc), "reference needs test and training points in every cell"
        share_p[c], share_q[c] = len(pc) / len(test), len(qc) / len(fake)
        if share_q[c] <= tau:
            continue
        lp = np.array([np.min(np.linalg.norm(tc - p, axis=1)) for p in pc])
        lq = np.array([np.min(np.linalg.norm(tc - q, axis=1)) for q in qc])
        ties += int(np.sum(lq[:, None] == lp[None, :]))
        u = mannwhitneyu(lq, lp).statistic
        n, m = len(pc), len(qc)
        z[c] = (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)
    used = ~np.isnan(z)
    c_t = np.sum(share_p[used] * z[used]) / np.sum(share_p[used])
    return c_t, z, share_p, share_q, ties


def _check_against_reference(train, test, fake, centroids, tau):
    c_t, z, share_p, share_q, ties = _reference(train, test, fake, centroids, tau)
    for block in (16, 1000):  # ragged tiles and one tile
        out = data_copying_test(train, test, fake, centroids=centroids, tau=tau, block_size=block)
        np.testing.assert_array_equal(np.isnan(out["cell_z"]), np.isnan(z))
        np.testing.assert_allclose(out["cell_z"], z, rtol=0, atol=1e-10)
        assert out["c_t"] == pytest.approx(c_t, rel=0, abs=1e-10)
        np.testing.assert_allclose(out["cell_test_share"], share_p, rtol=0, atol=1e-15)
        np.testing.assert_allclose(out["cell_fake_share"], share_q, rtol=0, atol=1e-15)
        assert out["cells_used"] == int(np.sum(~np.isnan(z)))
    return z, ties


def test_matches_scipy_mannwhitneyu_reference_on_fixed_cells():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(200, 3)), rng.normal(size=(90, 3))
    fake = np.concatenate([train[:40] + 0.01 * rng.normal(size=(40, 3)), 1.3 * rng.normal(size=(80, 3))])
    centroids = train[[3, 50, 100, 150]]
    counts = np.bincount(_assign(fake, centroids), minlength=4)
    tau = counts.min() / len(fake)  # the emptiest cell has exactly a share tau: Pi_tau (share > tau) leaves it out
    z, _ = _check_against_reference(train, test, fake, centroids, tau)
    assert np.isnan(z).sum() == 1 and np.all(np.abs(z[~np.isnan(z)]) > 1e-3)
    # Default tau = 20 / m: cells with more than 20 generated points.
    c_t, z_ref, _, _, _ = _reference(train, test, fake, centroids, 20 / len(fake))
    out = data_copying_test(train, test, fake, centroids=centroids)
    assert out["c_t"] == pytest.approx(c_t, abs=1e-10)
    np.testing.assert_allclose(out["cell_z"], z_ref, atol=1e-10)


def test_ties_on_lattice_features_match_scipy():
    """Integer features: many exact distance ties (and zeros, test or fake points on training points), where
    U's 0.5-per-tie term matters. (Same shapes as the test above: no new compilation.)"""
    rng = np.random.default_rng(1)
    train = rng.integers(0, 4, size=(200, 3)).astype(np.float64)
    test = rng.integers(0, 4, size=(90, 3)).astype(np.float64)
    fake = rng.integers(0, 5, size=(120, 3)).astype(np.float64)
    centroids = np.array([[0.31, 0.72, 1.13], [2.61, 2.24, 1.93], [0.57, 2.83, 2.46], [3.12, 0.38, 0.84]])
    d2 = np.sort(((np.concatenate([train, test, fake])[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.min(d2[:, 1] - d2[:, 0]) > 1e-3  # no point near a cell boundary: the partition is unambiguous
    _, ties = _check_against_reference(train, test, fake, centroids, 0.0)
    assert ties > 1000


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(2)
    return rng, rng.normal(size=(600, 4)), rng.normal(size=(300, 4))


@pytest.mark.parametrize("case", ["copy", "copy_plus_noise", "fresh", "underfit"])
def test_closed_cases_on_gaussian_data(gaussian, case):
    rng, train, test = gaussian
    fake = {"copy": lambda: train.copy(),
            "copy_plus_noise": lambda: train + 1e-3 * rng.normal(size=train.shape),
            "fresh": lambda: rng.normal(size=(600, 4)),
            "underfit": lambda: 3.0 * rng.normal(size=(600, 4))}[case]()
    out = data_copying_test(train, test, fake, num_cells=5, key=jax.random.key(0))
    assert out["cells_used"] == 5 and out["cell_z"].shape == (5,)
    assert out["cell_test_share"].sum() == pytest.approx(1.0) and out["cell_fake_share"].sum() == pytest.approx(1.0)
    if case in ("copy", "copy_plus_noise"):
        assert out["c_t"] < -5 and np.all(out["cell_z"] < -3)
    elif case == "fresh":
        assert abs(out["c_t"]) < 3
    else:
        assert out["c_t"] > 5


def test_kmeans_cells_are_those_of_kmeans_function(gaussian):
    """Without centroids=, the cells are kmeans(train_feats, num_cells, key=key)."""
    rng, train, test = gaussian
    fake = rng.normal(size=(600, 4))
    key = jax.random.key(3)
    centroids, _ = kmeans(train, 5, key=key)
    a = data_copying_test(train, test, fake, num_cells=5, key=key)
    b = data_copying_test(train, test, fake, centroids=centroids)
    assert a.keys() == b.keys() == {"c_t", "cell_z", "cell_test_share", "cell_fake_share", "cells_used"}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def _blobs(rng, per=40):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    labels = rng.permutation(np.repeat(np.arange(4), per))
    return centres[labels] + 0.5 * rng.normal(size=(len(labels), 2)), labels


def _check_fixed_point(x, c, a):
    d2 = ((x[:, None] - c[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2[np.arange(len(x)), a], d2.min(axis=1), rtol=1e-12, atol=1e-12)  # nearest centre
    for j in range(len(c)):
        np.testing.assert_allclose(c[j], x[a == j].mean(axis=0), rtol=0, atol=1e-12)  # centre = mean of its cell


def test_kmeans_recovers_separated_blobs_and_is_a_lloyd_fixed_point():
    rng = np.random.default_rng(4)
    x, labels = _blobs(rng)
    for seed in range(3):
        c, a = kmeans(x, 4, key=jax.random.key(seed))
        assert c.shape == (4, 2) and c.dtype == np.float64 and a.shape == (len(x),)
        table = np.zeros((4, 4), int)
        np.add.at(table, (a, labels), 1)
        assert np.all(np.count_nonzero(table, axis=1) == 1) and np.all(np.count_nonzero(table, axis=0) == 1)
        _check_fixed_point(x, c, a)
    # Unstructured data: still a fixed point of Lloyd's iteration; deterministic given the key.
    y = rng.normal(size=(160, 2))
    c1, a1 = kmeans(y, 4, key=jax.random.key(7))
    _check_fixed_point(y, c1, a1)
    c2, a2 = kmeans(y, 4, key=jax.random.key(7))
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(a1, a2)


def test_bad_input_raises_one_line_errors(gaussian):
    rng, train, test = gaussian  # the shapes of the closed cases, so most calls reuse their compilation
    fake, key = rng.normal(size=(600, 4)), jax.random.key(0)
    with pytest.raises(GMJaxError, match="no test points.*reduce num_cells") as info:
        data_copying_test(train, test[:3], fake, num_cells=5, key=key)  # 3 test points for 5 cells
    assert "\n" not in str(info.value)
    far_test = test[:3].copy()
    far_test[0] = 50.0
    centroids = np.concatenate([[far_test[0]], train[:4]])  # the first cell holds a test point but no training one
    with pytest.raises(GMJaxError, match="no training points.*reduce num_cells"):
        data_copying_test(train, far_test, fake, centroids=centroids)
    with pytest.raises(GMJaxError, match="no cell holds more than"):
        data_copying_test(train, test, fake, num_cells=5, key=key, tau=0.99)
    bad = fake.copy()
    bad[3, 1] = np.nan
    with pytest.raises(GMJaxError, match="fake_feats has 1 NaN or inf"):
        data_copying_test(train, test, bad, key=key)
    with pytest.raises(GMJaxError, match="same feature dimension"):
        data_copying_test(train, test[:, :2], fake, key=key)
    with pytest.raises(GMJaxError, match="same feature dimension"):
        data_copying_test(train, test, fake, centroids=train[:3, :3])
    for tau in (1.0, -0.1, float("nan")):
        with pytest.raises(GMJaxError, match=r"tau .* must be in \[0, 1\)"):
            data_copying_test(train, test, fake, key=key, tau=tau)
    with pytest.raises(GMJaxError, match="num_cells=601 exceeds"):
        data_copying_test(train, test, fake, num_cells=601, key=key)
    with pytest.raises(GMJaxError, match="num_cells must be a positive integer"):
        data_copying_test(train, test, fake, num_cells=0, key=key)
    with pytest.raises(GMJaxError, match="needs a PRNG key"):
        data_copying_test(train, test, fake)
    with pytest.raises(GMJaxError, match="at least 5 rows"):
        kmeans(train[:4], 5, key=key)
