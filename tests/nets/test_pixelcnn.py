"""Gated PixelCNN (exact autoregressive structure, no blind spot) and the per-pixel distributions it outputs."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax import distributions as D
from gm_jax.nets.pixelcnn import GatedPixelCNN

# ------------------------------------------------------------------------------ coupled DMOL distribution


def _dmol_params(key, batch_shape, c, m, scale=1.0):
    ks = jax.random.split(key, 4)
    p = c * (c - 1) // 2
    return (scale * jax.random.normal(ks[0], batch_shape + (m,)),
            scale * jax.random.normal(ks[1], batch_shape + (c, m)),
            jnp.clip(scale * jax.random.normal(ks[2], batch_shape + (c, m)) - 1.0, -7.0, None),
            scale * jax.random.normal(ks[3], batch_shape + (p, m)))


def _all_colours(k, c):
    levels = np.array(list(itertools.product(range(k), repeat=c)), np.int32)  # [K^C, C]
    return levels, 2.0 * levels / (k - 1) - 1.0


EXTREME = [  # (weight logit scale, mean, log-scale, coupling logit): tails, near-deterministic, wide, saturated
    (1.0, 0.0, -1.0, 0.0), (30.0, 0.97, -7.0, 20.0), (0.1, -30.0, 5.0, -20.0), (5.0, 3.0, -7.0, 1.0),
]


@pytest.mark.parametrize("k,c,m", [(8, 3, 3), (256, 1, 2), (5, 2, 4)])
def test_coupled_dmol_sums_to_one_over_every_colour(k, c, m):
    _, colours = _all_colours(k, c)
    x = jnp.asarray(colours, jnp.float32)[None]  # [1, K^C, C]
    sets = [_dmol_params(jax.random.key(s), (1,), c, m) for s in range(3)]
    ramp = jnp.linspace(-1, 1, m)
    for w, mu, ls, cf in EXTREME:
        sets.append((w * ramp[None], jnp.full((1, c, m), mu) * ramp, jnp.full((1, c, m), ls),
                     jnp.full((1, c * (c - 1) // 2, m), cf)))
    params = [jnp.concatenate(p)[:, None] for p in zip(*sets)]  # [S, 1, ...]: every set against every colour
    log_prob = lambda *p: D.coupled_discretized_logistic_mixture_log_prob(x, *p, num_levels=k, event_ndims=1)
    lp = jax.jit(log_prob)(*params)
    assert lp.shape == (len(sets), k**c) and bool(jnp.isfinite(lp).all())
    np.testing.assert_allclose(jax.nn.logsumexp(lp, axis=1), 0.0, atol=3e-5)
    grads = jax.jit(jax.grad(lambda *p: log_prob(*p).sum(), argnums=(0, 1, 2, 3)))(*params)
    assert all(bool(jnp.isfinite(g).all()) for g in grads)


def test_coupled_dmol_matches_explicit_cdf_differences_and_the_uncoupled_mixture():
    k, c, m = 6, 3, 2
    levels, colours = _all_colours(k, c)
    w, mu, ls, cf = (np.asarray(a, np.float64)[0, 0] for a in _dmol_params(jax.random.key(7), (1, 1), c, m, 0.7))
    half = 1.0 / (k - 1)
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    a, b, cc = np.tanh(cf)  # pairs (1,0), (2,0), (2,1): mu_g + a r, mu_b + b r + c g
    expected = []
    for x in colours:
        total = 0.0
        for j in range(m):
            means = [mu[0, j], mu[1, j] + a[j] * x[0], mu[2, j] + b[j] * x[0] + cc[j] * x[1]]
            prob = np.exp(w[j]) / np.exp(w).sum()
            for ch in range(c):
                s = np.exp(ls[ch, j])
                hi = 1.0 if x[ch] > 1 - half / 2 else sig((x[ch] + half - means[ch]) / s)
                lo = 0.0 if x[ch] < -1 + half / 2 else sig((x[ch] - half - means[ch]) / s)
                prob *= hi - lo
            total += prob
        expected.append(np.log(total))
    got = D.coupled_discretized_logistic_mixture_log_prob(
        jnp.asarray(colours, jnp.float32), *(jnp.asarray(v, jnp.float32)[None] for v in (w, mu, ls, cf)), k)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
    # One channel: no coupling, the same as the per-dimension mixture.
    x1 = jnp.linspace(-1, 1, k)[:, None]
    one = D.coupled_discretized_logistic_mixture_log_prob(x1, w[None], mu[:1][None], ls[:1][None],
                                                          jnp.zeros((1, 0, m)), k)
    ref = D.discretized_logistic_mixture_log_prob(x1, w[None], mu[0][None], ls[0][None], k)
    np.testing.assert_allclose(one, ref, rtol=1e-5)


def test_coupled_dmol_sampler_frequencies_match_the_masses():
    k, c, m, n = 4, 3, 3, 40_000
    levels, colours = _all_colours(k, c)
    params = _dmol_params(jax.random.key(3), (), c, m, 0.8)
    log_mass = D.coupled_discretized_logistic_mixture_log_prob(jnp.asarray(colours, jnp.float32), *params, k)
    p = np.exp(np.asarray(log_mass, np.float64))
    tiled = [jnp.broadcast_to(a, (n,) + a.shape) for a in params]
    draws = jax.jit(lambda key: D.coupled_discretized_logistic_mixture_sample(key, *tiled, k))(jax.random.key(0))
    assert draws.shape == (n, c)
    idx = np.asarray(jnp.round((draws + 1) * (k - 1) / 2), np.int64) @ (k ** np.arange(c - 1, -1, -1))
    counts = np.bincount(idx, minlength=k**c)
    keep = p * n > 5  # chi-square over the well-populated cells, the rest pooled
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(p[keep] * n, p[~keep].sum() * n)
    chi2, dof = float(((obs - exp) ** 2 / np.maximum(exp, 1e-9)).sum()), len(obs) - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof), (chi2, dof)


def test_coupled_dmol_sampler_at_temperature_zero_rounds_the_coupled_mean_of_the_top_component():
    k = 17
    w = jnp.array([0.0, 3.0])
    mu = jnp.array([[0.9, 0.0], [0.5, -0.52], [0.0, 0.1]])  # [C, M]
    ls = jnp.full((3, 2), -2.0)
    cf = jnp.array([[0.0, 0.3], [0.0, -0.2], [0.0, 0.5]])
    x = D.coupled_discretized_logistic_mixture_sample(jax.random.key(0), w, mu, ls, cf, k, temperature=0.0)
    step = 2.0 / (k - 1)
    r = np.round(0.0 / step) * step
    g = np.round((-0.52 + np.tanh(0.3) * r + 1) / step) * step - 1
    b = np.round((0.1 + np.tanh(-0.2) * r + np.tanh(0.5) * g + 1) / step) * step - 1
    np.testing.assert_allclose(x, [r, g, b], atol=1e-6)


def test_categorical_masses_sum_to_one():
    logits = jax.random.normal(jax.random.key(0), (3, 1, 11)) * jnp.array([1.0, 30.0, 1e3])[:, None, None]
    lp = D.categorical_log_prob(jnp.arange(11)[None, :], logits, event_ndims=0)
    np.testing.assert_allclose(jax.nn.logsumexp(lp, axis=-1), 0.0, atol=1e-5)


# ---------------------------------------------------------------------------------- Gated PixelCNN structure
H = W = 5
C = 3


def _dependency(jac, per_subpixel: bool):
    """|d out / d in| summed over the output's parameter axes: [H, W, (C,) H, W, C] for one image."""
    dims = (H, W, C) if per_subpixel else (H, W)
    j = jnp.abs(jac).reshape((1,) + dims + (-1, H, W, C))[0]
    return np.asarray(j.sum(axis=len(dims)))


def _check_exact_autoregressive(dep, per_subpixel: bool):
    """dep[out..., in_i, in_j, in_c]: zero at and after the output in (row, col, channel) order, nonzero before."""
    order = np.arange(H * W * C).reshape(H, W, C)  # raster then channel
    outs = itertools.product(range(H), range(W), range(C)) if per_subpixel else itertools.product(range(H), range(W))
    for out in outs:
        rank = order[out] if per_subpixel else order[out + (0,)]
        d = dep[out]
        assert not np.any(d[order >= rank]), f"output {out} depends on a later or current input"
        before = d[order < rank]
        assert np.all(before > 0), f"output {out} misses {int((before == 0).sum())} earlier inputs"


@pytest.fixture(scope="module")
def image():
    return jax.random.uniform(jax.random.key(0), (1, H, W, C), minval=-1.0, maxval=1.0)


def _net(head, **kw):
    return GatedPixelCNN(num_levels=4, num_channels=C, features=4, num_layers=4, kernel_size=3, head_features=32,
                         head=head, num_mixtures=2, num_classes=3, **kw)


@pytest.fixture(scope="module")
def nets(image):
    """(net, variables) per head: random values in the init's shapes (compiling the init, with its random
    initializers, would take longer than the tests; numpy draws them without compiling per shape)."""
    out, rng = {}, np.random.default_rng(1)
    for head in ("categorical", "dmol"):
        net = _net(head)
        leaves, tree = jax.tree_util.tree_flatten(jax.eval_shape(net.init, jax.random.key(1), image, jnp.array([0])))
        out[head] = net, tree.unflatten([jnp.asarray(0.3 * rng.normal(size=s.shape), s.dtype) for s in leaves])
    return out


def test_categorical_pixelcnn_is_exactly_autoregressive_over_rows_cols_and_channels(image, nets):
    net, v = nets["categorical"]
    jac = jax.jit(jax.jacfwd(lambda x: net.apply(v, x, jnp.array([1]))))(image)  # [1, H, W, C, K, 1, H, W, C]
    dep = _dependency(jac, per_subpixel=True)
    _check_exact_autoregressive(dep, per_subpixel=True)
    # No blind spot: the pixel up and to the right feeds the current one (a plain masked-conv stack misses it).
    assert dep[2, 2, 0, 1, 3].sum() > 0 and dep[2, 0, 0, 1, 4].sum() > 0


def test_dmol_pixelcnn_params_depend_only_on_earlier_pixels(image, nets):
    net, v = nets["dmol"]
    jac = jax.jit(jax.jacfwd(lambda x: net.apply(v, x, jnp.array([2]))))(image)
    dep = sum(_dependency(j, per_subpixel=False) for j in jac.values())  # [H, W, H, W, C]
    _check_exact_autoregressive(dep, per_subpixel=False)


def test_class_bias_changes_outputs_and_bfloat16_runs(image, nets):
    net, v = nets["categorical"]
    low_net = _net("categorical", dtype=jnp.bfloat16)

    @jax.jit
    def run(v, x):
        y0, y2 = net.apply(v, x, jnp.array([0])), net.apply(v, x, jnp.array([2]))
        h = net.apply(v, x, jnp.array([0]), method="features_of")
        return y0, y2, low_net.apply(v, x, jnp.array([0])), net.apply(v, h, x, method="head_of")

    a, b, low, composed = run(v, image)
    assert float(jnp.abs(a - b).max()) > 1e-4
    assert low.dtype == jnp.float32 and bool(jnp.isfinite(low).all())
    assert float(jnp.abs(low - a).max()) < 0.1 * float(jnp.abs(a).max()) + 0.05
    # The two halves used by the sampler compose to the full network.
    np.testing.assert_allclose(composed, a, rtol=1e-5, atol=1e-5)
