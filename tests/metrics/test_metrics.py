"""Feature-space metrics against their reference formulas/packages on identical float64 inputs.

References: pytorch-fid's sqrtm-based Fréchet distance (re-implemented with scipy), np.mean/np.cov, the
improved-gan Inception Score formula, the MMD-GAN unbiased KID estimator, and the ``prdc`` package (Naeem et al.).
"""

import numpy as np
import pytest
import scipy.linalg

import jax

from gm_jax.errors import GMJaxError
from gm_jax.metrics import (feature_stats, feature_stats_finalize, feature_stats_init, feature_stats_merge,
                            feature_stats_update, fid, frechet_distance, inception_score, kid, kid_subset_indices,
                            knn_radii, load_stats, mmd2_unbiased, prdc, save_stats)


def _gaussian_feats(rng, n, d, shift=0.0, scale=1.0):
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ (a + np.eye(d))) * scale + shift


# -------------------------------------------------------------------------------------------------------- FID
def _pytorch_fid_reference(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid / TTUR calculate_frechet_distance: scipy sqrtm of the product, eps offset only if not finite."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _np_stats(x):
    return x.mean(0), np.cov(x, rowvar=False)


def test_frechet_distance_matches_pytorch_fid_sqrtm():
    rng = np.random.default_rng(0)
    for d, n in [(16, 400), (48, 1000)]:
        s1 = _np_stats(_gaussian_feats(rng, n, d))
        s2 = _np_stats(_gaussian_feats(rng, n, d, shift=0.3, scale=1.5))
        ours, ref = frechet_distance(*s1, *s2), _pytorch_fid_reference(*s1, *s2)
        assert abs(ours - ref) <= 1e-6 * abs(ref), (ours, ref)
        # pure function of the statistics, symmetric in its two arguments
        assert abs(frechet_distance(*s2, *s1) - ours) <= 1e-9 * ours


def test_frechet_distance_rank_deficient_n_below_dim():
    """N < D: singular covariances. Independent exact value: tr((S1 S2)^(1/2)) = ||A1 A2^T||_* / sqrt((n1-1)(n2-1))
    for centred feature matrices A (nuclear norm via SVD)."""
    rng = np.random.default_rng(1)
    d, n1, n2 = 64, 40, 30
    x1, x2 = _gaussian_feats(rng, n1, d), _gaussian_feats(rng, n2, d, shift=0.2)
    (mu1, s1), (mu2, s2) = _np_stats(x1), _np_stats(x2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(ours)
    a1, a2 = x1 - mu1, x2 - mu2
    tr_sqrt = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    exact = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert abs(ours - exact) <= 1e-8 * (np.trace(s1) + np.trace(s2)), (ours, exact)
    # torch-fidelity's eigvals route agrees within its own documented tolerance (places=5)
    tf = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
          - 2 * np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).astype(np.complex128)).real))
    assert abs(ours - tf) <= 1e-5


def test_frechet_distance_analytic_cases():
    d = 32
    eye, zero = np.eye(d), np.zeros(d)
    unit = np.zeros(d)
    unit[3] = 1.0
    assert frechet_distance(zero, eye, unit, eye) == 1.0                  # |dmu|^2 = 1, covariance terms cancel
    assert frechet_distance(zero, eye, np.ones(d), eye) == pytest.approx(d, rel=1e-14)   # pytorch-fid's test
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # identical statistics: ~0 (not clamped, may be a rounding-level negative)
    mu, s = _np_stats(_gaussian_feats(rng, 300, d))
    assert abs(frechet_distance(mu, s, mu, s)) <= 1e-9 * np.trace(s)


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(GMJaxError, match="sigma"):
        frechet_distance(np.zeros(4), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(GMJaxError, match="dimension"):
        frechet_distance(np.zeros(4), np.eye(4), np.zeros(3), np.eye(3))


def test_streaming_stats_equal_numpy_mean_and_cov():
    rng = np.random.default_rng(3)
    d = 24
    x = _gaussian_feats(rng, 1500, d, shift=50.0, scale=3.0).astype(np.float32)   # float32 features, offset mean
    xs = x.astype(np.float64)
    sizes = [1, 7, 256, 0, 500, 3]
    cuts = np.cumsum(sizes)
    parts = np.split(x, cuts)          # the last part takes the rest
    half = len(parts) // 2
    a = feature_stats_init(d)
    for p in parts[:half]:
        a = feature_stats_update(a, jax.numpy.asarray(p) if len(p) % 2 else p)   # JAX and numpy batches
    b = feature_stats_init(d)
    for p in parts[half:]:
        b = feature_stats_update(b, p)
    state = feature_stats_merge(a, b)
    assert int(state["n"]) == len(x)
    mu, sigma = feature_stats_finalize(state)
    ref_mu, ref_sigma = xs.mean(0), np.cov(xs, rowvar=False)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-12, atol=0)
    assert np.max(np.abs(sigma - ref_sigma)) <= 1e-12 * np.max(np.abs(ref_sigma))
    _, sigma0 = feature_stats_finalize(feature_stats_merge(b, a), ddof=0)        # merge order does not matter
    assert np.max(np.abs(sigma0 - np.cov(xs, rowvar=False, bias=True))) <= 1e-12 * np.max(np.abs(ref_sigma))
    with pytest.raises(GMJaxError, match="dimension"):
        feature_stats_update(feature_stats_init(d + 1), x[:4])
    with pytest.raises(GMJaxError, match="more than 1"):
        feature_stats_finalize(feature_stats_update(feature_stats_init(d), x[:1]))


def test_fid_convenience_and_npz_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    x1, x2 = _gaussian_feats(rng, 600, 20), _gaussian_feats(rng, 500, 20, shift=0.5)
    value = fid(x1, x2)
    ref = _pytorch_fid_reference(*_np_stats(x1), *_np_stats(x2))
    assert abs(value - ref) <= 1e-6 * ref
    mu, sigma = feature_stats(x1)
    save_stats(tmp_path / "real.npz", mu, sigma)
    with np.load(tmp_path / "real.npz") as f:                  # pytorch-fid reads f["mu"][:], f["sigma"][:]
        np.testing.assert_array_equal(f["mu"][:], mu)
        np.testing.assert_array_equal(f["sigma"][:], sigma)
    mu_l, sigma_l = load_stats(tmp_path / "real.npz")
    assert frechet_distance(mu_l, sigma_l, *feature_stats(x2)) == value
    with pytest.raises(GMJaxError, match="does not exist"):
        load_stats(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", m=mu, s=sigma)
    with pytest.raises(GMJaxError, match="'mu' and 'sigma'"):
        load_stats(tmp_path / "bad.npz")


# --------------------------------------------------------------------------------------------- Inception Score
def _improved_gan_is(logits, splits):
    """Salimans et al.'s model.py formula in float64 (softmax, contiguous i*N//splits splits, np.std)."""
    x = logits.astype(np.float64)
    preds = np.exp(x - x.max(1, keepdims=True))
    preds /= preds.sum(1, keepdims=True)
    n, scores = len(preds), []
    for i in range(splits):
        part = preds[i * n // splits:(i + 1) * n // splits]
        kl = part * (np.log(part) - np.log(np.mean(part, 0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return np.mean(scores), np.std(scores)


def test_inception_score_matches_improved_gan_formula():
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(1003, 37)) * 3).astype(np.float32)    # 1003: uneven split sizes (100/101)
    mean, std = inception_score(logits, splits=10)
    ref_mean, ref_std = _improved_gan_is(logits, 10)
    assert abs(mean - ref_mean) <= 1e-10 * ref_mean
    assert abs(std - ref_std) <= 1e-8 * ref_std
    # order within a split does not matter
    perm = np.concatenate([np.arange(i * 1003 // 10, (i + 1) * 1003 // 10)[::-1] for i in range(10)])
    assert inception_score(logits[perm], 10) == pytest.approx((mean, std), rel=1e-12)
    with pytest.raises(GMJaxError, match="splits"):
        inception_score(logits[:5], splits=10)


def test_inception_score_extremes():
    c, splits = 12, 4
    assert inception_score(np.zeros((96, c)), splits) == pytest.approx((1.0, 0.0), abs=1e-12)
    # every split holds each class exactly once with (numerically) one-hot confidence: IS = C
    labels = np.tile(np.arange(c), splits)
    logits = 60.0 * np.eye(c)[labels]
    mean, std = inception_score(logits, splits)
    assert mean == pytest.approx(c, rel=1e-12) and std <= 1e-10


# ------------------------------------------------------------------------------------------------------- KID
def _np_mmd2_unbiased(x, y):
    """MMD-GAN's 'unbiased' estimator written out with explicit i != j masks."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off_m, off_n = ~np.eye(m, dtype=bool), ~np.eye(n, dtype=bool)
    return kxx[off_m].sum() / (m * (m - 1)) + kyy[off_n].sum() / (n * (n - 1)) - 2 * kxy.sum() / (m * n)


def test_mmd2_unbiased_matches_numpy():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(120, 32)), rng.normal(size=(90, 32)) * 1.2 + 0.1
    ref = _np_mmd2_unbiased(x, y)
    assert abs(mmd2_unbiased(x, y) - ref) <= 1e-10 * abs(ref)


def test_kid_matches_per_subset_reference_and_detects_shift():
    rng = np.random.default_rng(7)
    d = 32
    real = rng.normal(size=(400, d))
    fake = rng.normal(size=(350, d)) + 0.3
    key = jax.random.key(0)
    i1, i2 = kid_subset_indices(key, 350, 400, num_subsets=12, subset_size=100)
    assert i1.shape == i2.shape == (12, 100)
    assert all(len(np.unique(row)) == 100 for row in np.concatenate([i1, i2]))        # without replacement
    vals = np.array([_np_mmd2_unbiased(fake[a], real[b]) for a, b in zip(i1, i2)])
    mean, std = kid(fake, real, num_subsets=12, subset_size=100, key=key, subset_batch=4)
    assert abs(mean - vals.mean()) <= 1e-10 * abs(vals.mean())
    assert abs(std - vals.std()) <= 1e-8 * vals.std()
    assert mean > 10 * std > 0                                       # a shifted distribution is detected
    same_mean, same_std = kid(rng.normal(size=(400, d)), real, num_subsets=12, subset_size=100, key=key,
                               subset_batch=4)
    assert abs(same_mean) < 0.1 * mean and abs(same_mean) < 3 * same_std + 1e-12
    with pytest.raises(GMJaxError, match="subset_size=1000 exceeds"):
        kid(fake, real, key=key)
    with pytest.raises(GMJaxError, match="key"):
        kid(fake, real, subset_size=10)


# ------------------------------------------------------------------------------------------------------ PRDC
def _prdc_package(real, fake, k):
    from prdc import compute_prdc

    return {name: float(v) for name, v in compute_prdc(real, fake, nearest_k=k).items()}


def _brute_prdc(real, fake, k, op, squared=False):
    """Direct numpy version of the four formulas (full matrices) for either comparison convention."""
    def dist(a, b):
        d = np.maximum(-2 * a @ b.T + (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :], 0)
        return d if squared else np.sqrt(d)
    r = np.sort(dist(real, real), axis=1)[:, k]
    s = np.sort(dist(fake, fake), axis=1)[:, k]
    drf = dist(real, fake)
    inside = op(drf, r[:, None])
    return {"precision": inside.any(0).mean(), "recall": op(drf, s[None, :]).any(1).mean(),
            "density": (1.0 / k) * inside.sum(0).mean(), "coverage": op(drf.min(1), r).mean()}


def test_prdc_equals_prdc_package_exactly_blocked_and_unblocked():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(530, 24))
    fake = rng.normal(size=(470, 24)) * 1.1 + 0.2
    ref = _prdc_package(real, fake, 5)
    assert prdc(real, fake, k=5, block_size=128) == ref               # blocks smaller than N, ragged last block
    assert prdc(real, fake, k=5, block_size=10_000) == ref            # one block
    assert prdc(real.astype(np.float32), fake.astype(np.float32), k=3, block_size=100) == \
        _prdc_package(real.astype(np.float32).astype(np.float64), fake.astype(np.float32).astype(np.float64), 3)
    assert prdc(real[:200], fake[:150], k=20, block_size=64) == _prdc_package(real[:200], fake[:150], 20)  # top_k path
    radii = knn_radii(real, k=5, block_size=64)
    np.testing.assert_allclose(radii, np.sort(np.sqrt(np.maximum(
        -2 * real @ real.T + (real ** 2).sum(1)[:, None] + (real ** 2).sum(1)[None], 0)), axis=1)[:, 5],
        rtol=1e-14, atol=0)


def test_prdc_tie_conventions_on_lattice_features():
    """Integer features: all distances are exact, so many exact ties with the radii; '<' is prdc's convention,
    '<=' Kynkäänniemi's (on squared distances) and torch-fidelity's. No point is repeated more than k times here
    (zero radii: see the next test)."""
    rng = np.random.default_rng(9)
    real = rng.integers(0, 6, size=(300, 4)).astype(np.float64)
    fake = rng.integers(0, 6, size=(260, 4)).astype(np.float64)
    assert knn_radii(real, k=4).min() > 0 and knn_radii(fake, k=4).min() > 0
    strict = prdc(real, fake, k=4, block_size=64)
    assert strict == _prdc_package(real, fake, 4)
    assert strict == _brute_prdc(real, fake, 4, np.less)
    inclusive = prdc(real, fake, k=4, block_size=64, comparison="<=")
    assert inclusive == _brute_prdc(real, fake, 4, np.less_equal)
    assert prdc(real, fake, k=4, block_size=50, comparison="<=", squared=True) == \
        _brute_prdc(real, fake, 4, np.less_equal, squared=True)
    assert inclusive != strict and inclusive["density"] > strict["density"]


def _in_ball_or_centre(d, r):
    return (d < r) | (d == 0)


def test_prdc_balls_hold_their_centre_when_points_repeat():
    """A point present more than k times has k-NN radius 0: a strict ball {D < 0} is empty, and the prdc package
    scores such a set against itself as 0. Here a ball holds its centre (D < r or D == 0)."""
    rng = np.random.default_rng(11)
    x = np.repeat(rng.normal(size=(8, 64)) + 10.0, 7, axis=0)   # each point 7 times; the offset makes the
    assert np.all(knn_radii(x, k=5) == 0)                        # distance expansion's round-off non-zero
    expected = {"precision": 1.0, "recall": 1.0, "density": 7 / 5, "coverage": 1.0}   # density: 7 copies / k
    for comparison in ("<", "<="):
        assert prdc(x, x, k=5, block_size=16, comparison=comparison) == pytest.approx(expected, rel=1e-12)
    assert prdc(x, x[rng.permutation(len(x))], k=5, block_size=16) == pytest.approx(expected, rel=1e-12)

    # lattice features with points repeated more than k times: brute force with the same rule
    real = rng.integers(0, 3, size=(300, 4)).astype(np.float64)
    fake = rng.integers(0, 3, size=(260, 4)).astype(np.float64)
    assert (knn_radii(real, k=4) == 0).sum() > 50
    ours = prdc(real, fake, k=4, block_size=64)
    assert ours == _brute_prdc(real, fake, 4, _in_ball_or_centre)
    empty_balls = _brute_prdc(real, fake, 4, np.less)
    assert empty_balls == _prdc_package(real, fake, 4) and empty_balls["coverage"] < ours["coverage"]


def test_prdc_mode_collapse_sanity_and_errors():
    rng = np.random.default_rng(10)
    real, fake = 3.0 * rng.normal(size=(200, 16)), 0.1 * rng.normal(size=(200, 16))
    out = prdc(real, fake, k=5, block_size=64)
    assert out["precision"] > 0.8 and out["recall"] < 0.3
    with pytest.raises(GMJaxError, match="comparison"):
        prdc(real, fake, comparison="=<")
    with pytest.raises(GMJaxError, match="at least 6 rows"):
        prdc(real[:5], fake, k=5)
    with pytest.raises(GMJaxError, match="feature dimension"):
        prdc(real, fake[:, :8])
