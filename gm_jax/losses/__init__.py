"""Training objectives as pure functions of callables and arrays (any network library)."""

from gm_jax.losses.elbo import elbo, iwae_bound
from gm_jax.losses.likelihood import bits_per_dim, nll, uniform_nll_nats

__all__ = ["elbo", "iwae_bound", "bits_per_dim", "nll", "uniform_nll_nats"]
