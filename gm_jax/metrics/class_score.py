"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", sec. 4) from classifier logits.

``IS = exp(E_x KL(p(y|x) || p(y)))`` per split, reported as (mean, std) over splits, exactly as the original
``improved-gan/inception_score/model.py`` and torch-fidelity: contiguous splits with boundaries ``i*N//splits``
(no shuffling here; shuffle the logits yourself to reproduce torch-fidelity's ``RandomState(2020)`` order),
p(y) the mean of p(y|x) within the split, and the std with ddof=0 (np.std; torchmetrics uses ddof=1).
Computed in float64 with ``log_softmax``; 0·log 0 is taken as 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import features, x64

__all__ = ["inception_score"]

# Rows within this of summing to 1 (and non-negative) are taken for probabilities: float32 softmax outputs
# sum to 1 within ~1e-6 per 1000 classes, while logits summing to 1 in every row do not happen by chance.
_PROB_SUM_TOL = 1e-3


def _is_x64(logits, seg, num_splits: int):
    logp = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(logp)
    counts = jax.ops.segment_sum(jnp.ones_like(seg, logits.dtype), seg, num_segments=num_splits)   # [S]
    py = jax.ops.segment_sum(p, seg, num_segments=num_splits) / counts[:, None]                    # [S, C]
    log_py = jnp.log(py)[seg]                                                                      # [N, C]
    kl = jnp.sum(jnp.where(p > 0, p * (logp - log_py), 0.0), axis=-1)                              # [N]
    mean_kl = jax.ops.segment_sum(kl, seg, num_segments=num_splits) / counts
    return jnp.exp(mean_kl)


_is_x64_jit = jax.jit(_is_x64, static_argnums=2)


def inception_score(logits, splits: int = 10):
    """Inception Score of N samples from their class logits.

    Args:
      logits: [N, C] pre-softmax classifier outputs (for FID-Inception: ``pool3 @ W``, 1008 classes, with or
        without the bias; torch-fidelity uses the unbiased ones). Any float dtype; computed in float64.
      splits: number of contiguous splits; split i is ``logits[i*N//splits:(i+1)*N//splits]``.
    Returns: (mean, std) over splits as Python floats; std uses ddof=0. Bounds: 1 <= IS <= C.
    Raises: GMJaxError on NaN/inf, and when the input looks like probabilities: C > 1 and every row
      non-negative and summing to 1 within 1e-3 (a softmax of probabilities flattens them, so IS ~1 for any
      model). Pass ``log(probs)`` instead: ``log_softmax(log p) = log p``, the same IS as the logits give.
    """
    x = features(logits, "logits", fn="inception_score")
    if x.shape[1] > 1 and np.all(x >= 0) and np.all(np.abs(x.sum(axis=1) - 1.0) <= _PROB_SUM_TOL):
        raise GMJaxError("inception_score takes logits, but every row is non-negative and sums to 1, which looks "
                         "like probabilities; pass the classifier's logits or np.log(np.maximum(probs, 1e-30))")
    n = x.shape[0]
    if int(splits) != splits or splits < 1:
        raise GMJaxError(f"inception_score: splits must be a positive integer, got {splits!r}")
    splits = int(splits)
    if splits > n:
        raise GMJaxError(f"inception_score: splits={splits} is more than the number of samples N={n}; use "
                         f"splits <= N (the usual setting is 10 splits of 50,000 samples)")
    bounds = np.arange(splits + 1) * n // splits
    seg = np.repeat(np.arange(splits), np.diff(bounds))
    with x64():
        scores = np.asarray(_is_x64_jit(jnp.asarray(x), jnp.asarray(seg, jnp.int32), splits), np.float64)
    return float(np.mean(scores)), float(np.std(scores))
