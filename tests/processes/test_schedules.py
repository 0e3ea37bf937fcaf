import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.processes import (
    cosine_beta_schedule, eps_from_v, eps_from_x0, linear_beta_schedule, make_schedule, q_posterior, q_sample,
    v_from_eps, x0_from_eps, x0_from_v,
)


def test_linear_schedule_matches_ho_et_al_and_rescales_with_the_step_count():
    b = linear_beta_schedule(1000)
    assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02) and np.all(np.diff(b) > 0)
    b100 = linear_beta_schedule(100)
    assert b100[0] == pytest.approx(1e-3) and b100[-1] == pytest.approx(0.2)


def test_cosine_schedule_reproduces_its_alpha_bar_curve():
    T, s = 1000, 0.008
    abar = np.cumprod(1 - cosine_beta_schedule(T, s))
    f = lambda u: np.cos((u / T + s) / (1 + s) * np.pi / 2) ** 2
    t = np.arange(1, T + 1)
    unclipped = t < T - 5  # the last betas are clipped at 0.999
    np.testing.assert_allclose(abar[unclipped], (f(t) / f(0))[unclipped], rtol=1e-10)
    assert cosine_beta_schedule(T).max() == pytest.approx(0.999)


def test_marginal_is_the_composition_of_the_one_step_kernels():
    """Running x_t = sqrt(1-beta_t) x_{t-1} + sqrt(beta_t) e step by step gives q(x_t | x_0)'s moments."""
    sched = make_schedule(linear_beta_schedule(50))
    x0 = jnp.full((20_000, 1), 1.5)
    key = jax.random.key(0)

    def step(x, inp):
        beta, k = inp
        return jnp.sqrt(1 - beta) * x + jnp.sqrt(beta) * jax.random.normal(k, x.shape), None

    xT, _ = jax.lax.scan(step, x0, (sched.betas, jax.random.split(key, 50)))
    direct = q_sample(sched, x0, jnp.full((20_000,), 49), jax.random.normal(jax.random.key(1), x0.shape))
    abar = float(sched.alphas_cumprod[-1])
    for x in (xT, direct):
        assert float(x.mean()) == pytest.approx(np.sqrt(abar) * 1.5, abs=4 * np.sqrt((1 - abar) / 20_000))
        assert float(x.var()) == pytest.approx(1 - abar, rel=0.05)


def test_posterior_equals_gaussian_conditioning_of_the_joint():
    """Oracle: (x_{t-1}, x_t) | x_0 is jointly Gaussian; condition it on x_t by the textbook formula."""
    betas = cosine_beta_schedule(20)
    sched = make_schedule(betas)
    abar = np.cumprod(1 - betas)
    x0 = jnp.array([[0.3, -1.2], [2.0, 0.1], [-0.7, 0.9]])
    x_t = jnp.array([[1.0, 0.5], [-0.4, 0.2], [0.0, -2.0]])
    t = jnp.array([1, 7, 19])
    mean, var, log_var = q_posterior(sched, x0, x_t, t)
    for i, ti in enumerate(np.asarray(t)):
        ab_prev = abar[ti - 1] if ti > 0 else 1.0
        m1, v1 = np.sqrt(ab_prev) * np.asarray(x0[i]), 1 - ab_prev  # x_{t-1}
        m2, v2 = np.sqrt(abar[ti]) * np.asarray(x0[i]), 1 - abar[ti]  # x_t
        c12 = np.sqrt(1 - betas[ti]) * v1
        np.testing.assert_allclose(mean[i], m1 + c12 / v2 * (np.asarray(x_t[i]) - m2), rtol=1e-5, atol=1e-6)
        assert float(var[i, 0]) == pytest.approx(v1 - c12**2 / v2, rel=1e-5, abs=1e-9)
    assert float(log_var[0, 0]) == pytest.approx(np.log(float(sched.posterior_variance[1])), rel=1e-6)
    assert float(sched.posterior_variance[0]) == 0.0


def test_parameterisations_convert_consistently():
    sched = make_schedule(linear_beta_schedule(100))
    k0, k1 = jax.random.split(jax.random.key(0))
    x0 = jax.random.normal(k0, (6, 3, 2))
    eps = jax.random.normal(k1, (6, 3, 2))
    t = jnp.array([0, 10, 30, 50, 80, 99])
    x_t = q_sample(sched, x0, t, eps)
    np.testing.assert_allclose(x0_from_eps(sched, x_t, t, eps), x0, atol=2e-4)
    np.testing.assert_allclose(eps_from_x0(sched, x_t, t, x0), eps, atol=2e-4)
    v = v_from_eps(sched, x_t, t, eps)
    abar = jnp.take(sched.alphas_cumprod, t)[:, None, None]
    np.testing.assert_allclose(v, jnp.sqrt(abar) * eps - jnp.sqrt(1 - abar) * x0, atol=2e-4)
    np.testing.assert_allclose(x0_from_v(sched, x_t, t, v), x0, atol=2e-4)
    np.testing.assert_allclose(eps_from_v(sched, x_t, t, v), eps, atol=2e-4)


def test_bad_schedules_raise():
    with pytest.raises(GMJaxError, match="in \\(0, 1\\)"):
        make_schedule([0.1, 1.0])
    with pytest.raises(GMJaxError, match="num_steps"):
        linear_beta_schedule(0)
