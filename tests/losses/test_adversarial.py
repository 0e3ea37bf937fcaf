"""Oracles for the adversarial losses: hand-computed float64 formulas (also at extreme logits), closed-form and
finite-difference input gradients for the penalties, and Goodfellow et al.'s optimal discriminator
D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Prop. 1), which is also the least-squares optimum for a=0, b=1
(Mao et al. 2017, eq. 4)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import expit
from scipy.stats import norm

from gm_jax.errors import GMJaxError
from gm_jax.losses import (GAN_LOSSES, cycle_consistency_loss, discriminator_loss, generator_loss, gradient_penalty,
                           identity_loss, r1_penalty, r2_penalty, weight_clip)

REAL = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
FAKE = np.array([2.5, -1.0, 0.3, -4.0, 0.0])
# Where a naive -log(sigmoid(.)) overflows or takes log(0); ±80 is where float32 sigmoid already rounds to 0/1.
REAL_EXTREME = np.array([1e4, -1e4, 80.0, -80.0, 0.0])
FAKE_EXTREME = np.array([-1e4, 1e4, -80.0, 80.0, 0.0])


def _sp(x):
    return np.logaddexp(0.0, x)  # softplus, stable in float64


# Per-example (loss, d loss / d real, d loss / d fake) in float64; the batch mean divides the gradients by B.
D_REF = {
    "minimax": lambda r, f: (_sp(-r) + _sp(f), -expit(-r), expit(f)),
    "non_saturating": lambda r, f: (_sp(-r) + _sp(f), -expit(-r), expit(f)),
    "wasserstein": lambda r, f: (f - r, -np.ones_like(r), np.ones_like(f)),
    "least_squares": lambda r, f: (0.5 * (r - 1) ** 2 + 0.5 * f**2, r - 1, f),
    "hinge": lambda r, f: (np.maximum(0, 1 - r) + np.maximum(0, 1 + f), -1.0 * (1 - r > 0), 1.0 * (1 + f > 0)),
}
G_REF = {
    "minimax": lambda f: (-_sp(f), -expit(f)),
    "non_saturating": lambda f: (_sp(-f), -expit(-f)),
    "wasserstein": lambda f: (-f, -np.ones_like(f)),
    "least_squares": lambda f: (0.5 * (f - 1) ** 2, f - 1),
    "hinge": lambda f: (-f, -np.ones_like(f)),
}


@pytest.mark.parametrize("kind", GAN_LOSSES)
@pytest.mark.parametrize("real, fake", [(REAL, FAKE), (REAL_EXTREME, FAKE_EXTREME)], ids=["moderate", "extreme"])
def test_gan_losses_equal_float64_formulas_with_finite_gradients(kind, real, fake):
    r, f = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    n = real.size

    ref, ref_dr, ref_df = D_REF[kind](real, fake)
    d_per = discriminator_loss(r, f, kind=kind)
    assert d_per.shape == (n,) and d_per.dtype == jnp.float32 and np.all(np.isfinite(d_per))
    np.testing.assert_allclose(d_per, ref, rtol=1e-5, atol=1e-6)  # each example against its own formula
    d_val, (d_dr, d_df) = jax.value_and_grad(lambda r_, f_: discriminator_loss(r_, f_, kind=kind).mean(),
                                             argnums=(0, 1))(r, f)
    assert d_val.shape == () and d_val.dtype == jnp.float32
    assert np.isfinite(float(d_val)) and np.all(np.isfinite(d_dr)) and np.all(np.isfinite(d_df))
    np.testing.assert_allclose(float(d_val), ref.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_dr, ref_dr / n, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d_df, ref_df / n, rtol=1e-5, atol=1e-7)

    ref, ref_df = G_REF[kind](fake)
    g_per = generator_loss(f, kind=kind)
    assert g_per.shape == (n,) and g_per.dtype == jnp.float32 and np.all(np.isfinite(g_per))
    np.testing.assert_allclose(g_per, ref, rtol=1e-5, atol=1e-6)
    g_val, g_df = jax.value_and_grad(lambda f_: generator_loss(f_, kind=kind).mean())(f)
    assert g_val.shape == () and g_val.dtype == jnp.float32
    assert np.isfinite(float(g_val)) and np.all(np.isfinite(g_df))
    np.testing.assert_allclose(float(g_val), ref.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_df, ref_df / n, rtol=1e-5, atol=1e-7)


def test_gan_losses_accept_column_logits_and_low_precision():
    r, f = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    for kind in GAN_LOSSES:
        flat = discriminator_loss(r, f, kind=kind)
        col = discriminator_loss(r[:, None].astype(jnp.bfloat16), f[:, None].astype(jnp.bfloat16), kind=kind)
        assert col.dtype == jnp.float32
        np.testing.assert_allclose(col, flat, rtol=2e-2, atol=2e-2)  # bf16 rounding of the inputs only
        np.testing.assert_allclose(generator_loss(f[:, None], kind=kind, real_logits=r[:, None]),
                                   generator_loss(f, kind=kind), rtol=1e-6)


def test_gan_losses_are_per_example_and_average_patches():
    """[B] and [B, 1] logits give [B]; PatchGAN logits [B, H, W, 1] give each example's patch mean of the
    per-patch formula. The options are keyword-only."""
    b = REAL.size
    r, f = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    rng = np.random.default_rng(7)
    pr, pf = rng.normal(size=(b, 3, 2, 1)) * 2, rng.normal(size=(b, 3, 2, 1)) * 2
    for kind in GAN_LOSSES:
        for shape in ((b,), (b, 1)):
            assert discriminator_loss(r.reshape(shape), f.reshape(shape), kind=kind).shape == (b,)
            assert generator_loss(f.reshape(shape), kind=kind).shape == (b,)
        d_patch = discriminator_loss(jnp.asarray(pr, jnp.float32), jnp.asarray(pf, jnp.float32), kind=kind)
        g_patch = generator_loss(jnp.asarray(pf, jnp.float32), kind=kind)
        assert d_patch.shape == g_patch.shape == (b,) and d_patch.dtype == g_patch.dtype == jnp.float32
        np.testing.assert_allclose(d_patch, D_REF[kind](pr, pf)[0].mean(axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g_patch, G_REF[kind](pf)[0].mean(axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)
    for call in (lambda: discriminator_loss(r, f, "hinge"), lambda: generator_loss(f, "hinge"),
                 lambda: weight_clip({"w": r}, 0.01),
                 lambda: gradient_penalty(lambda x: x.sum(1), r[:, None], f[:, None], jax.random.key(0), 1.0)):
        with pytest.raises(TypeError):
            call()


# ---------------------------------------------------------------- penalties


def _quadratic_form_critic():
    """D(x) = x^T A x for x [B, 3] with a non-symmetric A, so grad D(x) = (A + A^T) x (not 2 A x)."""
    a = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0], [0.5, 0.0, -2.0]])
    return (lambda x: jnp.einsum("bi,ij,bj->b", x, jnp.asarray(a, x.dtype), x)), (lambda x: x @ (a + a.T).T)


def _numpy_mlp_critic(seed=0, d=5, h=8):
    """A smooth MLP critic D(x) = tanh(x W + b) v, with a float64 numpy twin for finite differences."""
    rng = np.random.default_rng(seed)
    w, b, v = rng.normal(size=(d, h)) / np.sqrt(d), rng.normal(size=h) * 0.1, rng.normal(size=h) / np.sqrt(h)

    def jax_critic(x):
        return (jnp.tanh(x @ jnp.asarray(w, x.dtype) + jnp.asarray(b, x.dtype)) @ jnp.asarray(v, x.dtype))[:, None]

    def fd_grad(x, step=1e-5):
        g = np.zeros_like(x)
        for j in range(x.shape[1]):
            e = np.zeros(x.shape[1])
            e[j] = step
            g[:, j] = (np.tanh((x + e) @ w + b) @ v - np.tanh((x - e) @ w + b) @ v) / (2 * step)
        return g

    return jax_critic, fd_grad


def test_r1_r2_equal_closed_form_gradient_norms():
    critic, grad_ref = _quadratic_form_critic()
    x = np.random.default_rng(1).normal(size=(6, 3))
    ref = np.sum(grad_ref(x) ** 2, axis=1)
    np.testing.assert_allclose(r1_penalty(critic, jnp.asarray(x, jnp.float32)), ref, rtol=1e-5)
    np.testing.assert_allclose(r2_penalty(lambda x_: critic(x_)[:, None], jnp.asarray(x, jnp.float32)), ref, rtol=1e-5)

    # Image-shaped input: the norm runs over all of H, W, C. D(x) = sum w x^2 -> grad 2 w x.
    w = np.random.default_rng(2).uniform(0.5, 1.5, size=(2, 2, 3))
    img = np.random.default_rng(3).normal(size=(4, 2, 2, 3))
    pen = r1_penalty(lambda x_: jnp.sum(jnp.asarray(w, jnp.float32) * x_**2, axis=(1, 2, 3)), jnp.asarray(img, jnp.float32))
    np.testing.assert_allclose(pen, np.sum((2 * w * img) ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_penalties_match_finite_differences_on_an_mlp_critic():
    critic, fd_grad = _numpy_mlp_critic()
    x = np.random.default_rng(4).normal(size=(7, 5))
    g = fd_grad(x)
    sq = np.sum(g**2, axis=1)
    xj = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(r1_penalty(critic, xj), sq, rtol=1e-4)
    np.testing.assert_allclose(r2_penalty(critic, xj), sq, rtol=1e-4)
    # real == fake: every interpolate is that point, whatever eps is drawn.
    for target in (1.0, 0.3):
        np.testing.assert_allclose(gradient_penalty(critic, xj, xj, jax.random.key(0), target=target),
                                   (np.sqrt(sq) - target) ** 2, rtol=1e-4, atol=1e-7)


def test_gradient_penalty_at_a_point_equals_closed_form():
    critic, grad_ref = _quadratic_form_critic()
    x = np.random.default_rng(5).normal(size=(6, 3))
    norms = np.linalg.norm(grad_ref(x), axis=1)
    xj = jnp.asarray(x, jnp.float32)
    gp = gradient_penalty(critic, xj, xj, jax.random.key(1))
    assert gp.shape == (6,) and gp.dtype == jnp.float32
    np.testing.assert_allclose(gp, (norms - 1.0) ** 2, rtol=1e-5)
    np.testing.assert_allclose(gradient_penalty(critic, xj, xj, jax.random.key(1), target=0.5), (norms - 0.5) ** 2,
                               rtol=1e-5)


def test_gradient_penalty_interpolates_with_one_uniform_eps_per_example():
    """Critic ½||x||² has grad x̂; with real = 3u, fake = u (u a unit vector) and target 0 the penalty is
    ||x̂||² = (1 + 2 eps)², so eps can be read back. One eps per example makes it U[0, 1]; an eps per element
    would concentrate sqrt(mean eps_j²) near 0.58 and fail the Kolmogorov-Smirnov bound."""
    b, d = 4000, 8
    u = np.ones(d) / np.sqrt(d)
    real = jnp.asarray(np.tile(3 * u, (b, 1)), jnp.float32)
    fake = jnp.asarray(np.tile(u, (b, 1)), jnp.float32)
    critic = lambda x: 0.5 * jnp.sum(x**2, axis=1)  # noqa: E731
    eps = (np.sqrt(np.asarray(gradient_penalty(critic, real, fake, jax.random.key(2), target=0.0))) - 1) / 2
    assert eps.min() >= -1e-5 and eps.max() <= 1 + 1e-5
    ks = np.max(np.abs(np.sort(eps) - (np.arange(b) + 0.5) / b))
    assert ks < 0.03, ks
    other = (np.sqrt(np.asarray(gradient_penalty(critic, real, fake, jax.random.key(3), target=0.0))) - 1) / 2
    assert np.mean(np.abs(other - eps)) > 0.1  # a fresh key draws fresh eps


def test_penalties_are_differentiable_in_critic_parameters():
    # Linear critic D(x) = x.w: grad_x = w everywhere, GP = (||w|| - 1)², d/dw = 2 (||w|| - 1) w / ||w||.
    w = jnp.array([0.3, -1.2, 0.8])
    real = jax.random.normal(jax.random.key(4), (5, 3))
    fake = jax.random.normal(jax.random.key(5), (5, 3))
    gp_grad = jax.grad(lambda w_: gradient_penalty(lambda x: x @ w_, real, fake, jax.random.key(6)).mean())(w)
    nw = np.linalg.norm(np.asarray(w))
    np.testing.assert_allclose(gp_grad, 2 * (nw - 1) * np.asarray(w) / nw, rtol=1e-5)
    # R1 with D(x) = sum w x²: ||2 w x||² -> d/dw_j mean_i = 8 w_j mean_i x_ij².
    r1_grad = jax.grad(lambda w_: r1_penalty(lambda x: jnp.sum(w_ * x**2, axis=1), real).mean())(w)
    np.testing.assert_allclose(r1_grad, 8 * np.asarray(w) * np.mean(np.asarray(real) ** 2, axis=0), rtol=1e-5)


def test_gradient_penalty_has_finite_parameter_gradient_where_the_input_gradient_vanishes():
    """D(x) = w ||x||² at x = 0 has grad_x = 0 for every w: the penalty is target² and its w-derivative 0,
    where a plain sqrt would give NaN."""
    zeros = jnp.zeros((3, 4))
    val, g = jax.value_and_grad(
        lambda w: gradient_penalty(lambda x: w * jnp.sum(x**2, axis=1), zeros, zeros, jax.random.key(7)).mean())(2.0)
    assert float(val) == pytest.approx(1.0)
    assert np.isfinite(float(g)) and float(g) == 0.0


# ---------------------------------------------------------------- CycleGAN terms and weight clipping


def test_cycle_and_identity_losses_are_per_example_mean_absolute_error():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3, 2, 2, 3)), rng.normal(size=(3, 2, 2, 3))
    ref = np.mean(np.abs(x - y), axis=(1, 2, 3))
    for fn in (cycle_consistency_loss, identity_loss):
        out = fn(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
        assert out.shape == (3,) and out.dtype == jnp.float32
        np.testing.assert_allclose(out, ref, rtol=1e-6)
        np.testing.assert_allclose(fn(jnp.asarray(x, jnp.float32), jnp.asarray(x, jnp.float32)), 0.0)


def test_weight_clip_clips_every_leaf_and_keeps_structure_and_dtypes():
    params = {"dense": {"kernel": jnp.array([[0.5, -0.003], [0.02, -0.2]]), "bias": jnp.array([0.001, -0.01])},
              "scale": [jnp.array([-3.0, 0.004], jnp.bfloat16)]}
    clipped = weight_clip(params, clip=0.01)
    assert jax.tree.structure(clipped) == jax.tree.structure(params)
    for got, orig in zip(jax.tree.leaves(clipped), jax.tree.leaves(params)):
        assert got.dtype == orig.dtype and got.shape == orig.shape
        # The bound is rounded to the leaf's dtype (bf16's nearest to 0.01 is 0.010009765625).
        expected = np.clip(np.asarray(orig, np.float32), -0.01, 0.01).astype(orig.dtype).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(got, np.float32), expected)


# ---------------------------------------------------------------- optimal discriminator


def _train_discriminator(kind, steps=2000, batch=1024):
    """Fit D on p_data = N(-1, 0.5²) vs a fixed p_g = N(1, 1) with fresh samples each step.

    D's logit is theta . [x, x², 1], which contains the exact log-ratio log p_data - log p_g
    = -1.5 x² - 5 x - 1.5 + log 2. For ``minimax`` the logit is what the loss takes; for ``least_squares`` the
    loss takes the discriminator's output directly, here D = sigmoid(logit) (a family that contains D*, so
    the pointwise optimum of Mao et al. is attainable)."""

    def output(theta, x):
        logit = jnp.stack([x, x**2, jnp.ones_like(x)], axis=-1) @ theta
        return logit if kind == "minimax" else jax.nn.sigmoid(logit)

    lr = optax.join_schedules([optax.constant_schedule(0.1), optax.linear_schedule(0.1, 0.0, steps // 4)],
                              [3 * steps // 4])
    opt = optax.adam(lr)

    def step(carry, key):
        theta, opt_state = carry
        k_real, k_fake = jax.random.split(key)
        x_real = -1.0 + 0.5 * jax.random.normal(k_real, (batch,))
        x_fake = 1.0 + jax.random.normal(k_fake, (batch,))
        grads = jax.grad(lambda th: discriminator_loss(output(th, x_real), output(th, x_fake), kind=kind).mean())(theta)
        updates, opt_state = opt.update(grads, opt_state)
        return (optax.apply_updates(theta, updates), opt_state), None

    theta = jnp.zeros(3)
    train = jax.jit(lambda carry, keys: jax.lax.scan(step, carry, keys)[0])
    theta, _ = train((theta, opt.init(theta)), jax.random.split(jax.random.key(0), steps))
    grid = np.linspace(-2.5, 2.5, 101)
    out = np.asarray(output(theta, jnp.asarray(grid, jnp.float32)), np.float64)
    d = expit(out) if kind == "minimax" else out
    p_data, p_g = norm.pdf(grid, -1.0, 0.5), norm.pdf(grid, 1.0, 1.0)
    return d, p_data / (p_data + p_g)


@pytest.mark.parametrize("kind", ["minimax", "least_squares"])
def test_trained_discriminator_reaches_the_optimal_discriminator(kind):
    d, d_star = _train_discriminator(kind)
    err = np.max(np.abs(d - d_star))
    assert err < 0.03, err


# ---------------------------------------------------------------- bad input


def test_unknown_kind_names_the_choices():
    for call in (lambda: discriminator_loss(jnp.zeros(3), jnp.zeros(3), kind="wgan"),
                 lambda: generator_loss(jnp.zeros(3), kind="wgan")):
        with pytest.raises(GMJaxError, match="unknown GAN loss kind 'wgan'") as info:
            call()
        assert all(k in str(info.value) for k in GAN_LOSSES)


@pytest.mark.parametrize("call, match", [
    (lambda: discriminator_loss(jnp.zeros(4), jnp.zeros(5), kind="hinge"), "same shape"),
    (lambda: discriminator_loss(jnp.zeros(4), jnp.zeros((4, 2)), kind="hinge"), "same shape"),
    (lambda: generator_loss(jnp.zeros(4), kind="hinge", real_logits=jnp.zeros(3)), "same shape"),
    (lambda: discriminator_loss(jnp.zeros(4, jnp.int32), jnp.zeros(4), kind="minimax"), "floating-point"),
    (lambda: generator_loss(jnp.array(1.0), kind="minimax"), "batch axis"),
    (lambda: gradient_penalty(lambda x: x.sum(1), jnp.zeros((4, 2)), jnp.zeros((3, 2)), jax.random.key(0)),
     "same shape"),
    (lambda: r1_penalty(lambda x: x, jnp.zeros((4, 2))), "one value per example"),
    (lambda: r2_penalty(lambda x: x.sum(1), jnp.zeros((4, 2), jnp.int32)), "floating-point"),
    (lambda: cycle_consistency_loss(jnp.zeros((2, 3)), jnp.zeros((2, 4))), "same shape"),
    (lambda: identity_loss(jnp.zeros((2, 3)), jnp.zeros((3, 3))), "same shape"),
    (lambda: weight_clip({"w": jnp.ones(2)}, clip=0.0), "clip must be > 0"),
])
def test_bad_input_raises_gmjax_error(call, match):
    with pytest.raises(GMJaxError, match=match):
        call()
