"""Langevin samplers, the replay buffer and the contrastive-divergence loss against closed forms.

The oracle for the samplers is a 2-D Gaussian mixture whose energy, score and (for annealed Langevin)
the score of its convolution with N(0, sigma^2 I) are closed forms (each component's covariance plus
sigma^2 I). Unadjusted Langevin on a Gaussian N(mu, C) with drift step h and noise std s is a linear
Gaussian recursion x' = (I - h C^-1) x + ... + s z, whose stationary covariance solves the discrete
Lyapunov equation S = A S A^T + s^2 I (A = I - h C^-1): the tests compare with that exact value, so the
O(h) bias of the unadjusted chain is not mistaken for an error.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.losses import contrastive_divergence_loss
from gm_jax.samplers import (annealed_langevin_sample, langevin_sample, replay_buffer_init, replay_buffer_sample,
                             replay_buffer_update, uniform_init)

# ------------------------------------------------------------------------------------------ the oracle
WEIGHTS = np.array([0.5, 0.3, 0.2])
COVS = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.8]], [[0.6, -0.2], [-0.2, 0.6]]])


def _log_components(x, means, covs):
    """log N(x; mean_k, cov_k) [B, K] for x [B, 2] (closed form, numpy-free so it traces)."""
    prec = jnp.linalg.inv(covs)
    d = x[:, None, :] - means[None]
    maha = jnp.einsum("bki,kij,bkj->bk", d, prec, d)
    return -0.5 * maha - 0.5 * jnp.log(jnp.linalg.det(covs))[None] - jnp.log(2 * jnp.pi)


def _log_components_np(x, means, covs):
    """The same in numpy float64, for the test-side oracle (no per-op compiles)."""
    prec = np.linalg.inv(covs)
    d = np.asarray(x, np.float64)[:, None, :] - means[None]
    maha = np.einsum("bki,kij,bkj->bk", d, prec, d)
    return -0.5 * maha - 0.5 * np.log(np.linalg.det(covs))[None] - np.log(2 * np.pi)


def _responsibilities(x, means, covs):
    logits = np.log(WEIGHTS) + _log_components_np(x, means, covs)
    r = np.exp(logits - logits.max(1, keepdims=True))
    return r / r.sum(1, keepdims=True)


def mixture_energy(means, covs=COVS, weights=WEIGHTS):
    means, covs = jnp.asarray(means, jnp.float32), jnp.asarray(covs, jnp.float32)
    logw = jnp.log(jnp.asarray(weights, jnp.float32))
    return lambda x: -jax.nn.logsumexp(logw + _log_components(x, means, covs), axis=-1)


def mixture_score(means, covs=COVS, weights=WEIGHTS):
    """s(x, sigma) = grad log sum_k w_k N(x; mu_k, C_k + sigma^2 I), written out (no autodiff):
    sum_k r_k(x) (C_k + sigma^2 I)^-1 (mu_k - x) with responsibilities r_k."""
    means, covs = jnp.asarray(means, jnp.float32), jnp.asarray(covs, jnp.float32)
    logw = jnp.log(jnp.asarray(weights, jnp.float32))

    def score(x, sigma):
        s2 = jnp.square(sigma[0])  # one level per call in these samplers
        c = covs + s2 * jnp.eye(2)
        r = jax.nn.softmax(logw + _log_components(x, means, c), axis=-1)
        pull = jnp.einsum("kij,bkj->bki", jnp.linalg.inv(c), means[None] - x[:, None, :])
        return jnp.einsum("bk,bki->bi", r, pull)

    return score


def ula_stationary_cov(cov, h, noise):
    """The exact stationary covariance of x' = x - h C^-1 (x - mu) + noise z (discrete Lyapunov, by its
    convergent series S = sum_n A^n (noise^2 I) A^nT)."""
    a = np.eye(2) - h * np.linalg.inv(cov)
    s, term = np.zeros((2, 2)), noise**2 * np.eye(2)
    for _ in range(20000):
        s, term = s + term, a @ term @ a.T
        if np.abs(term).max() < 1e-15:
            break
    return s


def _moments_with_se(x):
    """Mean [2] and covariance entries [2, 2] of samples x [N, 2], with their Monte Carlo standard errors."""
    n = x.shape[0]
    mean = x.mean(0)
    d = x - mean
    prods = d[:, :, None] * d[:, None, :]
    return mean, x.std(0) / np.sqrt(n), prods.mean(0), prods.std(0) / np.sqrt(n)


# ------------------------------------------------------------------------------------------ langevin
def test_langevin_stationary_moments_of_a_gaussian_are_exact():
    """A correlated Gaussian, a large step (ULA's bias ~10% of the variance, so the exact discrete-time
    covariance is what is checked), default noise sqrt(2h) and a custom noise scale."""
    mu, cov = np.array([1.0, -2.0]), np.array([[1.0, 0.5], [0.5, 2.0]])
    energy = mixture_energy(mu[None], cov[None], [1.0])  # one component: E = (x-mu)^T C^-1 (x-mu) / 2 + const
    h, n = 0.2, 10000
    for noise, key in ((None, 0), (0.3, 1)):  # None: the default sqrt(2 h)
        x = jax.jit(lambda k: langevin_sample(energy, k, jnp.zeros((n, 2)), num_steps=150, step_size=h, noise_scale=noise))(jax.random.key(key))
        mean, mean_se, c, c_se = _moments_with_se(np.asarray(x, np.float64))
        expected = ula_stationary_cov(cov, h, np.sqrt(2 * h) if noise is None else noise)
        np.testing.assert_array_less(np.abs(mean - mu), 5 * mean_se)
        np.testing.assert_array_less(np.abs(c - expected), 5 * c_se)


def test_langevin_recovers_an_overlapping_mixture():
    """Chains started from uniform noise, far from equilibrium, reach the mixture: its weights are the
    mean responsibilities E_p[r_k(x)] (an identity that needs no hard assignment), mean and covariance
    match the closed forms. h is small so ULA's O(h) bias stays below the Monte Carlo error."""
    means = np.array([[0.0, 0.0], [2.0, 0.5], [0.0, 2.0]])
    n = 6000
    x0 = uniform_init(jax.random.key(4), (n, 2), -4.0, 4.0)
    x = jax.jit(lambda k: langevin_sample(mixture_energy(means), k, x0, num_steps=800, step_size=0.01))(jax.random.key(5))
    x = np.asarray(x, np.float64)
    r = _responsibilities(x, means, COVS)
    np.testing.assert_array_less(np.abs(r.mean(0) - WEIGHTS), 5 * r.std(0) / np.sqrt(n) + 0.005)
    mix_mean = WEIGHTS @ means
    mix_cov = np.einsum("k,kij->ij", WEIGHTS, COVS + np.einsum("ki,kj->kij", means, means)) - np.outer(mix_mean, mix_mean)
    mean, mean_se, c, c_se = _moments_with_se(x)
    np.testing.assert_array_less(np.abs(mean - mix_mean), 5 * mean_se)
    np.testing.assert_array_less(np.abs(c - mix_cov), 5 * c_se + 0.01)


def test_langevin_clipping_and_validation():
    energy = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=-1)  # gradient = x
    x = jnp.array([[30.0, 40.0], [0.3, 0.4]])  # gradient norms 50 and 0.5
    # One noiseless step: the first gradient is rescaled to norm 2, the second (norm 0.5) is untouched.
    y = langevin_sample(energy, jax.random.key(0), x, num_steps=1, step_size=0.5, noise_scale=0.0, grad_clip=2.0)
    np.testing.assert_allclose(y, [[30.0 - 0.5 * 1.2, 40.0 - 0.5 * 1.6], [0.15, 0.2]], rtol=1e-6)
    y = langevin_sample(energy, jax.random.key(0), x, num_steps=3, step_size=0.1, clip_range=(-1.0, 1.0))
    assert float(jnp.abs(y).max()) <= 1.0
    with pytest.raises(GMJaxError, match="num_steps"):
        langevin_sample(energy, jax.random.key(0), x, num_steps=0, step_size=0.1)
    with pytest.raises(GMJaxError, match="step_size"):
        langevin_sample(energy, jax.random.key(0), x, num_steps=1, step_size=-0.1)
    with pytest.raises(GMJaxError, match=r"langevin_sample: energy_fn\(x\) must return shape \(2,\), got \(\)"):
        langevin_sample(lambda x: jnp.sum(x), jax.random.key(0), x, num_steps=1, step_size=0.1)
    with pytest.raises(GMJaxError, match="decreasing"):
        annealed_langevin_sample(lambda x, s: x, jnp.array([0.1, 1.0]), jax.random.key(0), x, steps_per_sigma=2)


# --------------------------------------------------------------------------------- annealed langevin
SEPARATED = np.array([[-4.0, -4.0], [4.0, 4.0], [4.0, -4.0]])  # modes ~8 apart: plain Langevin cannot mix


def test_annealed_langevin_recovers_separated_mixture():
    """Song & Ermon (2019) fig. 3: with well-separated modes only annealing gets the weights right.
    Without denoising the chains end at p convolved with N(0, sigma_L^2): each component's covariance is
    the exact ULA stationary covariance of N(mu_k, C_k + sigma_L^2 I) (step alpha_L / 2, noise sqrt(alpha_L)).
    With denoising, Tweedie's step x + sigma_L^2 s(x) has mean E[x_0]: the mixture mean exactly."""
    sigmas = np.geomspace(10.0, 0.3, 10)
    n, step_lr, steps = 4000, 0.03, 100
    score = mixture_score(SEPARATED)
    run = jax.jit(lambda k, x0: annealed_langevin_sample(score, sigmas, k, x0, steps_per_sigma=steps, step_lr=step_lr, denoise=False))
    x0 = uniform_init(jax.random.key(6), (n, 2), -8.0, 8.0)
    x = np.asarray(run(jax.random.key(7), x0), np.float64)
    comp = np.argmin(((x[:, None, :] - SEPARATED[None]) ** 2).sum(-1), axis=1)
    frac = np.bincount(comp, minlength=3) / n
    np.testing.assert_array_less(np.abs(frac - WEIGHTS), 5 * np.sqrt(WEIGHTS * (1 - WEIGHTS) / n) + 0.005)
    s2 = sigmas[-1] ** 2
    for k in range(3):
        xk = x[comp == k]
        mean, mean_se, c, c_se = _moments_with_se(xk)
        expected = ula_stationary_cov(COVS[k] + s2 * np.eye(2), step_lr / 2, np.sqrt(step_lr))
        np.testing.assert_array_less(np.abs(mean - SEPARATED[k]), 5 * mean_se)
        np.testing.assert_array_less(np.abs(c - expected), 5 * c_se)
    # The denoising step alone (one negligible Langevin step first) is Tweedie's posterior mean E[x_0 | x],
    # closed form for a Gaussian mixture: sum_k r_k(x) (mu_k + C_k (C_k + sigma^2 I)^-1 (x - mu_k)).
    xs = jnp.asarray(x[:200], jnp.float32)
    den = annealed_langevin_sample(score, sigmas[-1:], jax.random.key(9), xs, steps_per_sigma=1, step_lr=1e-12, denoise=True)
    c = COVS + s2 * np.eye(2)
    r = _responsibilities(xs, SEPARATED, c)
    xd = np.asarray(xs, np.float64)
    post = SEPARATED[None] + np.einsum("kij,kjl,bkl->bki", COVS, np.linalg.inv(c), xd[:, None, :] - SEPARATED[None])
    np.testing.assert_allclose(den, np.einsum("bk,bki->bi", r, post), atol=1e-4)


def test_annealed_langevin_follows_the_exact_linear_recursion():
    """On N(0, (1 + sigma^2) I) the chain is linear: per step x' = a_i x + sqrt(alpha_i) z with
    a_i = 1 - alpha_i / (2 (1 + sigma_i^2)) and alpha_i = step_lr sigma_i^2 / sigma_L^2, so mean and variance
    after a few steps per level (far from stationarity, so every level's step size matters) are closed form."""
    sigmas, steps, step_lr, n = np.array([3.0, 1.5, 0.5]), 4, 0.1, 20000
    score = lambda x, sigma: -x / (1.0 + jnp.square(sigma))[:, None]
    x = annealed_langevin_sample(score, sigmas, jax.random.key(10), jnp.full((n, 2), 3.0), steps_per_sigma=steps,
                                 step_lr=step_lr, denoise=False)
    mean, var = 3.0, 0.0
    for sig in sigmas:
        alpha = step_lr * sig**2 / sigmas[-1] ** 2
        a = 1 - alpha / (2 * (1 + sig**2))
        for _ in range(steps):
            mean, var = a * mean, a * a * var + alpha
    x = np.asarray(x, np.float64)
    np.testing.assert_allclose(x.mean(0), mean, atol=5 * np.sqrt(var / n))
    np.testing.assert_allclose(x.var(0), var, atol=5 * var * np.sqrt(2 / n))


# ------------------------------------------------------------------------------------- replay buffer
def test_replay_buffer_reinit_fraction_and_update():
    cap, b, p = 64, 20000, 0.05
    buf = replay_buffer_init(jax.random.key(0), cap, (3,), init_fn=lambda k, s: jnp.zeros(s))
    buf = {"samples": buf["samples"] + jnp.arange(cap, dtype=jnp.float32)[:, None]}  # row i holds i
    fresh_init = lambda k, s: uniform_init(k, s, 100.0, 101.0)  # recognisably fresh
    x, idx = jax.jit(lambda buf, k: replay_buffer_sample(buf, k, b, p, fresh_init))(buf, jax.random.key(1))
    x, idx = np.asarray(x), np.asarray(idx)
    assert x.shape == (b, 3) and idx.shape == (b,) and idx.min() >= 0 and idx.max() < cap
    fresh = x[:, 0] >= 100.0
    assert abs(fresh.mean() - p) < 5 * np.sqrt(p * (1 - p) / b)
    np.testing.assert_array_equal(x[~fresh], np.repeat(idx[~fresh, None], 3, 1).astype(np.float32))
    assert np.all(x[fresh] < 101.0)
    # Update writes exactly the given rows.
    rows = jnp.array([3, 10, 63])
    new = replay_buffer_update(buf, rows, -jnp.ones((3, 3)))
    expected = np.asarray(buf["samples"]).copy()
    expected[np.asarray(rows)] = -1.0
    np.testing.assert_array_equal(new["samples"], expected)
    with pytest.raises(GMJaxError, match="replay_buffer_update"):
        replay_buffer_update(buf, rows, jnp.ones((3, 4)))
    with pytest.raises(GMJaxError, match="reinit_prob"):
        replay_buffer_sample(buf, jax.random.key(0), 4, 1.5)


# -------------------------------------------------------------------------------------------- CD loss
def test_contrastive_divergence_loss_formula_and_gradient_signs():
    kp, kn = jax.random.split(jax.random.key(0))
    x_pos, x_neg = jax.random.normal(kp, (8, 3)), 2.0 + jax.random.normal(kn, (8, 3))
    energy = lambda w: (lambda x: jnp.sum(w * jnp.square(x), axis=-1))  # E_w(x) = sum_j w_j x_j^2
    w = jnp.array([0.5, 1.0, 1.5])
    alpha = 0.1
    loss, aux = contrastive_divergence_loss(energy(w), x_pos, x_neg, alpha=alpha, return_aux=True)
    ep, en = np.asarray(energy(w)(x_pos)), np.asarray(energy(w)(x_neg))
    np.testing.assert_allclose(loss, ep - en + alpha * (ep**2 + en**2), rtol=1e-6)
    np.testing.assert_allclose(aux["e_pos"], ep, rtol=1e-6)
    np.testing.assert_allclose(aux["e_neg"], en, rtol=1e-6)
    # The gradient in the parameters is the CD estimate grad E(x+) - grad E(x-) plus the regulariser's
    # 2 alpha (E+ grad E+ + E- grad E-); here grad_w E(x) = x^2, so all of it is closed form.
    loss_w = lambda w, a: contrastive_divergence_loss(energy(w), x_pos, x_neg, alpha=a).mean()
    xp2, xn2 = np.asarray(x_pos) ** 2, np.asarray(x_neg) ** 2
    expected = (xp2 - xn2 + 2 * alpha * (ep[:, None] * xp2 + en[:, None] * xn2)).mean(0)
    np.testing.assert_allclose(jax.grad(loss_w)(w, alpha), expected, rtol=1e-5)
    # Without the regulariser a descent step lowers the data's energy relative to the negatives'.
    w2 = w - 0.01 * jax.grad(loss_w)(w, 0.0)
    assert float(energy(w2)(x_pos).mean() - energy(w2)(x_neg).mean()) < float(ep.mean() - en.mean())
    # No gradient reaches the negatives (they come from a sampler), the positives get one.
    g_neg = jax.grad(lambda xn: contrastive_divergence_loss(energy(w), x_pos, xn, alpha=alpha).sum())(x_neg)
    assert float(jnp.abs(g_neg).max()) == 0.0
    # Large energies stay finite (1e4-sized inputs give energies ~1e8 and squares ~1e16).
    big = contrastive_divergence_loss(energy(w), 1e4 * x_pos, 1e4 * x_neg, alpha=1.0)
    assert bool(jnp.isfinite(big).all())
    with pytest.raises(GMJaxError, match="same shape"):
        contrastive_divergence_loss(energy(w), x_pos, x_neg[:4])
