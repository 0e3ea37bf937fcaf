"""Every bijector against independent oracles: log-dets against slogdet of jax.jacobian, exact inverses,
identity at zero-initialised conditioners, and 2-D densities that integrate to one; hand-written pure-JAX
conditioners, a flax-free import, other base distributions and one-line errors for wrong conditioner outputs."""

import functools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gm_jax import flows as F
from gm_jax.errors import GMJaxError
from gm_jax.nets import MADE, flax_conditioner

TOL = 1e-5


def _key(seed):
    # rbg keys: XLA:CPU compiles threefry's hash slowly, once per random tensor of a Flax init.
    return jax.random.key(seed, impl="rbg")


def _perturb(params, key, scale):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    return jax.tree_util.tree_unflatten(tree, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def _slogdet(fn, x):
    def one(xi):
        out = fn(xi[None])[0]
        jac = jax.jacobian(lambda v: fn(v[None])[0].reshape(-1))(xi).reshape(out.size, xi.size)
        sign, logabs = jnp.linalg.slogdet(jac)
        return sign, logabs

    return jax.vmap(one)(x)


def _cases():
    vec_cond = lambda p: F.mlp_conditioner(p, hidden=(16,))
    img_cond = lambda p, blocks=0: F.conv_conditioner(p, channels=8, num_blocks=blocks)
    spline_p = F.spline_num_params(5)
    made = lambda p, **kw: flax_conditioner(MADE(num_params=p, hidden=(16, 16), zero_init_output=True,
                                                 activation=jnp.tanh, **kw))
    img42, img41, vec5 = (2, 4, 4, 2), (2, 4, 4, 1), (3, 5)
    return {
        # name: (bijector, input shape, input kind, param perturbation scale)
        "affine-checkerboard-0": (F.affine_coupling(img_cond(2, blocks=1), "checkerboard"), img42, "normal", 0.1),
        "affine-channel": (F.affine_coupling(img_cond(2), "channel", parity=1), img42, "normal", 0.1),
        "additive-checkerboard": (F.additive_coupling(img_cond(1), "checkerboard"), img42, "normal", 0.1),
        "affine-half": (F.affine_coupling(vec_cond(2), "half"), vec5, "normal", 0.3),
        "affine-alternating": (F.affine_coupling(vec_cond(2), "alternating", parity=1), vec5, "normal", 0.3),
        "additive-half": (F.additive_coupling(vec_cond(1), "half", parity=1), vec5, "normal", 0.3),
        "spline-half": (F.spline_coupling(vec_cond(spline_p), "half", num_bins=5, bound=3.0), vec5, "normal", 0.2),
        "spline-checkerboard": (F.spline_coupling(img_cond(spline_p), "checkerboard", parity=1, num_bins=5, bound=3.0),
                                img41, "normal", 0.05),
        "actnorm-image": (F.ActNorm(), img42, "normal", 0.3),
        "actnorm-vector": (F.ActNorm(), vec5, "normal", 0.3),
        "conv1x1": (F.Invertible1x1Conv(), (2, 3, 3, 3), "normal", 0.3),
        "conv1x1-vector": (F.Invertible1x1Conv(), vec5, "normal", 0.3),
        "squeeze": (F.Squeeze(), img42, "normal", 0.0),
        "reverse": (F.Reverse(), vec5, "normal", 0.0),
        "logit": (F.Logit(0.05), vec5, "unit", 0.0),
        "logit-image": (F.Logit(0.05), img41, "unit", 0.0),
        "planar": (F.Planar(init_scale=1.0), (4, 3), "normal", 0.5),
        "radial": (F.Radial(), (4, 3), "normal", 1.0),
        "maf-affine": (F.maf_layer(made(2)), vec5, "normal", 0.3),
        "maf-affine-ordering": (F.maf_layer(made(2, num_orderings=2, natural_first=False, order_seed=5)), vec5,
                                "normal", 0.3),
        "maf-spline": (F.autoregressive_spline_layer(made(spline_p), num_bins=5, bound=3.0), vec5, "normal", 0.2),
        "chain": (F.chain(F.ActNorm(), F.Invertible1x1Conv(), F.affine_coupling(vec_cond(2), "half"),
                          F.Reverse()), vec5, "normal", 0.2),
        "repeat": (F.repeat(F.chain(F.ActNorm(), F.affine_coupling(vec_cond(2), "half"),
                                    F.affine_coupling(vec_cond(2), "half", parity=1)), 3), vec5, "normal", 0.1),
        "multiscale": (F.MultiScale((
            F.chain(F.affine_coupling(img_cond(2), "checkerboard"), F.Squeeze(), F.ActNorm(),
                    F.additive_coupling(img_cond(1), "channel", parity=1)),
            F.chain(F.Squeeze(), F.Invertible1x1Conv(), F.affine_coupling(img_cond(2), "channel")),
        ), event_shape=(4, 4, 1)), img41, "normal", 0.05),
    }


CASES = _cases()


def _round_trip_report(bij, params, x, z):
    """Everything the oracles compare, in one compiled function: forward at x, inverse at a fresh z,
    each with the slogdet of its Jacobian and the other direction applied to its output."""
    z_x, ld = bij.forward(params, x)
    x_back, ld_back = bij.inverse(params, z_x)
    x_z, ild = bij.inverse(params, z)
    z_back, ild_back = bij.forward(params, x_z)
    jac_ld = _slogdet(lambda v: bij.forward(params, v)[0], x)[1]
    jac_ild = _slogdet(lambda v: bij.inverse(params, v)[0], z)[1]
    return dict(z_x=z_x, ld=ld, x_back=x_back, ld_back=ld_back, jac_ld=jac_ld,
                x_z=x_z, ild=ild, z_back=z_back, ild_back=ild_back, jac_ild=jac_ild)


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_dets_match_jacobians_and_inverses_invert(name):
    bij, shape, kind, scale = CASES[name]
    kx, ki, kp, kz = jax.random.split(_key(zlib.crc32(name.encode())), 4)
    x = jax.random.uniform(kx, shape, minval=0.02, maxval=0.98) if kind == "unit" else jax.random.normal(kx, shape)
    # jit everything: eager op-by-op dispatch of Flax inits costs far more than one compilation.
    params = jax.jit(lambda k, x: _perturb(bij.init(k, x), kp, scale))(ki, x)
    z0, _ = jax.jit(bij.forward)(params, x)
    z = z0 + 0.1 * jax.random.normal(kz, z0.shape)  # a fresh latent near the image of the data
    r = jax.jit(functools.partial(_round_trip_report, bij))(params, x, z)
    assert r["ld"].shape == (shape[0],) and r["ld"].dtype == jnp.float32
    # forward: log_det = log|det dz/dx|, inverse(forward(x)) = x, log-dets cancel
    np.testing.assert_allclose(r["ld"], r["jac_ld"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r["x_back"], x, atol=TOL, rtol=0)
    np.testing.assert_allclose(r["ld"] + r["ld_back"], 0.0, atol=1e-4)
    # inverse: log_det = log|det dx/dz|, forward(inverse(z)) = z, log-dets cancel
    np.testing.assert_allclose(r["ild"], r["jac_ild"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r["z_back"], z, atol=TOL, rtol=0)
    np.testing.assert_allclose(r["ild"] + r["ild_back"], 0.0, atol=1e-4)
    # the params are not a trivial identity
    if name not in ("squeeze", "reverse", "logit", "logit-image", "additive-half", "additive-checkerboard"):
        assert float(jnp.abs(r["ld"]).max()) > 1e-3, "params too close to a volume-preserving identity"
    if name not in ("squeeze", "reverse"):
        assert float(jnp.abs(r["z_x"] - x.reshape(r["z_x"].shape)).max()) > 1e-3


@pytest.mark.parametrize("name", ["affine-half", "additive-checkerboard", "spline-half", "spline-checkerboard",
                                  "maf-affine", "maf-spline"])
def test_zero_initialised_conditioners_give_the_identity(name):
    bij, shape, _, _ = CASES[name]
    x = jax.random.normal(_key(0), shape)
    z, log_det = bij.forward(jax.jit(bij.init)(_key(1), x), x)
    np.testing.assert_allclose(z, x, atol=1e-6)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-5)


def test_actnorm_data_dependent_init_whitens_its_input():
    x = 3.0 + 2.0 * jax.random.normal(_key(0), (64, 4, 4, 3)) * jnp.array([1.0, 0.5, 4.0])
    bij = F.ActNorm()
    z, _ = bij.forward(bij.init(_key(1), x), x)
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, atol=1e-4)
    # Inside a chain and a repeat the init sees the previous layers' output, not the raw data.
    chained = F.chain(F.Invertible1x1Conv(), F.ActNorm())
    p = chained.init(_key(2), x)
    np.testing.assert_allclose(chained.forward(p, x)[0].std((0, 1, 2)), 1.0, atol=1e-4)
    stacked = F.repeat(F.chain(F.Invertible1x1Conv(), F.ActNorm()), 3)
    p = stacked.init(_key(3), x)
    assert p["layer_1"]["bias"].shape == (3, 3)
    np.testing.assert_allclose(stacked.forward(p, x)[0].std((0, 1, 2)), 1.0, atol=1e-4)


def test_invertible_1x1_conv_starts_orthogonal_and_copies_differ():
    x = jnp.ones((2, 2, 2, 4))
    bij = F.Invertible1x1Conv()
    w = bij.weight(bij.init(_key(0), x))
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-5)
    stacked = F.repeat(bij, 2).init(_key(0), x)
    w0, w1 = (bij.weight(jax.tree_util.tree_map(lambda p: p[i], stacked)) for i in range(2))
    assert float(jnp.abs(w0 - w1).max()) > 1e-2


def test_squeeze_layout_and_multiscale_latent_shape():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    z, _ = F.Squeeze().forward({}, x)
    assert z.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(z[0, 0, 0], [0.0, 1.0, 4.0, 5.0])  # the top-left 2x2 block
    bij = CASES["multiscale"][0]
    xs = jax.random.normal(_key(0), (3, 4, 4, 1))
    z = jax.eval_shape(lambda k, x: bij.forward(bij.init(k, x), x)[0], _key(1), xs)
    assert z.shape == (3, 16)


def test_rational_quadratic_spline_matches_its_closed_form_pieces():
    k = 4
    w, h, d = (jax.random.normal(kk, (k if i < 2 else k - 1,)) for i, kk in enumerate(jax.random.split(_key(0), 3)))
    x = jnp.linspace(-3.5, 3.5, 57)
    b = lambda a: jnp.broadcast_to(a, x.shape + a.shape)
    y, ld = jax.jit(F.rational_quadratic_spline, static_argnums=4)(x, b(w), b(h), b(d), 3.0)
    # Identity outside the bound; monotone; knots map onto knots; derivative by autodiff.
    outside = jnp.abs(x) >= 3.0
    np.testing.assert_array_equal(y[outside], x[outside])
    assert bool(jnp.all(jnp.diff(y) > 0))
    grad = jax.jit(jax.vmap(jax.grad(lambda v: F.rational_quadratic_spline(v, w, h, d, 3.0)[0])))(x)
    np.testing.assert_allclose(ld, jnp.log(grad), atol=1e-5)
    ends = F.rational_quadratic_spline(jnp.array([-3.0, 3.0]), b(w)[:2], b(h)[:2], b(d)[:2], 3.0)[0]
    np.testing.assert_allclose(ends, [-3.0, 3.0], atol=1e-6)


def test_planar_and_radial_inverse_solver_is_accurate_far_from_the_identity():
    for bij, scale in ((F.Planar(init_scale=1.0), 3.0), (F.Radial(), 3.0)):
        x = 2.0 * jax.random.normal(_key(0), (256, 3))
        params = _perturb(bij.init(_key(1), x), _key(2), scale)
        z, log_det = bij.forward(params, x)
        x_back, _ = bij.inverse(params, z)
        # float32 rounding of z is amplified by the local contraction exp(-log_det) (here up to ~600x),
        # so the solver is held to what the conditioning allows.
        allowed = 2e-6 * (1.0 + jnp.abs(z).max(-1)) * jnp.maximum(1.0, jnp.exp(-log_det))
        assert bool(jnp.all(jnp.abs(x_back - x).max(-1) <= allowed)), type(bij).__name__
        z_back, _ = bij.forward(params, x_back)
        np.testing.assert_allclose(z_back, z, atol=1e-5, rtol=1e-5)


def _grid_mass(log_prob, lim, n=400):
    g = jnp.linspace(-lim, lim, n)
    xx, yy = jnp.meshgrid(g, g)
    pts = jnp.stack([xx.ravel(), yy.ravel()], -1)
    dens = jnp.exp(jax.jit(log_prob)(pts)).reshape(n, n)
    return float(jnp.trapezoid(jnp.trapezoid(dens, g, axis=1), g))


def _toy_flow(full=True):
    cond = F.mlp_conditioner(F.spline_num_params(6), hidden=(32,))
    splines = (F.ActNorm(), F.Invertible1x1Conv(), F.spline_coupling(cond, "half", num_bins=6, bound=3.0),
               F.spline_coupling(cond, "half", parity=1, num_bins=6, bound=3.0))
    if not full:
        return F.chain(*splines)
    made = flax_conditioner(MADE(num_params=2, hidden=(16,), zero_init_output=True))
    return F.chain(*splines, F.Planar(), F.Radial(), F.maf_layer(made))


def test_random_2d_flow_density_integrates_to_one():
    flow = _toy_flow()
    x = jax.random.normal(_key(0), (64, 2))
    # Perturbed enough to be far from a Gaussian (std ~0.8 and ~1.2 per axis), smooth enough for a 400 grid.
    params = jax.jit(lambda k, x: _perturb(flow.init(k, x), _key(2), 0.1))(_key(1), x)
    mass = _grid_mass(lambda p: F.flow_log_prob(flow, params, p), 8.0)
    assert abs(mass - 1.0) < 1e-2, mass


def test_trained_2d_flow_density_integrates_to_one():
    from gm_jax.data import toy2d

    data = jnp.asarray(toy2d.sample("eight_gaussians", 2048, seed=0), jnp.float32)
    flow = _toy_flow(full=False)
    params = jax.jit(flow.init)(_key(1), data[:512])
    opt = optax.adam(3e-3)

    @jax.jit
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(lambda p: -F.flow_log_prob(flow, p, batch).mean())(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    state = opt.init(params)
    first = None
    for i in range(150):
        params, state, loss = step(params, state, data[(i % 8) * 256:(i % 8 + 1) * 256])
        first = float(loss) if first is None else first
    assert float(loss) < first - 0.3, (first, float(loss))  # it did learn something
    mass = _grid_mass(lambda p: F.flow_log_prob(flow, params, p), 6.0)
    assert abs(mass - 1.0) < 1e-2, mass


def test_bad_configurations_raise():
    with pytest.raises(GMJaxError, match="at least 2 channels"):
        F.coupling_mask("channel", (4, 4, 1))
    with pytest.raises(GMJaxError, match="unknown coupling mask"):
        F.coupling_mask("diagonal", (4,))
    with pytest.raises(GMJaxError, match="for images"):
        F.coupling_mask("checkerboard", (4,))
    with pytest.raises(GMJaxError,
                       match=r"MaskedAutoregressive.init: .* shape \(2, 3, 2\), got \(2, 3, 3\); Affine needs 2"):
        F.maf_layer(flax_conditioner(MADE(num_params=3))).init(_key(0), jnp.ones((2, 3)))
    with pytest.raises(GMJaxError, match="Spline needs 5"):
        F.spline_coupling(F.mlp_conditioner(3), "half", num_bins=2).init(_key(0), jnp.ones((2, 4)))
    with pytest.raises(GMJaxError, match="flax_conditioner"):
        F.affine_coupling(MADE(num_params=2), "half")  # a bare Flax module is not a Conditioner
    with pytest.raises(GMJaxError, match="conv_conditioner"):
        F.affine_coupling(F.mlp_conditioner(2), "checkerboard").init(_key(0), jnp.ones((2, 4, 4, 2)))


# ------------------------------------------------ any network as a conditioner, any base distribution
def _hand_mlp(num_params, hidden=8, out_shape=None):
    """A pure-JAX conditioner, params a dict of arrays: no Flax anywhere. ``out_shape`` plants a wrong output."""

    def init(key, x):
        d = x.shape[-1]
        k1, k2 = jax.random.split(key)
        return {"w1": jax.random.normal(k1, (d, hidden)) / np.sqrt(d), "b1": jnp.zeros(hidden),
                "w2": 0.5 * jax.random.normal(k2, (hidden, d * num_params)) / np.sqrt(hidden),
                "b2": jnp.zeros(d * num_params)}

    def apply(params, x):
        h = jnp.tanh(x @ params["w1"] + params["b1"])
        out = h @ params["w2"] + params["b2"]
        return out.reshape(out_shape(x) if out_shape else x.shape + (num_params,))

    return F.Conditioner(init, apply)


def _hand_made(num_params, hidden=12):
    """A one-hidden-layer MADE written by hand (Germain et al. 2015): input j has degree j, hidden units
    degrees in [0, D-2], output i sees hidden units of degree < i, so raw[:, i] depends on x[:, :i] only."""

    def masks(d):
        degrees = np.arange(hidden) % max(d - 1, 1)
        first = (np.arange(d)[:, None] <= degrees[None, :]).astype(np.float32)
        out = (degrees[:, None] < np.arange(d)[None, :]).astype(np.float32)
        return first, np.repeat(out, num_params, axis=1)  # column i * P + p belongs to input i

    base = _hand_mlp(num_params, hidden)

    def apply(params, x):
        first, out = masks(x.shape[-1])
        h = jnp.tanh(x @ (params["w1"] * first) + params["b1"])
        return (h @ (params["w2"] * out) + params["b2"]).reshape(x.shape + (num_params,))

    return F.Conditioner(base.init, apply)


HAND = {
    "coupling-affine": F.affine_coupling(_hand_mlp(2), "half"),
    "coupling-spline": F.spline_coupling(_hand_mlp(F.spline_num_params(4)), "alternating", parity=1,
                                         num_bins=4, bound=3.0),
    "maf-affine": F.maf_layer(_hand_made(2)),
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_written_pure_jax_conditioners_work(name):
    bij = HAND[name]
    x = jax.random.normal(_key(0), (3, 5))
    params = bij.init(_key(1), x)
    assert isinstance(params, dict) and all(isinstance(v, jax.Array) for v in params.values())
    z = bij.forward(params, x)[0] + 0.1 * jax.random.normal(_key(2), x.shape)
    r = jax.jit(functools.partial(_round_trip_report, bij))(params, x, z)
    np.testing.assert_allclose(r["ld"], r["jac_ld"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r["x_back"], x, atol=TOL, rtol=0)
    np.testing.assert_allclose(r["ild"], r["jac_ild"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r["z_back"], z, atol=TOL, rtol=0)
    assert float(jnp.abs(r["ld"]).max()) > 1e-2  # not the identity


def test_importing_flows_does_not_import_flax():
    import subprocess
    import sys

    code = ("import sys, gm_jax.flows, gm_jax.samplers.flow, gm_jax.distributions; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'flax'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_default_conditioners_compare_by_value():
    assert F.mlp_conditioner(2, hidden=[8]) == F.mlp_conditioner(2, hidden=(8,))
    assert hash(F.conv_conditioner(2, channels=4)) == hash(F.conv_conditioner(2, channels=4))
    assert F.mlp_conditioner(2, hidden=(8,)) != F.mlp_conditioner(1, hidden=(8,))
    assert F.affine_coupling(F.mlp_conditioner(2), "half") == F.affine_coupling(F.mlp_conditioner(2), "half")


def test_flow_log_prob_with_another_base_is_the_change_of_variables():
    from jax.scipy.stats import logistic, norm

    from gm_jax.samplers import reverse_flow_sample

    bij = F.ActNorm()  # z = (x + b) exp(s): log p(x) = log p_base(z) + sum(s), in closed form
    params = {"bias": jnp.array([0.5, -1.0, 0.2]), "log_scale": jnp.array([0.3, -0.7, 1.1])}
    x = jax.random.normal(_key(0), (4, 3))
    z = (x + params["bias"]) * jnp.exp(params["log_scale"])
    bases = {"logistic": (lambda z: logistic.logpdf(z).sum(-1), logistic.logpdf),
             "normal-scale-2": (lambda z: norm.logpdf(z, scale=2.0).sum(-1), lambda z: norm.logpdf(z, scale=2.0))}
    for name, (base_log_prob, elementwise) in bases.items():
        expected = (elementwise(z) + params["log_scale"]).sum(-1)
        np.testing.assert_allclose(F.flow_log_prob(bij, params, x, base_log_prob=base_log_prob), expected,
                                   rtol=1e-5, err_msg=name)
    default = (norm.logpdf(z) + params["log_scale"]).sum(-1)
    np.testing.assert_allclose(F.flow_log_prob(bij, params, x), default, rtol=1e-5)
    # A flow with a conditioner: base log-density plus the log|det| of jax.jacobian.
    flow = F.chain(F.ActNorm(), HAND["coupling-affine"])
    xs = jax.random.normal(_key(1), (3, 5))
    p = jax.jit(flow.init)(_key(2), xs)
    base = lambda z: logistic.logpdf(z).sum(-1)
    oracle = jax.jit(lambda p, xs: base(flow.forward(p, xs)[0]) + _slogdet(lambda v: flow.forward(p, v)[0], xs)[1])
    log_prob = jax.jit(functools.partial(F.flow_log_prob, flow, base_log_prob=base))
    np.testing.assert_allclose(log_prob(p, xs), oracle(p, xs), rtol=1e-5, atol=1e-5)
    with pytest.raises(GMJaxError, match=r"flow_log_prob: base_log_prob\(z\) must return shape \(4,\), got \(4, 3\)"):
        F.flow_log_prob(bij, params, x, base_log_prob=logistic.logpdf)
    # Sampling draws the same base: inverse_fn(temperature * base_sample(key, shape)).
    inverse = lambda z: bij.inverse(params, z)[0]
    s = reverse_flow_sample(inverse, _key(3), (6, 3), temperature=0.5, base_sample=jax.random.logistic)
    np.testing.assert_allclose(s, inverse(0.5 * jax.random.logistic(_key(3), (6, 3))), rtol=1e-6)
    with pytest.raises(GMJaxError, match=r"reverse_flow_sample: base_sample\(key, shape\) must return shape \(6, 3\)"):
        reverse_flow_sample(inverse, _key(3), (6, 3), base_sample=lambda k, s: jax.random.logistic(k, (6,)))


def test_wrong_conditioner_output_shape_names_the_function():
    x = jax.random.normal(_key(0), (3, 5))
    coupling = F.affine_coupling(_hand_mlp(1), "half")
    params = _hand_mlp(1).init(_key(1), x)
    expected = r"must return shape \(3, 5, 2\), got \(3, 5, 1\); Affine needs 2 parameters"
    with pytest.raises(GMJaxError, match=r"^Coupling.init: conditioner.apply\(params, x\) " + expected):
        coupling.init(_key(1), x)
    with pytest.raises(GMJaxError, match=r"^Coupling.forward: .*" + expected):
        jax.jit(coupling.forward)(params, x)
    with pytest.raises(GMJaxError, match=r"^Coupling.inverse: .*" + expected):
        coupling.inverse(params, x)
    maf = F.maf_layer(_hand_mlp(2, out_shape=lambda x: (x.shape[0], x.shape[1] * 2)))
    with pytest.raises(GMJaxError, match=r"^MaskedAutoregressive.forward: .* \(3, 5, 2\), got \(3, 10\)"):
        maf.forward(_hand_mlp(2).init(_key(1), x), x)
    tupled = F.Conditioner(_hand_mlp(2).init, lambda p, x: (x, x))
    with pytest.raises(GMJaxError, match="MaskedAutoregressive.inverse: .* one array of shape"):
        F.maf_layer(tupled).inverse(tupled.init(_key(1), x), x)


def test_a_coupling_whose_conditioner_emits_the_transformed_half_only_equals_the_full_form():
    """raw [B, n, P] for the n transformed elements gives the coupling whose full-form raw [B, D, P] holds
    those rows (and anything elsewhere); other shapes name both accepted ones. Repeat unrolled equals the scan."""
    x = jax.random.normal(_key(0), (4, 5))
    p = F.spline_num_params(4)
    for mask, parity in (("half", 0), ("alternating", 1)):
        idx = F.transformed_elements(mask, (5,), parity=parity)
        compact = F.mlp_conditioner(p, hidden=(8,), outputs=len(idx))
        params = compact.init(_key(1), x)
        params["out"] = {"w": 0.3 * jax.random.normal(_key(2), params["out"]["w"].shape), "b": params["out"]["b"]}
        # the full form: the same rows at the transformed elements, junk where the mask keeps x
        full = F.Conditioner(compact.init, lambda q, xm: jnp.full(xm.shape + (p,), 7.0).at[:, idx].set(
            compact.apply(q, xm)))
        a, b = (F.spline_coupling(c, mask, parity=parity, num_bins=4) for c in (compact, full))
        both = jax.jit(lambda q, x: [(f.forward(q, x), f.inverse(q, x)) for f in (a, b)])(params, x)
        for got, want in zip(*map(jax.tree_util.tree_leaves, both)):
            np.testing.assert_allclose(got, want, atol=1e-5)
        assert float(jnp.abs(both[0][0][1]).max()) > 1e-2  # not the identity
    wrong = F.spline_coupling(F.mlp_conditioner(p, hidden=(8,), outputs=4), "half", num_bins=4)
    with pytest.raises(GMJaxError, match=r"must return shape \(4, 5, 11\), got \(4, 4, 11\); .* or \(4, 3, 11\) "
                                         r"for the 3 transformed elements only"):
        wrong.init(_key(1), x)
    block = F.chain(F.affine_coupling(F.mlp_conditioner(2, hidden=(8,), outputs=3), "half"),
                    F.affine_coupling(F.mlp_conditioner(2, hidden=(8,), outputs=2), "half", parity=1))
    rolled, unrolled = F.repeat(block, 3), F.repeat(block, 3, unroll=True)
    params = jax.jit(rolled.init)(_key(3), x)
    params = jax.tree_util.tree_map(lambda w: w + 0.1 * jax.random.normal(_key(4), w.shape), params)
    both = jax.jit(lambda q, x: [(f.forward(q, x), f.inverse(q, x)) for f in (unrolled, rolled)])(params, x)
    for got, want in zip(*map(jax.tree_util.tree_leaves, both)):
        np.testing.assert_allclose(got, want, atol=1e-5)
