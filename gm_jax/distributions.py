"""Log-densities, log-masses and KL divergences, written for numerical stability.

Shape contract: every ``*_log_prob`` takes parameters broadcastable to ``x`` [B, ...] and returns the
log-probability summed over all event (non-batch) axes, [B], in nats. ``event_ndims`` says how many
trailing axes form the event (default: all but the first).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

LOG_2PI = float(np.log(2 * np.pi))

__all__ = [
    "log1mexp", "sum_event", "diag_gaussian_log_prob", "standard_normal_log_prob", "diag_gaussian_kl",
    "bernoulli_log_prob", "categorical_log_prob", "discretized_logistic_log_prob",
    "discretized_gaussian_log_prob", "discretized_logistic_mixture_log_prob",
]


@jax.custom_jvp
def log1mexp(a):
    """log(1 - exp(-a)) for a > 0, accurate at both ends (Maechler 2012, "Accurately computing log(1-exp(-|a|))")."""
    return jnp.where(a > np.log(2.0), jnp.log1p(-jnp.exp(-a)), jnp.log(-jnp.expm1(-a)))


# The derivative 1/expm1(a) is finite for every a > 0; defining it directly avoids the NaN that the
# untaken branch of the `where` above would otherwise leak into the gradient.
log1mexp.defjvps(lambda t, _, a: t / jnp.expm1(a))


def sum_event(x, event_ndims: int | None = None):
    """Sums the trailing ``event_ndims`` axes (default: all but the first)."""
    n = x.ndim - 1 if event_ndims is None else event_ndims
    return x.sum(axis=tuple(range(x.ndim - n, x.ndim))) if n else x


def diag_gaussian_log_prob(x, mean, log_std, event_ndims: int | None = None):
    """log N(x; mean, diag(exp(2 log_std))) summed over the event axes."""
    z = (x - mean) * jnp.exp(-log_std)
    return sum_event(-0.5 * (z**2 + LOG_2PI) - log_std, event_ndims)


def standard_normal_log_prob(x, event_ndims: int | None = None):
    """log N(x; 0, I) summed over the event axes."""
    return sum_event(-0.5 * (x**2 + LOG_2PI), event_ndims)


def diag_gaussian_kl(mean, log_std, prior_mean=0.0, prior_log_std=0.0, event_ndims: int | None = None):
    """KL(N(mean, diag s^2) || N(prior_mean, diag prior_s^2)) in closed form, summed over the event axes."""
    var_ratio = jnp.exp(2 * (log_std - prior_log_std))
    mahalanobis = ((mean - prior_mean) * jnp.exp(-prior_log_std)) ** 2
    return sum_event(0.5 * (var_ratio + mahalanobis - 1.0) - (log_std - prior_log_std), event_ndims)


def bernoulli_log_prob(x, logits, event_ndims: int | None = None):
    """log Bernoulli(x; sigmoid(logits)) for x in {0, 1}, via log-sigmoid (finite for any logits)."""
    return sum_event(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits), event_ndims)


def categorical_log_prob(x, logits, event_ndims: int | None = None):
    """log Categorical(x; softmax(logits)): x integer [B, ...], logits [B, ..., K]."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, jnp.asarray(x, jnp.int32)[..., None], axis=-1)[..., 0]
    return sum_event(picked, event_ndims)


def _log_bin_mass(x, mean, log_scale, num_levels, log_cdf, log_pdf):
    """log P(bin of x) for a continuous location-scale law discretized into K bins of [-1, 1].

    The levels are the bin centres 2k/(K-1) - 1; interior bins have half-width 1/(K-1) and the two edge
    bins extend to -inf and +inf. The mass of an interior bin is computed in the lower tail of the law
    (reflecting bins whose centre is above the mean), where log CDF is accurate, as
    log CDF(hi) + log1mexp(log CDF(hi) - log CDF(lo)); a bin much narrower than the scale falls back to
    log pdf(centre) + log(width), where the difference of CDFs underflows.
    """
    half = 1.0 / (num_levels - 1)
    inv_s = jnp.exp(-log_scale)
    c = (x - mean) * inv_s  # standardized centre
    h = half * inv_s  # standardized half-width
    reflect = c > 0
    lo = jnp.where(reflect, -c - h, c - h)
    hi = jnp.where(reflect, -c + h, c + h)
    log_hi, log_lo = log_cdf(hi), log_cdf(lo)
    gap = log_hi - log_lo
    safe_gap = jnp.where(gap > 1e-6, gap, 1.0)
    interior = jnp.where(gap > 1e-6, log_hi + log1mexp(safe_gap), log_pdf(c) - log_scale + np.log(2 * half))
    first = log_cdf(c + h)  # x at the lowest level: P(X < centre + half)
    last = log_cdf(-(c - h))  # x at the highest level: P(X > centre - half)
    return jnp.where(x < -1 + half / 2, first, jnp.where(x > 1 - half / 2, last, interior))


def _logistic_log_cdf(z):
    return -jax.nn.softplus(-z)


def _logistic_log_pdf(z):
    return -z - 2 * jax.nn.softplus(-z)


def discretized_logistic_log_prob(x, mean, log_scale, num_levels: int, event_ndims: int | None = None):
    """Discretized logistic log-mass (Salimans et al. 2017, PixelCNN++), summed over the event axes.

    Args:
      x: bin centres in [-1, 1] (see :func:`gm_jax.data.to_centres`), [B, ...].
      mean, log_scale: logistic parameters, broadcastable to x.
      num_levels: K, the number of discrete values (256 for 8-bit, 17 for digits).
    """
    return sum_event(_log_bin_mass(x, mean, log_scale, num_levels, _logistic_log_cdf, _logistic_log_pdf),
                     event_ndims)


def discretized_gaussian_log_prob(x, mean, log_std, num_levels: int, event_ndims: int | None = None):
    """Discretized Gaussian log-mass (the decoder of Ho et al. 2020, DDPM), same contract as the logistic."""
    return sum_event(_log_bin_mass(x, mean, log_std, num_levels, norm.logcdf, norm.logpdf), event_ndims)


def discretized_logistic_mixture_log_prob(x, logit_weights, means, log_scales, num_levels: int,
                                          event_ndims: int | None = None):
    """Per-dimension mixture of M discretized logistics (PixelCNN++ without channel coupling).

    x [B, ...]; logit_weights, means, log_scales [B, ..., M]. Returns [B] (summed over the event axes).
    """
    comp = _log_bin_mass(x[..., None], means, log_scales, num_levels, _logistic_log_cdf, _logistic_log_pdf)
    return sum_event(logsumexp(comp + jax.nn.log_softmax(logit_weights, axis=-1), axis=-1), event_ndims)
