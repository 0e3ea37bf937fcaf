"""Mode-collapse metrics on labelled samples.

- :func:`class_coverage`: the class histogram of generated samples (classes predicted by a classifier, e.g. the
  argmax of the domain classifier) against the uniform distribution, as in the Stacked-MNIST evaluations of
  Metz et al. 2017 ("Unrolled Generative Adversarial Networks") and Srivastava et al. 2017 ("VEEGAN: Reducing
  Mode Collapse in GANs using Implicit Variational Learning"): KL(histogram || uniform) in nats, and the number
  of classes that get less than half their uniform share.
- :func:`mode_coverage`: for mixtures with known modes (the 2-D toy sets, see
  :func:`gm_jax.data.toy2d.mode_distances`), the share of high-quality samples and the number of modes covered
  (Srivastava et al. 2017, sec. 5.1: a sample is high quality within 3 standard deviations of its nearest mode).

Both are counts on small integer or distance arrays, computed exactly in numpy (no JAX needed).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from gm_jax.errors import GMJaxError

__all__ = ["class_coverage", "mode_coverage"]


def _positive_int(value, what: str, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GMJaxError(f"{fn}: {what} must be a positive integer, got {value!r}")
    return int(value)


def class_coverage(labels, num_classes: int) -> dict:
    """Predicted classes of samples against the uniform distribution over ``num_classes`` classes.

    With n_c the number of samples labelled c, N = sum_c n_c, p_c = n_c / N and C = num_classes:

    - ``class_kl`` = KL(p || uniform) = sum_c p_c log(p_c C) in nats, with 0 log 0 = 0. It is 0 for a perfectly
      balanced generator and log C when every sample falls in one class.
    - ``classes_under_half`` = #{c : p_c < 0.5 / C}, the classes that get less than half their uniform share
      (a missed class counts; compared exactly as 2 C n_c < N, so ties at the boundary do not count).
    - ``histogram``: np.ndarray [C] float64 of the shares p_c.

    Args:
      labels: [N] integer class indices in [0, C), numpy or JAX (e.g. ``logits.argmax(-1)``). Logits,
        probabilities and other float arrays are refused rather than guessed at.
      num_classes: C >= 1 (1000 for Stacked MNIST).
    Returns: dict with ``class_kl`` (float), ``classes_under_half`` (int), ``histogram`` (np.ndarray [C]).
    """
    fn = "class_coverage"
    c = _positive_int(num_classes, "num_classes", fn)
    y = np.asarray(jax.device_get(labels))
    if not np.issubdtype(y.dtype, np.integer):
        raise GMJaxError(f"{fn}: labels must be integer class indices [N], got dtype {y.dtype}; for logits or "
                         f"probabilities pass their argmax(-1)")
    if y.ndim != 1:
        raise GMJaxError(f"{fn}: labels must have shape [N] (one class index per sample), got shape {y.shape}")
    if y.size == 0:
        raise GMJaxError(f"{fn}: labels is empty; pass the predicted classes of at least one sample")
    out = int(np.count_nonzero((y < 0) | (y >= c)))
    if out:
        raise GMJaxError(f"{fn}: {out} of {y.size} labels lie outside [0, {c}) (min {int(y.min())}, max "
                         f"{int(y.max())}); check num_classes")
    n = y.size
    counts = np.bincount(y.astype(np.int64), minlength=c)
    seen = counts > 0
    # p_c log(p_c C) with p_c C = n_c C / N formed from integers, so a balanced histogram gives exactly 0.
    kl = float(np.sum(counts[seen] / n * np.log(counts[seen] * c / n)))
    return {"class_kl": kl, "classes_under_half": int(np.count_nonzero(2 * c * counts < n)),
            "histogram": counts / n}


def mode_coverage(distances, *, threshold: float = 3.0, min_samples: int = 1) -> dict:
    """Modes covered by samples, from each sample's distance to each mode.

    A sample is *high quality* when the distance to its nearest mode is ``<= threshold`` (inclusive: a sample
    exactly at 3.0 counts); Srivastava et al. 2017 (VEEGAN), sec. 5.1, use 3 standard deviations. A mode is
    *covered* when at least ``min_samples`` high-quality samples have it as their nearest mode. Ties for the
    nearest mode go to the lowest mode index.

    Args:
      distances: [N, M] non-negative distances of N samples to M modes, each in units of that mode's standard
        deviation (:func:`gm_jax.data.toy2d.mode_distances` gives them for ``eight_gaussians`` and ``rings``).
      threshold: the high-quality radius (>= 0), in the same units.
      min_samples: high-quality samples a mode needs to count as covered (>= 1).
    Returns: dict with ``modes_covered`` (int), ``num_modes`` (int, M), ``high_quality`` (float, the fraction of
      the N samples that are high quality) and ``per_mode`` (np.ndarray [M] int64, high-quality samples per mode).
    """
    fn = "mode_coverage"
    if not (isinstance(threshold, (int, float, np.integer, np.floating)) and not isinstance(threshold, bool)
            and math.isfinite(threshold) and threshold >= 0):
        raise GMJaxError(f"{fn}: threshold must be a finite number >= 0 (in standard deviations), got {threshold!r}")
    k = _positive_int(min_samples, "min_samples", fn)
    d = np.asarray(jax.device_get(distances))
    if not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)):
        raise GMJaxError(f"{fn}: distances must be a real array [N, M], got dtype {d.dtype}")
    if d.ndim != 2 or d.shape[0] < 1 or d.shape[1] < 1:
        raise GMJaxError(f"{fn}: distances must have shape [N, M] (samples x modes) with N, M >= 1, got shape "
                         f"{d.shape}")
    d = d.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(d) | (d < 0)))
    if bad:
        raise GMJaxError(f"{fn}: distances has {bad} negative, NaN or inf values; pass non-negative finite "
                         f"distances (sample to mode, in standard deviations)")
    n, m = d.shape
    nearest = np.argmin(d, axis=1)
    good = d[np.arange(n), nearest] <= threshold
    per_mode = np.bincount(nearest[good], minlength=m).astype(np.int64)
    return {"modes_covered": int(np.count_nonzero(per_mode >= k)), "num_modes": int(m),
            "high_quality": float(np.count_nonzero(good) / n), "per_mode": per_mode}
