"""Variational bounds on log p(x): the ELBO (Kingma & Welling 2014) and the IWAE bound (Burda et al. 2016).

Both take the model as two callables, so any network library works:

- ``encode(x) -> (mean [B, Z], log_std [B, Z])``: the diagonal-Gaussian posterior q(z | x);
- ``log_likelihood(x, z) -> [B]``: log p(x | z) in nats for latents z [B, Z].

The prior is N(0, I). Conditioning (labels) is captured by the callables.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from gm_jax.distributions import diag_gaussian_kl, diag_gaussian_log_prob, standard_normal_log_prob


def elbo(encode, log_likelihood, x, key, beta: float = 1.0):
    """Per-example evidence lower bound with the reparameterization trick and the analytic Gaussian KL.

    ELBO_beta(x) = E_{q(z|x)}[log p(x|z)] - beta KL(q(z|x) || N(0, I)), estimated with one sample
    z = mean + exp(log_std) * eps. With beta = 1 it lower-bounds log p(x); beta != 1 is the beta-VAE
    objective (Higgins et al. 2017).

    Args:
      encode, log_likelihood: see the module docstring.
      x: data [B, ...] in the layout ``log_likelihood`` expects.
      key: PRNG key for eps.
      beta: KL weight.

    Returns:
      (elbo [B] in nats, aux) with aux = {"reconstruction": [B], "kl": [B]}.
    """
    mean, log_std = encode(x)
    z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    reconstruction = log_likelihood(x, z)
    kl = diag_gaussian_kl(mean, log_std)
    return reconstruction - beta * kl, {"reconstruction": reconstruction, "kl": kl}


def iwae_bound(encode, log_likelihood, x, key, k: int, chunk_size: int | None = None):
    """Importance-weighted bound L_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)], z_i ~ q(z | x).

    L_1 equals the ELBO in expectation, L_k <= L_{k'} for k <= k', and L_k -> log p(x) as k grows
    (Burda et al. 2016, Theorem 1), so with large k it is the standard test log-likelihood estimate.

    Args:
      encode, log_likelihood: see the module docstring.
      x: data [B, ...].
      key: PRNG key.
      k: number of importance samples per example.
      chunk_size: evaluate ``log_likelihood`` on this many samples at a time (default: all k at once),
        bounding memory at chunk_size * B decoder evaluations.

    Returns:
      [B] log-likelihood lower bound in nats.
    """
    mean, log_std = encode(x)
    eps = jax.random.normal(key, (k,) + mean.shape, mean.dtype)
    z = mean + jnp.exp(log_std) * eps  # [k, B, Z]
    log_q = diag_gaussian_log_prob(z, mean, log_std, event_ndims=1)
    log_prior = standard_normal_log_prob(z, event_ndims=1)
    log_px_z = jax.lax.map(lambda zi: log_likelihood(x, zi), z, batch_size=chunk_size)  # [k, B]
    return logsumexp(log_px_z + log_prior - log_q, axis=0) - jnp.log(k)
