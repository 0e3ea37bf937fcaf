"""Variational bounds on log p(x): the ELBO (Kingma & Welling 2014) and the IWAE bound (Burda et al. 2016).

Both take the model as two callables, so any network library works:

- ``encode(x) -> (mean [B, Z], log_std [B, Z])``: the diagonal-Gaussian posterior q(z | x);
- ``log_likelihood(x, z) -> [B]``: log p(x | z) in nats for latents z [B, Z].

The prior is N(0, I). Conditioning (labels) is captured by the callables.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from gm_jax.distributions import diag_gaussian_kl, diag_gaussian_log_prob, standard_normal_log_prob
from gm_jax.errors import GMJaxError
from gm_jax.shapes import check_batch_values, check_output

__all__ = ["elbo", "iwae_bound"]


def _posterior(function: str, encode, x):
    """encode(x) checked to be a pair (mean, log_std) of equal shapes [B, Z]."""
    out = encode(x)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise GMJaxError(f"{function}: encode(x) must return a pair (mean, log_std), each [B, Z]; got "
                         f"{type(out).__name__}")
    mean, log_std = out
    if getattr(mean, "ndim", 0) != 2 or mean.shape[0] != x.shape[0]:
        raise GMJaxError(f"{function}: encode(x) must return mean of shape [B, Z] with B = {x.shape[0]}, got "
                         f"{getattr(mean, 'shape', None)}")
    check_output(function, "encode(x)[1] (log_std)", log_std, mean.shape)
    return mean, log_std


def _positive_int(function: str, name: str, value):
    try:
        value = operator.index(value)
    except TypeError:
        raise GMJaxError(f"{function}: {name} must be a positive integer, got {value!r}") from None
    if value < 1:
        raise GMJaxError(f"{function}: {name} must be >= 1, got {value}")
    return value


def elbo(encode, log_likelihood, x, key, *, beta: float = 1.0, return_aux: bool = False):
    """Per-example evidence lower bound with the reparameterization trick and the analytic Gaussian KL.

    ELBO_beta(x) = E_{q(z|x)}[log p(x|z)] - beta KL(q(z|x) || N(0, I)), estimated with one sample
    z = mean + exp(log_std) * eps. With beta = 1 it lower-bounds log p(x); beta != 1 is the beta-VAE
    objective (Higgins et al. 2017). Maximise it: the loss is its negative.

    Args:
      encode, log_likelihood: see the module docstring; their outputs are checked at trace time.
      x: data [B, ...] in the layout ``log_likelihood`` expects.
      key: PRNG key for eps.
      beta: KL weight.
      return_aux: also return {"reconstruction": [B], "kl": [B]}.

    Returns:
      elbo [B] in nats (and aux with ``return_aux``).
    """
    mean, log_std = _posterior("elbo", encode, x)
    z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    reconstruction = check_batch_values("elbo", "log_likelihood(x, z)", log_likelihood(x, z), x.shape[0])
    kl = diag_gaussian_kl(mean, log_std)
    value = reconstruction - beta * kl
    return (value, {"reconstruction": reconstruction, "kl": kl}) if return_aux else value


def iwae_bound(encode, log_likelihood, x, key, *, k: int, chunk_size: int | None = None):
    """Importance-weighted bound L_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)], z_i ~ q(z | x).

    L_1 equals the ELBO in expectation, L_k <= L_{k'} for k <= k', and L_k -> log p(x) as k grows
    (Burda et al. 2016, Theorem 1), so with large k it is the standard test log-likelihood estimate.

    Args:
      encode, log_likelihood: see the module docstring; their outputs are checked at trace time.
      x: data [B, ...].
      key: PRNG key.
      k: number of importance samples per example (>= 1).
      chunk_size: evaluate ``log_likelihood`` on this many samples at a time (default: all k at once),
        bounding memory at chunk_size * B decoder evaluations.

    Returns:
      [B] log-likelihood lower bound in nats.
    """
    k = _positive_int("iwae_bound", "k", k)
    if chunk_size is not None:
        chunk_size = _positive_int("iwae_bound", "chunk_size", chunk_size)
    mean, log_std = _posterior("iwae_bound", encode, x)
    eps = jax.random.normal(key, (k,) + mean.shape, mean.dtype)
    z = mean + jnp.exp(log_std) * eps  # [k, B, Z]
    log_q = diag_gaussian_log_prob(z, mean, log_std, event_ndims=1)
    log_prior = standard_normal_log_prob(z, event_ndims=1)
    batch = x.shape[0]
    log_px_z = jax.lax.map(
        lambda zi: check_batch_values("iwae_bound", "log_likelihood(x, z)", log_likelihood(x, zi), batch),
        z, batch_size=chunk_size)  # [k, B]
    return logsumexp(log_px_z + log_prior - log_q, axis=0) - jnp.log(k)
