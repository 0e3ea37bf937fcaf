"""Oracles for the variational bounds: a linear-Gaussian model with a known marginal, and the
ordering ELBO <= IWAE_k <= IWAE_k' of Burda et al. (2016)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import multivariate_normal

from gm_jax import distributions as D
from gm_jax.losses import elbo, iwae_bound


def _linear_gaussian():
    """p(z) = N(0, I_2), p(x|z) = N(W z + b, s^2 I_4) with orthogonal columns of W, so the exact
    posterior N(M^-1 W^T (x - b), s^2 M^-1), M = W^T W + s^2 I, is diagonal."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 2)))
    w = jnp.asarray(q * np.array([1.5, 0.7]), jnp.float32)
    b = jnp.array([0.2, -0.1, 0.5, 0.0])
    s = 0.4
    m = np.diag(np.asarray(w.T @ w)) + s**2

    def encode(x):
        mean = ((x - b) @ w) / m
        return mean, jnp.broadcast_to(0.5 * jnp.log(s**2 / m), mean.shape)

    def log_likelihood(x, z):
        return D.diag_gaussian_log_prob(x, z @ w.T + b, jnp.log(s))

    def log_marginal(x):
        return multivariate_normal.logpdf(x, b, w @ w.T + s**2 * jnp.eye(4))

    return encode, log_likelihood, log_marginal


def test_elbo_with_exact_posterior_equals_closed_form_log_likelihood():
    encode, log_likelihood, log_marginal = _linear_gaussian()
    x = jax.random.normal(jax.random.key(1), (5, 4)) * 1.3
    n = 10_000
    vals = jax.vmap(lambda k: elbo(encode, log_likelihood, x, k))(jax.random.split(jax.random.key(2), n))
    mean, se = vals.mean(0), vals.std(0) / np.sqrt(n)
    truth = log_marginal(x)
    assert bool(jnp.all(jnp.abs(mean - truth) < 5 * se + 1e-4)), (mean, truth, se)
    # With the exact posterior every importance weight equals p(x): the IWAE bound is exact for any k.
    for k in (1, 7):
        np.testing.assert_allclose(iwae_bound(encode, log_likelihood, x, jax.random.key(3), k=k), truth, atol=1e-4)


def test_beta_weights_the_kl_term():
    encode, log_likelihood, _ = _linear_gaussian()
    x = jnp.ones((3, 4))
    e1, aux = elbo(encode, log_likelihood, x, jax.random.key(0), beta=1.0, return_aux=True)
    e4 = elbo(encode, log_likelihood, x, jax.random.key(0), beta=4.0)
    np.testing.assert_allclose(e1 - e4, 3.0 * aux["kl"], rtol=1e-5)
    np.testing.assert_allclose(e1, aux["reconstruction"] - aux["kl"], rtol=1e-6)


@pytest.mark.slow  # ~33 s on 2 cores; the bound ordering also has the closed-form linear-Gaussian tests
def test_elbo_le_iwae_k_le_iwae_larger_k_on_a_vae(digits):
    """Averaged over a batch and many repeats, with tolerances of 5 standard errors."""
    from gm_jax.models import VAE, VAEConfig

    model = VAE(VAEConfig(hidden=(64,), latent_dim=4), digits.spec)
    batch = {k: jnp.asarray(v) for k, v in digits.read("test", np.arange(32)).items()}
    variables = model.init(jax.random.key(0), batch)
    x = model._to_model_space(batch["image"], None)[0]
    encode, loglik = model._encode(variables["params"], None), model._log_likelihood(variables["params"], None)
    reps = jax.random.split(jax.random.key(1), 32)
    est = {"elbo": jax.vmap(lambda k: elbo(encode, loglik, x, k).mean())(reps)}
    for k in (1, 8, 64):
        est[k] = jax.vmap(lambda r: iwae_bound(encode, loglik, x, r, k=k, chunk_size=32).mean())(reps)
    m = {k: float(v.mean()) for k, v in est.items()}
    se = {k: float(v.std() / np.sqrt(len(reps))) for k, v in est.items()}
    assert abs(m["elbo"] - m[1]) < 5 * (se["elbo"] + se[1])  # L_1 is the ELBO in expectation
    assert m[1] < m[8] - 5 * (se[1] + se[8])
    assert m[8] < m[64] - 5 * (se[8] + se[64])
