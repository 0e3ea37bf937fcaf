"""DDPM/DDIM samplers, the VLB and the denoising losses against the closed forms of Gaussian data.

Data x_0 ~ N(mu, Sigma) has Gaussian marginals x_t ~ N(sqrt(abar) mu, abar Sigma + (1 - abar) I) at every
step, so the exact ε-model E[eps | x_t] = sqrt(1 - abar) C_t^{-1} (x_t - sqrt(abar) mu) is known: samplers
driven by it must reproduce (mu, Sigma), and the bound of the exact model must equal -log p(x_0).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.stats import multivariate_normal as mvn

from gm_jax.errors import GMJaxError
from gm_jax.losses import ddpm_loss, diffusion_vlb, dsm_loss, hybrid_loss, stratified_timesteps
from gm_jax.processes import eps_from_prediction, linear_beta_schedule, make_schedule, p_mean_variance
from gm_jax.samplers import ddim_encode, ddim_sample, ddim_timesteps, ddpm_sample, guided_eps_fn

MU = jnp.array([0.3, -0.2, 0.1])
CHOL = jnp.array([[0.5, 0.0, 0.0], [0.2, 0.4, 0.0], [-0.1, 0.1, 0.3]])
SIGMA = CHOL @ CHOL.T
SCHEDULE = make_schedule(linear_beta_schedule(200))
N = 4000


def gaussian_eps_fn(schedule, mu, sigma):
    """The exact ε-prediction of N(mu, sigma) data at every step (and, second output, Cov(x_0 | x_t)).

    The per-step matrices are precomputed in numpy float64 (no LAPACK call inside the jitted loops)."""
    d = mu.shape[0]
    abar = np.asarray(schedule.alphas_cumprod, np.float64)[:, None, None]
    sigma64 = np.asarray(sigma, np.float64)
    cov_inv = np.linalg.inv(abar * sigma64 + (1 - abar) * np.eye(d))  # [T, d, d]
    eps_mat = jnp.asarray(np.sqrt(1 - abar) * cov_inv, jnp.float32)
    cov_x0 = jnp.asarray(sigma64 - abar * sigma64 @ cov_inv @ sigma64, jnp.float32)

    def eps_and_cov(x, t):
        resid = x - jnp.sqrt(schedule.alphas_cumprod[t])[:, None] * mu
        return jnp.einsum("bij,bj->bi", eps_mat[t], resid), cov_x0[t]

    return eps_and_cov


EXACT_EPS = lambda x, t: gaussian_eps_fn(SCHEDULE, MU, SIGMA)(x, t)[0]


def assert_moments(x, mu, sigma, mean_tol=0.05, cov_tol=0.06):
    x = np.asarray(x, np.float64)
    np.testing.assert_allclose(x.mean(0), mu, atol=mean_tol)
    np.testing.assert_allclose(np.cov(x.T), sigma, atol=cov_tol)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_sample_reproduces_gaussian(variance):
    x = jax.jit(lambda k: ddpm_sample(EXACT_EPS, SCHEDULE, k, (N, 3), variance=variance))(jax.random.key(0))
    assert_moments(x, MU, SIGMA)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_sample_reproduces_gaussian(eta):
    x = jax.jit(lambda k: ddim_sample(EXACT_EPS, SCHEDULE, k, (N, 3), num_steps=50, eta=eta))(jax.random.key(1))
    assert_moments(x, MU, SIGMA)


def test_ddim_deterministic_and_invertible():
    x_T = jax.random.normal(jax.random.key(2), (256, 3))
    sample = jax.jit(lambda k, xt, n: ddim_sample(EXACT_EPS, SCHEDULE, k, (256, 3), num_steps=n, x_T=xt),
                     static_argnums=2)
    a, b = sample(jax.random.key(3), x_T, 50), sample(jax.random.key(4), x_T, 50)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # eta = 0: the key plays no part
    x0 = MU + jax.random.normal(jax.random.key(5), (256, 3)) @ CHOL.T
    errors = {}
    for n in (50, 200):
        latent = ddim_encode(EXACT_EPS, SCHEDULE, x0, num_steps=n)
        errors[n] = float(jnp.abs(sample(jax.random.key(6), latent, n) - x0).mean())
    assert float(jnp.abs(latent - x0).mean()) > 0.3  # the latent is not the data itself
    assert errors[200] < 0.01 and errors[200] < 0.5 * errors[50], errors  # error shrinks with the step


def test_ddim_timesteps_and_bad_input():
    # "uniform" is range(0, T, T // S) of Song et al.'s DDIM code; "quad" is their quadratic skip.
    np.testing.assert_array_equal(ddim_timesteps(1000, 10), np.arange(0, 1000, 100))
    np.testing.assert_array_equal(ddim_timesteps(1000, 10, spacing="quad"),
                                  (np.linspace(0, np.sqrt(800), 10) ** 2).astype(int))
    np.testing.assert_array_equal(ddim_timesteps(1000, 4, spacing="linspace"), [0, 333, 666, 999])
    np.testing.assert_array_equal(ddim_timesteps(1000, 4, spacing="trailing"), [249, 499, 749, 999])
    # rounding repeats a quad step at S = 50 of T = 1000; the repeat is dropped, because a DDIM step from t to
    # the same t is the identity (for any eta), as it is in the official sampler that keeps it
    quad = np.floor(np.linspace(0, np.sqrt(800), 50) ** 2).astype(int)
    assert len(np.unique(quad)) == 49
    np.testing.assert_array_equal(ddim_timesteps(1000, 50, spacing="quad"), np.unique(quad))
    from gm_jax.samplers import ddim_step

    x = jax.random.normal(jax.random.key(3), (4, 3))
    for eta in (0.0, 1.0):
        same, _ = ddim_step(EXACT_EPS, SCHEDULE, x, 57, 57, jax.random.key(4), eta=eta)
        np.testing.assert_allclose(same, x, rtol=1e-5, atol=1e-6)
    with pytest.raises(GMJaxError, match="num_steps must be in"):
        ddim_timesteps(100, 101)
    with pytest.raises(GMJaxError, match="unknown spacing 'leading'"):
        ddim_timesteps(100, 10, spacing="leading")
    with pytest.raises(GMJaxError, match="eta must be"):
        ddim_sample(EXACT_EPS, SCHEDULE, jax.random.key(0), (2, 3), num_steps=10, eta=-1.0)
    with pytest.raises(GMJaxError, match="clip_x0 must be None or a"):
        ddim_sample(EXACT_EPS, SCHEDULE, jax.random.key(0), (2, 3), num_steps=10, clip_x0=True)


def test_classifier_free_guidance_tilts_gaussians():
    """For classes N(mu_c, S) and unconditional N(mu_0, S) (same S) the guided model samples
    N((1 + w) mu_c - w mu_0, S): the tilt p(x|c)^{1+w} / p(x)^w commutes with the diffusion here."""
    means = jnp.array([[0.5, 0.0, 0.0], [-0.5, 0.2, 0.0], [0.0, 0.0, 0.0]])  # class 0, class 1, null (index 2)
    oracles = [gaussian_eps_fn(SCHEDULE, means[c], SIGMA) for c in range(3)]

    def eps_fn(x, t, labels):
        outs = jnp.stack([o(x, t)[0] for o in oracles])  # [3, B, D]
        return jnp.take_along_axis(outs, labels[None, :, None], axis=0)[0]

    w = 1.5
    labels = jnp.zeros((N,), jnp.int32)
    x = jax.jit(lambda k: ddim_sample(guided_eps_fn(eps_fn, labels, 2, w), SCHEDULE, k, (N, 3), num_steps=50))(
        jax.random.key(7))
    assert_moments(x, (1 + w) * means[0] - w * means[2], SIGMA)


def test_vlb_of_exact_model_equals_log_density():
    """With the exact ε and the exact reverse variance (isotropic data: q(x_{t-1} | x_t) is Gaussian and
    isotropic), every reverse kernel is exact, so E[VLB(x_0)] = -log p(x_0); fixed variances are loose."""
    schedule = make_schedule(linear_beta_schedule(100))
    mu, sigma = jnp.array([0.4, -0.3, 0.2]), 0.2 * jnp.eye(3)
    oracle = gaussian_eps_fn(schedule, mu, sigma)

    def learned_fn(x, t):  # express the exact variance as the interpolation of Nichol & Dhariwal
        eps, cov0 = oracle(x, t)
        coef = jnp.sqrt(schedule.alphas_cumprod_prev[t]) * schedule.betas[t] / (1 - schedule.alphas_cumprod[t])
        var = schedule.posterior_variance[t] + coef**2 * jnp.trace(cov0, axis1=1, axis2=2) / 3
        lo, hi = schedule.posterior_log_variance[t], jnp.log(schedule.betas[t])
        return eps, jnp.broadcast_to((2 * (jnp.log(var) - lo) / (hi - lo) - 1)[:, None], x.shape)

    x0 = mu + jnp.sqrt(0.2) * jax.random.normal(jax.random.key(8), (8000, 3))
    vlb = jax.jit(lambda x, k, f, v: diffusion_vlb(f, schedule, x, k, num_levels=None, variance=v), static_argnums=(2, 3))
    gap = vlb(x0, jax.random.key(9), learned_fn, "learned") + mvn.logpdf(x0, mu, sigma)
    se = float(gap.std()) / np.sqrt(gap.shape[0])
    assert abs(float(gap.mean())) < max(4 * se, 0.01), (float(gap.mean()), se)
    loose = vlb(x0, jax.random.key(9), lambda x, t: oracle(x, t)[0], "posterior") + mvn.logpdf(x0, mu, sigma)
    assert float(loose.mean()) / 3 > 0.1  # fixed posterior variances: a real, visible gap

    # The sampled-timestep estimator is unbiased for the full sum.
    vlb_sampled = jax.jit(lambda x, k: diffusion_vlb(learned_fn, schedule, x, k, num_levels=None, variance="learned",
                                                      num_timesteps=4))
    full, sampled = vlb(x0, jax.random.key(10), learned_fn, "learned"), vlb_sampled(x0, jax.random.key(11))
    diff = sampled - full
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / np.sqrt(diff.shape[0]) + 1e-3


def test_stratified_timesteps_cover_one_to_T_minus_one():
    # n = T - 1 strata of one step each: every example gets every step 1..T-1 exactly once, weight 1
    ts, w = stratified_timesteps(jax.random.key(0), 10, num_draws=50, batch=3)
    assert ts.shape == (9, 3) and np.array_equal(np.asarray(ts), np.repeat(np.arange(1, 10)[:, None], 3, 1))
    assert np.array_equal(np.asarray(w), np.ones(9))
    # n = 4 strata of 1..99: weights are the strata sizes, each draw inside its stratum, and the weighted
    # sum is unbiased for sum_t f(t)
    ts, w = stratified_timesteps(jax.random.key(1), 100, num_draws=4, batch=20000)
    ts, w = np.asarray(ts), np.asarray(w)
    assert w.sum() == 99 and ts.min() >= 1 and ts.max() <= 99
    edges = np.concatenate([[1], 1 + np.cumsum(w)]).astype(int)
    assert all(((ts[j] >= edges[j]) & (ts[j] < edges[j + 1])).all() for j in range(4))
    f = lambda t: np.sin(t / 7.0) + t**2 / 1e3
    est = (w[:, None] * f(ts)).sum(0)
    assert abs(est.mean() - f(np.arange(1, 100)).sum()) < 4 * est.std() / np.sqrt(est.shape[0])


def test_sampled_vlb_always_includes_the_decoder_term():
    """The sampled bound computes L_0 for every example: a network that is wrong only at t = 0 raises every
    example's estimate, not just those whose uniform draws happen to hit t = 0 (which moved a 2-D test-set
    mean by a nat)."""
    x0 = jax.random.normal(jax.random.key(2), (64, 2))

    def bad_at_zero(x, t):
        return jnp.where((t == 0)[:, None], 100.0, 0.0) * jnp.ones_like(x)

    good, bad = (diffusion_vlb(f, SCHEDULE, x0, jax.random.key(3), num_levels=None, num_timesteps=2)
                 for f in (lambda x, t: jnp.zeros_like(x), bad_at_zero))
    assert bool(jnp.all(bad - good > 1e3)), np.asarray(bad - good)


def test_learned_variance_ends_and_hybrid_gradient():
    s = SCHEDULE
    x_t, eps = jnp.ones((2, 3)), jnp.zeros((2, 3))
    t = jnp.array([5, 150])
    lo = p_mean_variance(s, x_t, t, eps, variance="learned", var_interp=-jnp.ones((2, 3)))[1]
    hi = p_mean_variance(s, x_t, t, eps, variance="learned", var_interp=jnp.ones((2, 3)))[1]
    np.testing.assert_allclose(lo[:, 0], s.posterior_log_variance[t], rtol=1e-6)
    np.testing.assert_allclose(hi[:, 0], jnp.log(s.betas[t]), rtol=1e-6)

    # The VLB part of the hybrid loss trains only the variance head: the mean head's gradient is the MSE's.
    x0 = MU + jax.random.normal(jax.random.key(12), (64, 3)) @ CHOL.T

    def loss(params, weight):
        fn = lambda x, t: (x * params["a"] + params["b"][t][:, None], jnp.tanh(params["v"]) * jnp.ones_like(x))
        return hybrid_loss(fn, s, x0, jax.random.key(13), num_levels=None, vlb_weight=weight).mean()

    params = {"a": jnp.array(0.3), "b": jnp.zeros((200,)), "v": jnp.array(0.2)}
    g1, g0 = jax.grad(loss)(params, 0.001), jax.grad(loss)(params, 0.0)
    np.testing.assert_allclose(g1["a"], g0["a"], rtol=1e-6)
    assert float(g0["v"]) == 0.0 and float(g1["v"]) != 0.0


def _fit_affine(loss_fn, num_levels, d, steps=1500):
    """Fits a per-level affine model out = A_l x + b_l (the exact form of every Gaussian-data optimum)."""
    params = {"A": jnp.zeros((num_levels, d, d)), "b": jnp.zeros((num_levels, d))}
    opt = optax.adam(optax.cosine_decay_schedule(0.03, steps))  # decay: the last iterate is not noisy
    state = opt.init(params)

    @jax.jit
    def run(params, state, key):
        def step(carry, k):
            p, s = carry
            g = jax.grad(loss_fn)(p, k)
            u, s = opt.update(g, s)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, state), jax.random.split(key, steps))[0]

    return run(params, state, jax.random.key(14))[0]


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddpm_loss_minimiser_is_exact_eps(prediction):
    schedule = make_schedule(linear_beta_schedule(10, 1e-4, 0.009))
    mu, chol = MU[:2], CHOL[:2, :2]

    def loss(p, key):
        k_data, k_loss = jax.random.split(key)
        x0 = mu + jax.random.normal(k_data, (512, 2)) @ chol.T
        net = lambda x, t: jnp.einsum("bij,bj->bi", p["A"][t], x) + p["b"][t]
        return ddpm_loss(net, schedule, x0, k_loss, prediction=prediction).mean()

    p = _fit_affine(loss, 10, 2)
    probe = jnp.concatenate([jnp.zeros((1, 2)), jnp.eye(2)])  # the affine map is fixed by 0, e_1, e_2
    oracle = gaussian_eps_fn(schedule, mu, chol @ chol.T)
    for t_val in range(10):
        t = jnp.full((3,), t_val)
        out = jnp.einsum("bij,bj->bi", p["A"][t], probe) + p["b"][t]
        learned, exact = eps_from_prediction(schedule, probe, t, out, prediction), oracle(probe, t)[0]
        err = np.linalg.norm(learned - exact) / np.linalg.norm(exact)
        assert err < 0.05, (t_val, learned, exact)


def test_dsm_loss_minimiser_is_exact_score():
    sigmas = jnp.array([1.0, 0.5, 0.2])
    mu, chol = MU[:2], CHOL[:2, :2]
    sigma = chol @ chol.T

    def loss(p, key):
        k_data, k_loss = jax.random.split(key)
        x0 = mu + jax.random.normal(k_data, (512, 2)) @ chol.T
        level = lambda s: jnp.argmin(jnp.abs(s[:, None] - sigmas[None]), axis=1)
        net = lambda x, s: jnp.einsum("bij,bj->bi", p["A"][level(s)], x) + p["b"][level(s)]
        return dsm_loss(net, sigmas, x0, k_loss).mean()

    p = _fit_affine(loss, 3, 2)
    for i, s in enumerate(np.asarray(sigmas)):
        precision = np.linalg.inv(np.asarray(sigma) + s**2 * np.eye(2))  # score = -precision (x - mu)
        rel = lambda a, b: np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)
        assert rel(p["A"][i], -precision) < 0.05, (s, p["A"][i], -precision)
        assert rel(p["b"][i], precision @ np.asarray(mu)) < 0.1, (s, p["b"][i], precision @ np.asarray(mu))
