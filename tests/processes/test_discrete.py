"""Precision of the discrete diffusion process and the paper conventions around it (issue 13).

Oracles: every coefficient recomputed here in float64 by a different route (cumprod instead of the library's
log-sum, no expm1), the discretized-Gaussian decoder by scipy's normal CDF, and the closed-form Gaussian
ε-model of tests/samplers/test_diffusion.py for the samplers.
"""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from gm_jax.errors import NumericsWarning
from gm_jax.losses import hybrid_loss, vlb_term
from gm_jax.processes import (cosine_beta_schedule, linear_beta_schedule, make_schedule, q_posterior, q_sample,
                              v_from_eps, x0_from_eps)
from gm_jax.samplers import ddim_sample

SCHEDULES = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule}


def float64_coefficients(betas):
    """The same coefficients, the textbook way in float64 (cumprod and plain differences)."""
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.append(1.0, abar[:-1])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    return {
        "betas": betas,
        "alphas_cumprod": abar,
        "alphas_cumprod_prev": abar_prev,
        "sqrt_alphas_cumprod": np.sqrt(abar),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - abar),
        "one_minus_alphas_cumprod": 1.0 - abar,
        "one_minus_alphas_cumprod_prev": 1.0 - abar_prev,
        "sqrt_recip_alphas_cumprod": 1.0 / np.sqrt(abar),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / abar - 1.0),
        "posterior_mean_coef_x0": np.sqrt(abar_prev) * betas / (1.0 - abar),
        "posterior_mean_coef_xt": np.sqrt(alphas) * (1.0 - abar_prev) / (1.0 - abar),
        "posterior_variance": post_var,
        "posterior_log_variance": np.log(np.append(post_var[1], post_var[1:])),
        "log_betas": np.log(betas),
        "beta_log_variance": np.log(np.append(post_var[1], betas[1:])),
    }


@pytest.mark.parametrize("num_steps", [50, 1000, 4000])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_every_coefficient_matches_float64(kind, num_steps):
    betas = SCHEDULES[kind](num_steps)
    schedule = make_schedule(betas)
    expected = float64_coefficients(betas)
    assert set(expected) == set(schedule._fields)
    for name, want in expected.items():
        got = np.asarray(getattr(schedule, name), np.float64)
        assert got.dtype == np.float64 and getattr(schedule, name).dtype == jnp.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=name)
    # At t = 1 the posterior mean is x_0 itself: coefficient 1 on x_0, 0 on x_t.
    assert float(schedule.posterior_mean_coef_x0[0]) == 1.0 and float(schedule.posterior_mean_coef_xt[0]) == 0.0


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_process_functions_keep_their_digits_at_small_t(kind):
    schedule = make_schedule(SCHEDULES[kind](4000))
    coef = float64_coefficients(SCHEDULES[kind](4000))
    x0 = jnp.array([[0.7, -0.3, 0.1]] * 3)
    noise = jnp.array([[0.5, 1.2, -0.8]] * 3)
    t = jnp.array([0, 1, 2])
    x_t = q_sample(schedule, x0, t, noise)
    want = (coef["sqrt_alphas_cumprod"][[0, 1, 2], None] * np.asarray(x0, np.float64)
            + coef["sqrt_one_minus_alphas_cumprod"][[0, 1, 2], None] * np.asarray(noise, np.float64))
    np.testing.assert_allclose(np.asarray(x_t, np.float64), want, rtol=2e-7)
    mean, _, _ = q_posterior(schedule, x0, x_t, t)
    np.testing.assert_allclose(np.asarray(mean[0]), np.asarray(x0[0]), rtol=1e-7)
    # eps -> x0 at the first step divides by sqrt(1 - abar) ~ 1e-2: the round trip keeps float32 precision.
    np.testing.assert_allclose(np.asarray(x0_from_eps(schedule, x_t, t, noise)), np.asarray(x0), rtol=1e-5)


def test_decoder_term_equals_scipy_discretized_gaussian():
    """L_0 = -log p(x_0 | x_1): at t = 1 the decoder mean is the predicted x_0 itself (coefficient 1), and
    its NLL equals the float64 mass of the discretized Gaussian bin (Ho et al. eq. 13), computed here with
    scipy from an x0_hat formed in float64. With run-time 1 - abar in float32 this term was off by 0.04 to
    6 nats per example."""
    levels = 17
    for kind, num_steps in (("linear", 1000), ("cosine", 4000)):
        schedule = make_schedule(SCHEDULES[kind](num_steps))
        coef = float64_coefficients(SCHEDULES[kind](num_steps))
        grid = np.linspace(-1.0, 1.0, levels)
        x0 = jnp.asarray(np.random.default_rng(0).choice(grid, size=(4, 48)), jnp.float32)
        k1, k2 = jax.random.split(jax.random.key(0))
        noise = jax.random.normal(k1, x0.shape)
        # An imperfect network whose x_0 estimate is off by ~0.03, a third of a bin.
        eps = noise + 0.03 / coef["sqrt_recipm1_alphas_cumprod"][0] * jax.random.normal(k2, x0.shape)
        t = jnp.zeros((4,), jnp.int32)
        x_t = q_sample(schedule, x0, t, noise)
        got = vlb_term(schedule, x0, x_t, t, eps, num_levels=levels, variance="beta")
        mean = (np.asarray(x_t, np.float64) - math.sqrt(coef["one_minus_alphas_cumprod"][0]) * np.asarray(eps, np.float64)
                ) / math.sqrt(coef["alphas_cumprod"][0])
        std = math.exp(0.5 * coef["beta_log_variance"][0])
        half = 1.0 / (levels - 1)
        x = np.asarray(x0, np.float64)
        upper = np.where(x >= 1.0, np.inf, x + half)
        lower = np.where(x <= -1.0, -np.inf, x - half)
        mass = norm.cdf(upper, loc=mean, scale=std) - norm.cdf(lower, loc=mean, scale=std)
        want = -np.log(mass).sum(axis=1)
        assert want.max() > 1.0, want  # a term that depends on the mean's digits
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, err_msg=kind)


def test_hybrid_loss_weighs_the_bound_in_bits_per_dim():
    """Nichol & Dhariwal's code: loss = MSE + (T / 1000) L_t in bits/dim, i.e. lambda = 0.001 on L_vlb in
    bits; ``vlb_units="nats"`` is ln 2 times heavier on the bound."""
    schedule = make_schedule(linear_beta_schedule(100))
    x0 = jax.random.normal(jax.random.key(1), (8, 3))
    net = lambda x, t: (0.9 * x, jnp.tanh(x))
    key = jax.random.key(2)
    bits, aux = hybrid_loss(net, schedule, x0, key, num_levels=None, return_aux=True)
    nats = hybrid_loss(net, schedule, x0, key, num_levels=None, vlb_units="nats")
    mse = hybrid_loss(net, schedule, x0, key, num_levels=None, vlb_weight=0.0)
    per_dim = aux["vlb_term"] / 3
    np.testing.assert_allclose(bits - mse, 0.001 * 100 * per_dim / math.log(2.0), rtol=1e-5)
    np.testing.assert_allclose(nats - mse, 0.001 * 100 * per_dim, rtol=1e-5)


# --------------------------------------------------------------------------- DDIM on the cosine schedule
def _gaussian_oracle(schedule, mu, var):
    """The exact ε of isotropic N(mu, var I) data: sqrt(1 - abar) (x - sqrt(abar) mu) / (abar var + 1 - abar)."""
    def eps(x, t):
        a = schedule.alphas_cumprod[t][:, None]
        return schedule.sqrt_one_minus_alphas_cumprod[t][:, None] * (x - jnp.sqrt(a) * mu) / (
            a * var + schedule.one_minus_alphas_cumprod[t][:, None])
    return eps


def test_ddim_cosine_eps_error_amplification_and_its_remedies():
    """The divergence seen on 2-D points is the eps -> x_0 map at abar_T ~ 2e-9: a 1% eps error becomes
    ~200 in x_0. The default "uniform" spacing starts below T - 1, v-prediction has no such division,
    and a clip range bounds x_0; the anchored "linspace" spacing warns."""
    schedule = make_schedule(cosine_beta_schedule(1000))
    mu, var = jnp.array([0.5, -0.5]), 0.25
    exact = _gaussian_oracle(schedule, mu, var)
    eps_net = lambda x, t: exact(x, t) + 0.01  # a network with a 1% error everywhere
    v_net = lambda x, t: v_from_eps(schedule, x, t, exact(x, t)) + 0.01
    shape, key = (2000, 2), jax.random.key(3)

    def radius(net, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericsWarning)
            x = ddim_sample(net, schedule, key, shape, num_steps=20, **kw)
        return float(jnp.median(jnp.linalg.norm(x - mu, axis=1)))

    typical = math.sqrt(2 * var) * 0.83  # median of a 2-D Gaussian's radius
    assert radius(eps_net, spacing="linspace") > 10 * typical
    for kw in ({"spacing": "uniform"}, {"spacing": "linspace", "clip_x0": (-2.0, 2.0)}):
        assert radius(eps_net, **kw) < 1.5 * typical, kw
    assert radius(v_net, spacing="linspace", prediction="v") < 1.5 * typical
    with pytest.warns(NumericsWarning, match="clip_x0=.*prediction='v'"):
        ddim_sample(eps_net, schedule, key, shape, num_steps=20, spacing="linspace")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericsWarning)
        ddim_sample(eps_net, schedule, key, shape, num_steps=20)  # the default spacing does not warn
