"""SDEs (VE, VP, sub-VP) and their samplers/likelihood against closed forms for Gaussian data.

For data N(mu, Sigma) and a linear SDE with kernel x_t | x_0 ~ N(m x_0, s^2 I), every marginal is
Gaussian: x_t ~ N(m mu, C_t), C_t = m^2 Sigma + s^2 I. So the exact score, the log-density, and the
probability-flow map (each eigen-coordinate of x - m mu scales as sqrt of its variance) are closed-form
oracles for the samplers and the ODE likelihood.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.processes.sde import SDES, SubVPSDE, VESDE, VPSDE
from gm_jax.samplers.sde import (ode_log_likelihood, pc_sample, probability_flow_sample, reverse_sde_sample,
                                 tsit5_evaluations)

SDE_CASES = {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE(sigma_max=100.0, perturbation="exact")}  # the SDE's own kernel


class Gaussian:
    """N(mu, Sigma) data and the closed forms of its diffused marginals."""

    def __init__(self, mu, sigma):
        self.mu = jnp.asarray(mu, jnp.float32)
        self.sigma = jnp.asarray(sigma, jnp.float32)
        self.lam, self.u = jnp.linalg.eigh(self.sigma)

    def _coords(self, sde, x, t):
        """(eigen-coordinates of x - m mu [B, D], their variances [B, D], m [B])."""
        m, s = sde.marginal(t)
        var = m[:, None] ** 2 * self.lam + s[:, None] ** 2
        return (x - m[:, None] * self.mu) @ self.u, var, m

    def score(self, sde):
        def score_fn(x, t):
            r, var, _ = self._coords(sde, x, t)
            return -(r / var) @ self.u.T
        return score_fn

    def log_prob(self, sde, x, t):
        r, var, _ = self._coords(sde, x, t)
        return jnp.sum(-0.5 * r**2 / var - 0.5 * jnp.log(2 * np.pi * var), axis=-1)

    def flow_map(self, sde, x, t_from, t_to):
        """The probability-flow ODE's solution map from time t_from to t_to (both [B])."""
        r, v_from, _ = self._coords(sde, x, t_from)
        _, v_to, m_to = self._coords(sde, x, t_to)
        return m_to[:, None] * self.mu + (r * jnp.sqrt(v_to / v_from)) @ self.u.T

    def sample(self, key, n):
        return self.mu + jax.random.normal(key, (n, self.mu.shape[0])) @ jnp.linalg.cholesky(self.sigma).T


# A rotated (non-diagonal) covariance so that Hutchinson probes have off-diagonal terms to average out.
G2 = Gaussian([0.5, -1.0], [[1.0, 0.6], [0.6, 0.8]])
G3 = Gaussian([0.3, -0.6, 0.8], [[1.0, 0.5, 0.2], [0.5, 0.9, -0.3], [0.2, -0.3, 0.7]])


def _full(t, n):
    return jnp.full((n,), t, jnp.float32)


# ------------------------------------------------------------------------------------------- processes
def test_ve_perturbation_conventions():
    """``"sigma"`` (default) is Song et al.'s code: std = sigma_min (sigma_max / sigma_min)^t; ``"exact"``
    is the SDE's kernel sqrt(sigma(t)^2 - sigma_min^2) (eq. 30), both against float64 numpy."""
    t = np.array([1e-5, 1e-3, 0.1, 0.5, 1.0])
    sigma = 0.01 * (50.0 / 0.01) ** t
    _, code = VESDE(0.01, 50.0).marginal(jnp.asarray(t))
    _, exact = VESDE(0.01, 50.0, perturbation="exact").marginal(jnp.asarray(t))
    np.testing.assert_allclose(code, sigma, rtol=1e-6)
    np.testing.assert_allclose(exact, np.sqrt(sigma**2 - 0.01**2), rtol=2e-5)
    with pytest.raises(GMJaxError, match="unknown perturbation 'paper'"):
        VESDE(perturbation="paper")


def test_processes_are_pytrees():
    """SDEs and schedules are jit arguments (one compile for any parameters) and vmap over stacks."""
    from gm_jax.processes import linear_beta_schedule, make_schedule, q_sample

    traces = []

    @jax.jit
    def std_at_half(sde):
        traces.append(1)
        return sde.marginal(jnp.full((1,), 0.5))[1][0]

    for beta_max in (10.0, 20.0):
        np.testing.assert_allclose(std_at_half(VPSDE(0.1, beta_max)), VPSDE(0.1, beta_max).marginal(jnp.full((1,), 0.5))[1][0])
    assert len(traces) == 1
    np.testing.assert_allclose(std_at_half(VESDE(0.01, 50.0)), 0.01 * 5000**0.5, rtol=1e-6)
    stacked = VPSDE(jnp.array([0.1, 0.2]), jnp.array([10.0, 20.0]))
    stds = jax.vmap(lambda s: s.marginal(jnp.full((1,), 0.5))[1][0])(stacked)
    np.testing.assert_allclose(stds, [VPSDE(0.1, 10.0).marginal(jnp.full((1,), 0.5))[1][0],
                                      VPSDE(0.2, 20.0).marginal(jnp.full((1,), 0.5))[1][0]], rtol=1e-6)
    schedule = make_schedule(linear_beta_schedule(50))
    x = jax.jit(q_sample)(schedule, jnp.ones((2, 3)), jnp.array([0, 49]), jnp.zeros((2, 3)))
    np.testing.assert_allclose(x[:, 0], schedule.sqrt_alphas_cumprod[jnp.array([0, 49])], rtol=1e-6)


def test_sde_parameters_are_validated():
    for bad in [dict(sigma_min=0.0), dict(sigma_min=5.0, sigma_max=1.0), dict(sigma_max=float("nan"))]:
        with pytest.raises(GMJaxError, match="sigma"):
            VESDE(**bad)
    for cls in (VPSDE, SubVPSDE):
        with pytest.raises(GMJaxError, match="beta_min"):
            cls(beta_min=-0.1)
        with pytest.raises(GMJaxError, match="beta_min <= beta_max"):
            cls(beta_min=2.0, beta_max=1.0)
    assert set(SDES) == {"ve", "vp", "subvp"}


@pytest.mark.parametrize("name", list(SDE_CASES))
def test_marginal_solves_the_moment_odes(name):
    """For dx = F(t) x dt + g dW the kernel moments obey dm/dt = F m and d(s^2)/dt = 2 F s^2 + g^2 from
    m(0) = 1, s(0) = 0 (Särkkä & Solin 2019, eq. 6.2): checked with autodiff at many times."""
    sde = SDE_CASES[name]

    @jax.jit
    def moments_and_rates(t):
        drift = lambda t: sde.drift_diffusion(jnp.ones((1, 1)), t[None])[0][0, 0]  # F(t) in f = F(t) x
        g2 = sde.drift_diffusion(jnp.ones((1, 1)), t[None])[1][0] ** 2
        m = lambda t: sde.marginal(t[None])[0][0]
        s2 = lambda t: sde.marginal(t[None])[1][0] ** 2
        return drift(t), g2, m(t), s2(t), jax.grad(m)(t), jax.grad(s2)(t)

    f, g2, m, s2, dm, ds2 = jax.vmap(moments_and_rates)(jnp.linspace(0.02, 1.0, 50, dtype=jnp.float32))
    np.testing.assert_allclose(dm, f * m, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ds2, 2 * f * s2 + g2, rtol=1e-3, atol=1e-5 * float(jnp.max(g2)))
    m0, s0 = sde.marginal(jnp.zeros(1))
    # Song et al.'s VE kernel treats the data as already perturbed by sigma_min; the others start at 0.
    s0_want = sde.sigma_min if getattr(sde, "perturbation", "exact") == "sigma" else 0.0
    assert float(m0[0]) == 1.0 and float(s0[0]) == np.float32(s0_want)
    # The prior is (close to) the marginal at T of zero-mean unit-scale data.
    z = sde.prior_sample(jax.random.key(0), (4000, 1))
    m1, s1 = sde.marginal(jnp.ones(1))
    assert float(m1[0]) < 0.01 or name == "ve"
    assert float(jnp.std(z)) == pytest.approx(float(s1[0]), rel=0.05)


@pytest.mark.parametrize("name", list(SDE_CASES))
def test_marginal_matches_forward_sde_simulation(name):
    """Moments of an Euler–Maruyama (midpoint-time) simulation of the forward SDE from x_0 = 1 equal m, s."""
    sde = SDE_CASES[name]
    n, steps = 20000, 1000
    h = sde.T / steps

    @jax.jit
    def simulate(key):
        def step(x, inp):
            i, k = inp
            t = _full((i + 0.5) * h, 1)
            f, g = sde.drift_diffusion(x, t)
            x = x + f * h + g * np.sqrt(h) * jax.random.normal(k, x.shape)
            return x, (jnp.mean(x), jnp.std(x))
        _, (means, stds) = jax.lax.scan(step, jnp.ones((n, 1)), (jnp.arange(steps), jax.random.split(key, steps)))
        return means, stds

    means, stds = simulate(jax.random.key(0))
    for t in (0.05, 0.3, 1.0):
        i = round(t / h) - 1
        m, s = (float(a[0]) for a in sde.marginal(_full(t, 1)))
        assert float(stds[i]) == pytest.approx(s, rel=5 / np.sqrt(2 * n) + 2e-3), (t, "std")
        assert abs(float(means[i]) - m) < 5 * s / np.sqrt(n) + 1e-3, (t, "mean")


# ------------------------------------------------------------------------------------------- samplers
def _assert_moments(x, g, sem=5.0):
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    assert np.isfinite(x).all()
    sigma = np.asarray(g.sigma, np.float64)
    se_mean = np.sqrt(np.diag(sigma) / n)
    np.testing.assert_array_less(np.abs(x.mean(0) - np.asarray(g.mu)), sem * se_mean)
    se_cov = np.sqrt((np.outer(np.diag(sigma), np.diag(sigma)) + sigma**2) / n)  # Var(S_ij) for Gaussians
    np.testing.assert_array_less(np.abs(np.cov(x.T) - sigma), sem * se_cov)


@pytest.mark.parametrize("name,sampler", [("vp", "sde"), ("vp", "pc"), ("subvp", "sde"), ("ve", "pc")])
def test_sde_samplers_reproduce_gaussian_data(name, sampler):
    sde = SDE_CASES[name]
    score = G2.score(sde)
    if sampler == "sde":
        fn = jax.jit(lambda k: reverse_sde_sample(score, sde, k, (20000, 2), num_steps=200))
    else:
        fn = jax.jit(lambda k: pc_sample(score, sde, k, (20000, 2), num_steps=100, snr=0.16))
    _assert_moments(fn(jax.random.key(1)), G2)


@pytest.mark.parametrize("name", ["vp", "ve"])
def test_probability_flow_sample_is_the_exact_flow_map(name):
    """Each sample equals the closed-form ODE map of its own prior draw z = sde.prior_sample(key)."""
    sde, n, eps = SDE_CASES[name], 512, 1e-3
    x, stats = jax.jit(lambda k: probability_flow_sample(G2.score(sde), sde, k, (n, 2), eps=eps, return_stats=True))(
        jax.random.key(2))
    z = sde.prior_sample(jax.random.key(2), (n, 2))
    expected = G2.flow_map(sde, z, _full(sde.T, n), _full(eps, n))
    np.testing.assert_allclose(x, expected, atol=5e-4)
    assert 0 < int(stats["num_steps"]) < 100  # adaptive Tsit5 needs few steps on this smooth field


# ------------------------------------------------------------------------------------------ likelihood
@pytest.fixture(scope="module")
def g3_points():
    return G3.sample(jax.random.key(3), 256)


@pytest.fixture(scope="module")
def exact_likelihood(g3_points):
    """name -> (log p [256], latent [256, 3]) of the exact-trace ODE likelihood at eps = 1e-5, computed once."""
    cache = {}

    def get(name):
        if name not in cache:
            sde = SDE_CASES[name]
            cache[name] = jax.jit(lambda x: ode_log_likelihood(G3.score(sde), sde, x, None, eps=1e-5, trace="exact",
                                                               return_latent=True))(g3_points)
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(SDE_CASES))
def test_ode_log_likelihood_exact_trace_equals_the_gaussian_density(name, g3_points, exact_likelihood):
    sde, eps, x = SDE_CASES[name], 1e-5, g3_points
    lp, latent = exact_likelihood(name)
    n = x.shape[0]
    exact = G3.log_prob(sde, x, _full(eps, n))
    # The latent is the flow map of x to T, and the divergence integral equals log p_eps(x) - log p_T(z)
    # exactly; the rest of the gap is the prior's mismatch with the true p_T (tiny but real).
    np.testing.assert_allclose(latent, G3.flow_map(sde, x, _full(eps, n), _full(sde.T, n)), rtol=1e-3, atol=2e-3)
    divergence_integral = lp - sde.prior_log_prob(latent)
    np.testing.assert_allclose(divergence_integral, exact - G3.log_prob(sde, latent, _full(sde.T, n)), atol=2e-3)
    assert float(jnp.max(jnp.abs(lp - exact))) / 3 < 0.01  # nats per dimension
    assert lp.shape == (n,) and lp.dtype == jnp.float32


def test_hutchinson_likelihood_is_unbiased(g3_points, exact_likelihood):
    sde, x = VPSDE(), g3_points
    exact, _ = exact_likelihood("vp")
    hutch = jax.jit(lambda x, k: ode_log_likelihood(G3.score(sde), sde, x, k, trace="hutchinson", num_probes=4))(
        x, jax.random.key(4))
    diff = np.asarray(hutch - exact, np.float64)
    assert diff.std() > 1e-3  # the probes do vary (Sigma is not diagonal)
    assert abs(diff.mean()) < 5 * diff.std() / np.sqrt(diff.size)
    assert abs(diff.mean()) / 3 < 0.01


def test_probability_flow_sample_then_likelihood_round_trips():
    """x = ODE(z) (here with 100 fixed Tsit5 steps); the adaptive likelihood solve maps x back to z and gives
    log p(z) - log|det dx/dz|, which for Gaussian data is the closed-form density at eps."""
    sde, n, eps = VPSDE(), 256, 1e-3
    score = G2.score(sde)

    @jax.jit
    def sample_then_likelihood(key):
        x = probability_flow_sample(score, sde, key, (n, 2), eps=eps, num_steps=100)
        return (x,) + ode_log_likelihood(score, sde, x, None, eps=eps, trace="exact", return_latent=True)

    x, lp, latent = sample_then_likelihood(jax.random.key(5))
    z = sde.prior_sample(jax.random.key(5), (n, 2))
    np.testing.assert_allclose(latent, z, atol=2e-3)
    _, v_eps, _ = G2._coords(sde, x, _full(eps, n))
    _, v_t, _ = G2._coords(sde, x, _full(sde.T, n))
    log_det = 0.5 * jnp.sum(jnp.log(v_eps / v_t), axis=-1)  # log|det dx/dz| of the linear flow map
    np.testing.assert_allclose(lp, sde.prior_log_prob(z) - log_det, atol=2e-3)
    assert float(jnp.mean(jnp.abs(lp - G2.log_prob(sde, x, _full(eps, n))))) / 2 < 0.01  # nats per dimension


def test_sampler_arguments_are_validated():
    sde, score = VPSDE(), G2.score(VPSDE())
    key = jax.random.key(0)
    with pytest.raises(GMJaxError, match="eps"):
        reverse_sde_sample(score, sde, key, (4, 2), eps=0.0)
    with pytest.raises(GMJaxError, match="num_steps"):
        pc_sample(score, sde, key, (4, 2), num_steps=0)
    with pytest.raises(GMJaxError, match="snr"):
        pc_sample(score, sde, key, (4, 2), snr=-1.0)
    with pytest.raises(GMJaxError, match="shape"):
        probability_flow_sample(score, sde, key, (4,))
    with pytest.raises(GMJaxError, match="trace"):
        ode_log_likelihood(score, sde, jnp.zeros((4, 2)), key, trace="skilling")


@pytest.mark.parametrize("wiggle", [0.0, 30.0])
def test_tsit5_evaluations_match_a_direct_count_of_score_calls(wiggle):
    """The count from diffrax's stats against the score's calls counted as they run: exact on a smooth field
    (no rejected steps), within 1% on a field that makes the controller reject steps."""
    calls = []

    def score(x, t):
        jax.debug.callback(lambda: calls.append(1))
        return -x * (1.0 + wiggle * jnp.sin(20.0 * t[:, None]) ** 2)

    sde = SDE_CASES["vp"]
    x, stats = jax.jit(lambda k: probability_flow_sample(score, sde, k, (4, 3), rtol=1e-5, atol=1e-5,
                                                         return_stats=True))(jax.random.key(0))
    jax.block_until_ready(x)
    counted = tsit5_evaluations(stats)
    assert (int(stats["num_rejected_steps"]) > 0) == (wiggle > 0)
    if wiggle:
        assert abs(int(counted) - len(calls)) <= 0.01 * len(calls)
    else:
        assert int(counted) == len(calls)
