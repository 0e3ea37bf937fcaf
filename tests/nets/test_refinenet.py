"""NCSN's conditional dilated RefineNet: its parameter count against the official network's, the aligned-corner
resize against a direct formula, conditional instance norm++ against its definition, and conditioning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.nets.refinenet import CondInstanceNormPlus, RefineNet, resize_align_corners


def official_num_params(ngf, num_classes, channels=3):
    """The parameters of ermongroup/ncsn's ``CondRefineNetDilated`` (models/cond_refinenet_dilated.py),
    counted from its source: every norm is ConditionalInstanceNorm2dPlus (an embedding [L, 3F])."""
    conv = lambda k, cin, cout, bias=True: k * k * cin * cout + (cout if bias else 0)
    norm = lambda f: num_classes * 3 * f

    def res(cin, cout, down=False, dilated=False):
        mid = cin if down else cout
        n = norm(cin) + conv(3, cin, mid) + norm(mid) + conv(3, mid, cout)
        if down:
            n += conv(3 if dilated else 1, cin, cout)
        return n

    rcu = lambda f, blocks: blocks * 2 * (norm(f) + conv(3, f, f, False))

    def refine(ins, f, start=False, end=False):
        n = sum(rcu(c, 2) for c in ins) + 2 * (norm(f) + conv(3, f, f, False)) + rcu(f, 3 if end else 1)
        return n + (0 if start else sum(norm(c) + conv(3, c, f) for c in ins))

    g = ngf
    return (conv(3, channels, g) + 2 * res(g, g) + res(g, 2 * g, down=True) + res(2 * g, 2 * g)
            + 2 * (res(2 * g, 2 * g, down=True, dilated=True) + res(2 * g, 2 * g))
            + refine([2 * g], 2 * g, start=True) + refine([2 * g, 2 * g], 2 * g) + refine([2 * g, 2 * g], g)
            + refine([g, g], g, end=True) + norm(g) + conv(3, g, channels))


@pytest.mark.parametrize("ngf,levels", [(128, 10), (8, 3)])
def test_parameter_count_equals_the_official_networks(ngf, levels):
    net = RefineNet(channels=ngf, num_classes=levels)
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)), jnp.zeros((1,), jnp.int32))
    assert sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(shapes)) == official_num_params(ngf, levels)


def test_resize_with_aligned_corners():
    x = jax.random.normal(jax.random.key(0), (2, 4, 3, 5))
    y = np.asarray(resize_align_corners(x, (7, 5)))
    xn = np.asarray(x)
    for i in range(7):
        for j in range(5):
            pi, pj = i * 3 / 6, j * 2 / 4  # align_corners: output i samples i (in - 1) / (out - 1)
            i0, j0 = int(np.floor(pi)), int(np.floor(pj))
            i1, j1 = min(i0 + 1, 3), min(j0 + 1, 2)
            a, b = pi - i0, pj - j0
            want = ((1 - a) * (1 - b) * xn[:, i0, j0] + (1 - a) * b * xn[:, i0, j1] + a * (1 - b) * xn[:, i1, j0]
                    + a * b * xn[:, i1, j1])
            np.testing.assert_allclose(y[:, i, j], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(resize_align_corners(x, (4, 3)), x)


def test_conditional_instance_norm_plus_is_its_definition():
    x = jax.random.normal(jax.random.key(1), (3, 5, 4, 6)) * 2 + 1
    y = jnp.array([0, 2, 1])
    norm = CondInstanceNormPlus(3)
    v = norm.init(jax.random.key(2), x, y)
    emb = np.asarray(v["params"]["embed"]["embedding"])  # [3, 18]: gamma, alpha, beta
    out = np.asarray(norm.apply(v, x, y))
    xn = np.asarray(x, np.float64)
    mu = xn.mean(axis=(1, 2))
    mu_t = (mu - mu.mean(-1, keepdims=True)) / np.sqrt(mu.var(-1, ddof=1, keepdims=True) + 1e-5)
    h = (xn - mu[:, None, None]) / np.sqrt(xn.var(axis=(1, 2))[:, None, None] + 1e-5)
    g, a, b = np.split(emb[np.asarray(y)], 3, axis=-1)
    want = g[:, None, None] * (h + mu_t[:, None, None] * a[:, None, None]) + b[:, None, None]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    assert np.allclose(emb[:, 12:], 0) and abs(emb[:, :12].mean() - 1) < 0.02  # the official initialisation


def test_ncsn_scores_with_the_refinenet_at_the_nearest_level(digits):
    """NCSN with architecture=refinenet: s(x, sigma) = net(x, index of the level nearest sigma), no 1/sigma."""
    from gm_jax.models.ncsn import NCSN, NCSNConfig

    model = NCSN(NCSNConfig(architecture="refinenet", channels=4, num_scales=3, dropout=0.0), digits.spec)
    net = model.refinenet
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
    # random values in the init's shapes (compiling the init costs more than this test), so levels differ
    shapes = jax.eval_shape(net.init, jax.random.key(1), x, jnp.array([0, 1]))
    leaves, tree = jax.tree_util.tree_flatten(shapes)
    rng = np.random.default_rng(1)  # numpy: a jax.random call per leaf shape would compile each
    v = tree.unflatten([jnp.asarray(0.3 * rng.normal(size=s.shape), jnp.float32) for s in leaves])
    x4, levels = jnp.concatenate([x, x]), jnp.array([0, 0, 2, 2])
    sigma = model.sigmas[levels] * jnp.array([1.02, 0.98, 1.02, 0.98])  # near, not at, the levels
    score, direct = jax.jit(lambda v: (model.score_fn(v["params"])(x4, sigma), net.apply(v, x4, levels)))(v)
    assert score.shape == (4, 8, 8, 1) and score.dtype == jnp.float32
    np.testing.assert_allclose(score, direct, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(score[:2] - score[2:]).max()) > 1e-3  # each example on its own; levels differ
    with pytest.raises(GMJaxError, match="even H and W"):
        jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 7, 8, 1)), jnp.zeros((1,), jnp.int32))
    with pytest.raises(GMJaxError, match="no dropout"):
        NCSN(NCSNConfig(architecture="refinenet", dropout=0.1), digits.spec)
    points = digits.spec.__class__(name="pts", kind="points", shape=(2,), num_levels=None, num_classes=0)
    with pytest.raises(GMJaxError, match="image network"):
        NCSN(NCSNConfig(architecture="refinenet", dropout=0.0), points)


def test_the_recipe_network_is_the_official_size():
    from experiments.ncsn_cifar10.config import CONFIGS

    assert CONFIGS["paper"].num_params() == official_num_params(128, 10) == 30_117_635
