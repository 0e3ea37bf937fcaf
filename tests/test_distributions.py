import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from gm_jax import distributions as D


def test_diag_gaussian_log_prob_matches_scipy_normal():
    x, m, ls = jnp.array([[0.3, -1.2]]), jnp.array([[0.1, 0.5]]), jnp.array([[-0.4, 0.7]])
    expected = norm.logpdf(x, m, jnp.exp(ls)).sum(-1)
    np.testing.assert_allclose(D.diag_gaussian_log_prob(x, m, ls), expected, rtol=1e-6)
    np.testing.assert_allclose(D.standard_normal_log_prob(x), norm.logpdf(x).sum(-1), rtol=1e-6)


def test_standard_logistic_log_prob_matches_scipy_and_stays_finite():
    from jax.scipy.stats import logistic

    x = jnp.array([[0.3, -1.2, 4.0], [-30.0, 0.0, 80.0]])
    np.testing.assert_allclose(D.standard_logistic_log_prob(x), logistic.logpdf(x).sum(-1), rtol=1e-6)
    far = D.standard_logistic_log_prob(jnp.array([[-200.0, 200.0]]))
    np.testing.assert_allclose(far, [-400.0], rtol=1e-6)  # log density ~ -|x| in both tails


def test_analytic_kl_equals_monte_carlo():
    key = jax.random.key(0)
    mean, log_std = jnp.array([[0.7, -1.1, 0.2]]), jnp.array([[-0.5, 0.3, -1.2]])
    pm, pls = jnp.array([[0.1, 0.0, -0.4]]), jnp.array([[0.2, -0.1, 0.0]])
    n = 200_000
    z = mean + jnp.exp(log_std) * jax.random.normal(key, (n, 3))
    log_ratio = D.diag_gaussian_log_prob(z, mean, log_std) - D.diag_gaussian_log_prob(z, pm, pls)
    mc, se = float(log_ratio.mean()), float(log_ratio.std() / np.sqrt(n))
    for kl in (D.diag_gaussian_kl(mean, log_std, pm, pls)[0], None):
        if kl is None:  # the standard-normal prior form
            log_ratio = D.diag_gaussian_log_prob(z, mean, log_std) - D.standard_normal_log_prob(z)
            mc, se = float(log_ratio.mean()), float(log_ratio.std() / np.sqrt(n))
            kl = D.diag_gaussian_kl(mean, log_std)[0]
        assert abs(float(kl) - mc) < 5 * se, (float(kl), mc, se)


PARAMS = [(0.0, -1.0), (0.3, -4.0), (0.93, -8.0), (2.5, 0.0), (-0.2, 3.0), (5.0, -5.0), (-1.0, -6.9)]


@pytest.mark.parametrize("num_levels", [2, 17, 256])
@pytest.mark.parametrize("fn", [D.discretized_logistic_log_prob, D.discretized_gaussian_log_prob])
def test_discretized_masses_sum_to_one_over_all_levels(fn, num_levels):
    levels = jnp.linspace(-1.0, 1.0, num_levels)[:, None]
    for mean, log_scale in PARAMS:
        lp = fn(levels, mean, log_scale, num_levels)
        assert bool(jnp.isfinite(lp).all())
        assert float(jax.nn.logsumexp(lp)) == pytest.approx(0.0, abs=2e-5), (mean, log_scale)


def test_discretized_logistic_matches_cdf_differences_and_has_finite_gradients():
    k = 17
    levels = jnp.linspace(-1.0, 1.0, k)
    mean, s = 0.1, 0.3
    cdf = lambda v: jax.nn.sigmoid((v - mean) / s)
    half = 1.0 / (k - 1)
    expected = np.log(np.array([cdf(levels[0] + half)] + [cdf(v + half) - cdf(v - half) for v in levels[1:-1]]
                               + [1 - cdf(levels[-1] - half)]))
    got = D.discretized_logistic_log_prob(levels[:, None], mean, np.log(s), k)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for mean, log_scale in PARAMS + [(30.0, -7.0), (-30.0, 5.0)]:
        g = jax.grad(lambda m, ls: D.discretized_logistic_log_prob(levels[:, None], m, ls, k).sum(), (0, 1))(
            mean, log_scale)
        assert all(np.isfinite(np.asarray(v)) for v in g), (mean, log_scale, g)


def test_mixture_sums_to_one():
    k, levels = 17, jnp.linspace(-1.0, 1.0, 17)[:, None]
    w, m, ls = jnp.array([0.3, -1.0, 2.0]), jnp.array([-0.5, 0.2, 0.9]), jnp.array([-2.0, -4.0, -1.0])
    lp = D.discretized_logistic_mixture_log_prob(levels, w, m, ls, k)
    assert float(jax.nn.logsumexp(lp)) == pytest.approx(0.0, abs=2e-5)


def test_bernoulli_and_categorical_extreme_logits_stay_finite():
    x = jnp.array([[0.0, 1.0, 1.0, 0.0]])
    logits = jnp.array([[-1e4, 1e4, -80.0, 80.0]])
    lp = D.bernoulli_log_prob(x, logits)
    assert np.isfinite(float(lp[0])) and float(lp[0]) == pytest.approx(-160.0, rel=1e-4)
    g = jax.grad(lambda l: D.bernoulli_log_prob(x, l).sum())(logits)
    assert np.isfinite(np.asarray(g)).all()
    cat = D.categorical_log_prob(jnp.array([[2]]), jnp.array([[[0.0, 1.0, 2.0]]]))
    assert float(cat[0]) == pytest.approx(2.0 - np.log(np.exp([0.0, 1.0, 2.0]).sum()), rel=1e-6)


def test_log1mexp_accuracy_and_gradient():
    a = jnp.array([1e-8, 1e-3, 0.5, np.log(2.0), 3.0, 40.0], dtype=jnp.float32)
    a64 = np.asarray(a, np.float64)
    expected = np.where(a64 > 0.5, np.log1p(-np.exp(-a64)), np.log(-np.expm1(-a64)))
    np.testing.assert_allclose(D.log1mexp(a), expected, rtol=1e-5)
    g = jax.vmap(jax.grad(D.log1mexp))(a)
    np.testing.assert_allclose(g, 1.0 / np.expm1(np.asarray(a, np.float64)), rtol=1e-4)
