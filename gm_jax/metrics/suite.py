"""The sample-quality metrics of one evaluation, from already extracted features.

:func:`sample_quality` turns the features of real and generated examples into the numbers ``gm-jax evaluate``
reports: FID (Heusel et al. 2017), IS (Salimans et al. 2016), KID (Binkowski et al. 2018), precision/recall
(Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020). Test NLL needs the model, not features;
the CLI adds it with :func:`gm_jax.metrics.evaluate_log_likelihood`. :mod:`gm_jax.metrics.evaluate` runs a whole
evaluation (inputs -> features -> these numbers).
"""

from __future__ import annotations

import jax
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics.class_score import inception_score
from gm_jax.metrics.frechet import feature_stats, frechet_distance
from gm_jax.metrics.manifold import prdc
from gm_jax.metrics.mmd import kid

__all__ = ["METRICS", "parse_metrics", "check_real_given", "sample_quality", "format_table"]

METRICS = ("fid", "is", "kid", "prdc", "nll")


def parse_metrics(text: str) -> tuple[str, ...]:
    """``"fid,kid"`` -> ("fid", "kid"); unknown names raise."""
    names = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise GMJaxError(f"unknown metric {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    return names


def check_real_given(metrics, has_examples: bool, has_stats: bool = False) -> None:
    """Raises unless the real side provides what ``metrics`` need (FID can use reference statistics alone)."""
    need = [m for m in metrics if m in ("kid", "prdc") or (m == "fid" and not has_stats)]
    if need and not has_examples:
        raise GMJaxError(f"{', '.join(need)} need real examples: pass --real DIR | FILE.npz | DATASET[:SPLIT]"
                         + (" (the statistics file serves fid only)" if has_stats else ""))


def sample_quality(metrics, fake: dict, real: dict | None = None, *, features_key: str,
                   logits_key: str | None = None, real_stats: tuple | None = None, is_splits: int = 10,
                   kid_subsets: int = 100, kid_subset_size: int = 1000, prdc_k: int = 5, key=None) -> dict:
    """FID, IS, KID and PRDC of generated features against real ones.

    Args:
      metrics: names among ``fid``, ``is``, ``kid``, ``prdc`` (``nll`` is ignored here).
      fake, real: {output name: [N, D]} as returned by :mod:`gm_jax.metrics.extract`.
      features_key: the output used by FID, KID and PRDC; logits_key: the output used by IS.
      real_stats: (mu, sigma) of the real features instead of ``real`` (a reference ``.npz``); FID only.
      kid_subset_size: capped at the smaller set size (as StyleGAN2-ADA does), so small sets still get a KID.
      key: PRNG key for KID's subsets (default ``jax.random.key(0)``).
    Returns: a flat dict of floats: fid; is_mean, is_std; kid_mean, kid_std; precision, recall, density, coverage.
    """
    out = {}
    check_real_given(metrics, real is not None, real_stats is not None)
    f = fake[features_key]
    if "fid" in metrics:
        mu_r, sigma_r = real_stats if real_stats is not None else feature_stats(real[features_key])
        mu_f, sigma_f = feature_stats(f)
        out["fid"] = frechet_distance(mu_f, sigma_f, mu_r, sigma_r)
    if "is" in metrics:
        if logits_key is None:
            raise GMJaxError("is needs class logits; use --features inception or domain")
        out["is_mean"], out["is_std"] = inception_score(fake[logits_key], splits=min(is_splits, len(f)))
    if "kid" in metrics:
        r = real[features_key]
        m = min(kid_subset_size, len(f), len(r))
        out["kid_mean"], out["kid_std"] = kid(f, r, num_subsets=kid_subsets, subset_size=m,
                                              key=jax.random.key(0) if key is None else key)
    if "prdc" in metrics:
        out.update(prdc(real[features_key], f, k=prdc_k))
    return out


def format_table(values: dict) -> str:
    """Two aligned columns, one metric per line."""
    width = max(len(k) for k in values)
    lines = []
    for k, v in values.items():
        lines.append(f"{k:>{width}}  {v:.6g}" if isinstance(v, (float, np.floating)) else f"{k:>{width}}  {v}")
    return "\n".join(lines)
