"""Fréchet Inception Distance on feature arrays (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", eq. 6), with streaming float64 feature statistics.

- :func:`frechet_distance`: ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` between two Gaussians.
- :func:`feature_stats_init` / :func:`feature_stats_update` / :func:`feature_stats_merge` /
  :func:`feature_stats_finalize`: mean and covariance of features seen in batches (Chan, Golub & LeVeque 1979
  pairwise update), mergeable across hosts or devices.
- :func:`fid`: the distance between two feature sets in one call.
- :func:`save_stats` / :func:`load_stats`: pytorch-fid's ``.npz`` layout (keys ``mu`` and ``sigma``).

Numerics. tr((S1 S2)^(1/2)) needs only eigenvalues, not ``scipy.linalg.sqrtm``'s Schur form. With factors
S1 = L1 L1^T and S2 = L2 L2^T, S1 S2 = L1 (L1^T S2) has the eigenvalues of the symmetric PSD matrix
L1^T S2 L1 = B B^T, B = L1^T L2, so ``tr = sum sqrt(max(eigvalsh(B B^T), 0))``. The factors are Cholesky factors
(a fraction of a second at 2048-d, and their existence proves the matrix PSD); a singular covariance (fewer
examples than dimensions) has none, and ``V diag(sqrt(max(w, 0)))`` from ``w, V = eigh(S)`` takes its place.
Tiny negative eigenvalues from rounding are clamped to 0, so rank-deficient covariances stay finite. This runs
in float64 LAPACK on the host through numpy: eigenvalues alone (``syevd`` without vectors) cost a fraction of a
full ``eigh``, which is what ``jnp.linalg.eigvalsh`` computes, and the statistics are host arrays anyway. FID is
a small difference of traces of order 10^2-10^3, and float32 would lose about 1e-5 of it. On well-conditioned
statistics it equals pytorch-fid's sqrtm-based value to ~1e-14 relative, about 10x faster at 2048-d
(``benchmarks/speed_table.py``). The result is not clamped: two (near-)identical statistics may give a tiny
negative FID (of order 1e-12 tr(S)).

The streaming statistics are host-side numpy float64 reductions: features leave the device once per batch, the
centred second moment is accumulated in float64 (matching ``np.cov`` to ~1e-14 relative), the state is a plain
dict pytree that pickles, ``np.savez``-es and all-gathers trivially, and results do not depend on the backend.
"""

from __future__ import annotations

import os
import zipfile

import jax
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import features, one_line, open_npz, same_dim

__all__ = ["frechet_distance", "feature_stats_init", "feature_stats_update", "feature_stats_merge",
           "feature_stats_finalize", "feature_stats", "fid", "save_stats", "load_stats"]


# A covariance is PSD; eigenvalues below -_PSD_RTOL * (largest eigenvalue) are not rounding. Round-off of
# np.cov in float64 gives ~1e-15 relative, statistics stored as float32 ~1e-8; an indefinite "covariance"
# would otherwise be clamped silently inside _frechet_float64 and give a wrong (often ~0) distance.
_PSD_RTOL = 1e-6


def _check_psd(sigma, where: str) -> None:
    """Raises unless the symmetric sigma [D, D] has no eigenvalue below -_PSD_RTOL * its largest one.

    Fast path: a Cholesky factorisation of ``sigma + _PSD_RTOL * max(diag) * I`` succeeds only if every
    eigenvalue exceeds ``-_PSD_RTOL * max(diag) >= -_PSD_RTOL * lambda_max``; otherwise the eigenvalues decide.
    """
    shift = _PSD_RTOL * max(float(np.max(np.diag(sigma))), 0.0)
    try:
        np.linalg.cholesky(sigma + shift * np.eye(sigma.shape[0]))
        return
    except np.linalg.LinAlgError:
        pass
    w = np.linalg.eigvalsh(sigma)
    if w[0] < -_PSD_RTOL * max(w[-1], 0.0):
        raise GMJaxError(f"{where} is not a covariance matrix: its most negative eigenvalue is {w[0]:.4g} (largest "
                         f"{w[-1]:.4g}), so it is not positive semi-definite; compute it with feature_stats or "
                         f"np.cov(feats, rowvar=False)")


def _stats_arrays(mu, sigma, fn: str, suffix: str = "", *, check_psd: bool = True):
    """mu [D], sigma [D, D] as float64 numpy, checked: shapes, finite, sigma symmetric PSD (up to round-off;
    ``check_psd=False`` leaves that to the caller).

    ``fn`` starts the error messages (the function or file), ``suffix`` follows the names (``mu1``, ``sigma1``).
    """
    mu_name, sigma_name = f"mu{suffix}", f"sigma{suffix}"
    mu = np.asarray(jax.device_get(mu), np.float64)
    sigma = np.asarray(jax.device_get(sigma), np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GMJaxError(f"{fn}: {mu_name} must be [D] and {sigma_name} [D, D], got shapes {mu.shape} and "
                         f"{sigma.shape}; compute them with feature_stats_finalize or load_stats")
    for name, a in ((mu_name, mu), (sigma_name, sigma)):
        bad = a.size - int(np.count_nonzero(np.isfinite(a)))
        if bad:
            raise GMJaxError(f"{fn}: {name} has {bad} NaN or inf values; recompute the statistics from finite "
                             f"features")
    if check_psd:
        _check_psd(0.5 * (sigma + sigma.T), f"{fn}: {sigma_name}")
    return mu, sigma


def _psd_factor(sigma, where: str):
    """L with sigma = L L^T: the Cholesky factor (which exists only for a positive definite sigma, so the PSD
    check passes), else, once sigma is checked PSD up to round-off, V diag(sqrt(max(w, 0))) from its eigh."""
    try:
        return np.linalg.cholesky(sigma)  # reads the lower triangle only
    except np.linalg.LinAlgError:
        sigma = 0.5 * (sigma + sigma.T)
        _check_psd(sigma, where)
        w, v = np.linalg.eigh(sigma)
        return v * np.sqrt(np.maximum(w, 0.0))


def _frechet_float64(mu1, sigma1, mu2, sigma2) -> float:
    """The distance from float64 numpy statistics (see the module docstring); checks both sigmas are PSD."""
    b = _psd_factor(sigma1, "frechet_distance: sigma1").T @ _psd_factor(sigma2, "frechet_distance: sigma2")
    # L1^T S2 L1 = b b^T (numpy multiplies a matrix by its own transpose with syrk: half a product)
    ev = np.linalg.eigvalsh(b @ b.T)
    tr_covmean = np.sum(np.sqrt(np.maximum(ev, 0.0)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, eq. 6), in float64.

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))`` with the trace term from two
    a Cholesky factor and symmetric eigenvalues (see the module docstring); no eps offset, no clamping of the result.

    Args:
      mu1, mu2: feature means, [D].
      sigma1, sigma2: feature covariances, [D, D] (symmetric PSD; rank-deficient is fine).
    Returns: the distance as a Python float (squared feature units).
    Raises: GMJaxError for NaN/inf, or a sigma with an eigenvalue below -1e-6 times its largest (round-off of
      float32-stored statistics is ~1e-8): the trace term would silently clamp it and give a wrong distance.
    """
    mu1, sigma1 = _stats_arrays(mu1, sigma1, "frechet_distance", "1", check_psd=False)  # _psd_factor checks
    mu2, sigma2 = _stats_arrays(mu2, sigma2, "frechet_distance", "2", check_psd=False)
    if mu1.shape != mu2.shape:
        raise GMJaxError(f"frechet_distance: the two statistics have different feature dimensions ({mu1.shape[0]} and "
                         f"{mu2.shape[0]}); compute both from the same network layer")
    return _frechet_float64(mu1, sigma1, mu2, sigma2)


# ------------------------------------------------------------------------------------------ streaming statistics
def feature_stats_init(dim: int) -> dict:
    """Empty running statistics for D-dimensional features.

    Returns: a dict pytree ``{"n": int64 [], "mean": float64 [D], "m2": float64 [D, D]}`` where ``m2`` is the
    centred sum of outer products sum_i (x_i - mean)(x_i - mean)^T.
    """
    if int(dim) != dim or dim < 1:
        raise GMJaxError(f"feature dimension must be a positive integer, got {dim!r}")
    dim = int(dim)
    return {"n": np.zeros((), np.int64), "mean": np.zeros((dim,), np.float64),
            "m2": np.zeros((dim, dim), np.float64)}


def _check_state(state, name: str = "state"):
    if not isinstance(state, dict) or set(state) != {"n", "mean", "m2"}:
        raise GMJaxError(f"{name} must be the dict returned by feature_stats_init/update/merge, got "
                         f"{type(state).__name__}")
    return np.asarray(state["n"], np.int64), np.asarray(state["mean"], np.float64), np.asarray(state["m2"],
                                                                                                 np.float64)


def feature_stats_merge(a: dict, b: dict) -> dict:
    """Statistics of the union of two disjoint sample sets (Chan, Golub & LeVeque 1979, pairwise update).

    ``mean = mean_a + delta n_b / n``, ``m2 = m2_a + m2_b + delta delta^T n_a n_b / n`` with
    ``delta = mean_b - mean_a``. Associative and commutative up to float64 rounding, so per-device or per-host
    states can be merged in any order (e.g. after ``multihost_utils.process_allgather``).
    """
    na, ma, m2a = _check_state(a, "a")
    nb, mb, m2b = _check_state(b, "b")
    if ma.shape != mb.shape:
        raise GMJaxError(f"cannot merge statistics of dimension {ma.shape[0]} and {mb.shape[0]}; use the same "
                         f"feature layer for both")
    n = na + nb
    if nb == 0:
        return {"n": na.copy(), "mean": ma.copy(), "m2": m2a.copy()}
    if na == 0:
        return {"n": nb.copy(), "mean": mb.copy(), "m2": m2b.copy()}
    delta = mb - ma
    mean = ma + delta * (nb / n)
    m2 = m2a + m2b + np.outer(delta, delta) * (na * nb / n)
    return {"n": n, "mean": mean, "m2": m2}


def feature_stats_update(state: dict, feats) -> dict:
    """Add a batch of features [B, D] (numpy or JAX, any float dtype) to the running statistics.

    The batch is moved to the host and its mean and centred second moment are formed in float64, then merged
    with :func:`feature_stats_merge`. Returns the new state (the input state is not modified).
    """
    n, mean, _ = _check_state(state)
    x = features(feats, "feats", min_rows=0, fn="feature_stats_update")
    if x.shape[1] != mean.shape[0]:
        raise GMJaxError(f"feats has feature dimension {x.shape[1]} but the statistics were initialised for "
                         f"{mean.shape[0]}; call feature_stats_init({x.shape[1]})")
    if x.shape[0] == 0:
        return {"n": n.copy(), "mean": mean.copy(), "m2": np.asarray(state["m2"], np.float64).copy()}
    bmean = x.mean(axis=0)
    xc = x - bmean
    batch = {"n": np.asarray(x.shape[0], np.int64), "mean": bmean, "m2": xc.T @ xc}
    return feature_stats_merge(state, batch)


def feature_stats_finalize(state: dict, ddof: int = 1):
    """(mu [D], sigma [D, D]) as float64 numpy arrays.

    ``ddof=1`` (default) is ``np.cov``'s unbiased covariance, as in TTUR/pytorch-fid/torch-fidelity; StyleGAN2-ADA
    uses the population covariance, ``ddof=0``.
    """
    n, mean, m2 = _check_state(state)
    if ddof not in (0, 1):
        raise GMJaxError(f"ddof must be 0 (population covariance) or 1 (np.cov's default), got {ddof!r}")
    if n - ddof < 1:
        raise GMJaxError(f"need more than {ddof} sample(s) to estimate a covariance with ddof={ddof}, got {int(n)}; "
                         "give more examples (rows)")
    sigma = m2 / float(n - ddof)
    return mean.copy(), 0.5 * (sigma + sigma.T)


def feature_stats(feats, ddof: int = 1):
    """(mu [D], sigma [D, D]) of a whole feature array [N, D] in one call (float64)."""
    x = features(feats, "feats", fn="feature_stats")
    return feature_stats_finalize(feature_stats_update(feature_stats_init(x.shape[1]), x), ddof=ddof)


def fid(feats1, feats2) -> float:
    """FID between two feature sets [N1, D] and [N2, D] (e.g. Inception pool3, D=2048): float64 stats (ddof=1)
    followed by :func:`frechet_distance`. Compare FIDs only at equal sample counts (it is biased in N)."""
    a = features(feats1, "feats1", min_rows=2, fn="fid")
    b = features(feats2, "feats2", min_rows=2, fn="fid")
    same_dim(a, b, "feats1", "feats2", fn="fid")
    return frechet_distance(*feature_stats(a), *feature_stats(b))


# ------------------------------------------------------------------------------------------------------ storage
def save_stats(path, mu, sigma) -> None:
    """Write statistics in pytorch-fid's layout: an ``.npz`` with arrays ``mu`` [D] and ``sigma`` [D, D] (float64).

    Note ``np.savez`` appends ``.npz`` when ``path`` has no such suffix."""
    mu, sigma = _stats_arrays(mu, sigma, "save_stats")
    np.savez(os.fspath(path), mu=mu, sigma=sigma)


def load_stats(path):
    """Read ``(mu [D], sigma [D, D])`` from a pytorch-fid / TTUR style ``.npz`` file (keys ``mu``, ``sigma``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GMJaxError(f"FID statistics file '{path}' does not exist; create it with save_stats(path, mu, sigma) "
                         f"(note np.savez adds a '.npz' suffix)")
    try:
        with open_npz(path, "write it with save_stats") as f:
            keys = set(f.files)
            if not {"mu", "sigma"} <= keys:
                raise GMJaxError(f"FID statistics file '{path}' must contain arrays 'mu' and 'sigma' "
                                 f"(pytorch-fid layout), found {sorted(keys)}; write it with save_stats")
            mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
    except GMJaxError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a damaged member
        raise GMJaxError(f"cannot read FID statistics file '{path}' as .npz ({one_line(e)}); write it with "
                         "save_stats") from None
    return _stats_arrays(mu, sigma, f"FID statistics file '{path}'")
