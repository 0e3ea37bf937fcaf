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
    "standard_logistic_log_prob", "bernoulli_log_prob", "categorical_log_prob", "discretized_logistic_log_prob",
    "discretized_gaussian_log_prob", "discretized_logistic_mixture_log_prob",
    "coupled_discretized_logistic_mixture_log_prob", "coupled_discretized_logistic_mixture_sample",
    "gaussian_mixture_log_prob", "gaussian_mixture_sample", "categorical_sample", "bernoulli_sample",
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


def standard_logistic_log_prob(x, event_ndims: int | None = None):
    """log of the standard logistic density, -x - 2 softplus(-x), summed over the event axes (the base
    distribution of NICE, Dinh et al. 2015; draw it with ``jax.random.logistic``)."""
    return sum_event(_logistic_log_pdf(x), event_ndims)


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


def gaussian_mixture_log_prob(x, logit_weights, means, log_stds, event_ndims: int | None = None):
    """Per-dimension mixture of M Gaussians (the conditionals of MADE MoG, Papamakarios et al. 2017).

    x [B, ...]; logit_weights, means, log_stds [B, ..., M]. Returns log-densities [B] (summed over the
    event axes), in nats.
    """
    comp = diag_gaussian_log_prob(x[..., None], means, log_stds, event_ndims=0)
    return sum_event(logsumexp(comp + jax.nn.log_softmax(logit_weights, axis=-1), axis=-1), event_ndims)


def _coupling_matrix(coeffs, num_channels: int):
    """tanh(coeffs) [..., C(C-1)/2, M] -> strictly lower-triangular [..., C, C, M], row c = channel coupled.

    coeffs list the pairs (c, j), j < c, in row order: (1, 0), (2, 0), (2, 1), ... (for RGB: a, b, c of
    PixelCNN++: mu_g + a r, mu_b + b r + c g).
    """
    rows, cols = np.tril_indices(num_channels, -1)
    shape = coeffs.shape[:-2] + (num_channels, num_channels, coeffs.shape[-1])
    return jnp.zeros(shape, coeffs.dtype).at[..., rows, cols, :].set(jnp.tanh(coeffs))


def coupled_discretized_logistic_mixture_log_prob(x, logit_weights, means, log_scales, coeffs, num_levels: int,
                                                  event_ndims: int | None = None):
    """PixelCNN++'s mixture of discretized logistics over a pixel's C channels (Salimans et al. 2017).

    One mixture component is chosen per pixel (weights shared across channels); under component m the
    channels are independent discretized logistics given the previous channels, whose means are shifted
    linearly by them: mu_c + sum_{j<c} tanh(coeff_{c,j}) x_j. The log-mass of a pixel is
    logsumexp_m [log w_m + sum_c log P_m(x_c | x_{<c})].

    Args:
      x: bin centres in [-1, 1] (:func:`gm_jax.data.to_centres`), [B, ..., C] (channels last).
      logit_weights: [B, ..., M].
      means, log_scales: [B, ..., C, M].
      coeffs: raw coupling coefficients [B, ..., C(C-1)/2, M] (see the order in ``_coupling_matrix``).
      num_levels: K.
      event_ndims: trailing axes of x forming the event, channels included (default: all but the first).

    Returns:
      [B] log-masses in nats.
    """
    c = x.shape[-1]
    shift = jnp.einsum("...cjm,...j->...cm", _coupling_matrix(coeffs, c), x)
    comp = _log_bin_mass(x[..., None], means + shift, log_scales, num_levels, _logistic_log_cdf, _logistic_log_pdf)
    per_pixel = logsumexp(comp.sum(-2) + jax.nn.log_softmax(logit_weights, axis=-1), axis=-1)
    return sum_event(per_pixel, None if event_ndims is None else event_ndims - 1)


def categorical_sample(key, logits, temperature=1.0):
    """Draws from softmax(logits / temperature) over the last axis -> int32 [...].

    temperature 0 gives the argmax (the most probable value); it may be a traced scalar.
    """
    t = jnp.asarray(temperature, jnp.float32)
    logits = jnp.asarray(logits, jnp.float32)
    drawn = jax.random.categorical(key, logits / jnp.where(t > 0, t, 1.0), axis=-1)
    return jnp.where(t > 0, drawn, jnp.argmax(logits, axis=-1)).astype(jnp.int32)


def bernoulli_sample(key, logits, temperature=1.0):
    """Draws {0, 1} (int32) with P(1) = sigmoid(logits / temperature); temperature 0 thresholds at logits > 0."""
    t = jnp.asarray(temperature, jnp.float32)
    logits = jnp.asarray(logits, jnp.float32)
    drawn = jax.random.bernoulli(key, jax.nn.sigmoid(logits / jnp.where(t > 0, t, 1.0)))
    return jnp.where(t > 0, drawn, logits > 0).astype(jnp.int32)


def gaussian_mixture_sample(key, logit_weights, means, log_stds, temperature=1.0):
    """Draws from the per-dimension Gaussian mixture of :func:`gaussian_mixture_log_prob` -> [...].

    Temperature T tempers the component weights (logits / T) and scales the noise by T (T = 0: the mean
    of the most probable component).
    """
    k_comp, k_noise = jax.random.split(key)
    m = categorical_sample(k_comp, logit_weights, temperature)[..., None]
    pick = lambda p: jnp.take_along_axis(p, m, axis=-1)[..., 0]
    eps = jax.random.normal(k_noise, m.shape[:-1])
    return pick(means) + temperature * jnp.exp(pick(log_stds)) * eps


def coupled_discretized_logistic_mixture_sample(key, logit_weights, means, log_scales, coeffs, num_levels: int,
                                                temperature=1.0):
    """Exact draw from :func:`coupled_discretized_logistic_mixture_log_prob` -> bin centres [..., C].

    Per pixel: a component m ~ softmax(logit_weights / T); then channel by channel, a logistic draw with
    the coupled mean (shifted by the already drawn channels' bin centres) rounded to the nearest level
    (the edge bins take the tails), which samples the discretized law exactly. T scales the logistic
    noise (T = 0: the rounded coupled mean of the most probable component). Parameter shapes as in the
    log-prob ([..., M], [..., C, M], [..., C, M], [..., C(C-1)/2, M]). Convert with
    :func:`gm_jax.data.from_centres` for integers.
    """
    c = means.shape[-2]
    k_comp, k_noise = jax.random.split(key)
    m = categorical_sample(k_comp, logit_weights, temperature)[..., None, None]
    pick = lambda p: jnp.take_along_axis(p, m, axis=-1)[..., 0]
    mu, scale = pick(means), jnp.exp(pick(log_scales))  # [..., C]
    coupling = jnp.take_along_axis(_coupling_matrix(coeffs, c), m[..., None], axis=-1)[..., 0]  # [..., C, C]
    noise = temperature * jax.random.logistic(k_noise, mu.shape)
    half_steps = (num_levels - 1) / 2.0
    x = jnp.zeros_like(mu)
    for ch in range(c):  # C is static and small (1 or 3): the coupling makes the channels sequential
        y = mu[..., ch] + (coupling[..., ch, :] * x).sum(-1) + scale[..., ch] * noise[..., ch]
        level = jnp.clip(jnp.round((y + 1.0) * half_steps), 0, num_levels - 1)
        x = x.at[..., ch].set(level / half_steps - 1.0)
    return x
