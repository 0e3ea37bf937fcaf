import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.models import MODELS, Glow, GlowConfig, MAF, MAFConfig, RealNVP, RealNVPConfig, SplineFlow, SplineFlowConfig
from gm_jax.train import fit
from gm_jax.train.config import TrainConfig


@pytest.fixture(scope="module")
def moons(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("toy2d/moons", data_dir)


def _batch(dataset, n=16):
    return {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(n)).items()}


TINY = {
    "realnvp": RealNVPConfig(num_scales=2, coupling_pairs=1, channels=8, num_blocks=0),
    "realnvp-points": RealNVPConfig(coupling_pairs=1, hidden=(16,)),
    "glow": GlowConfig(num_levels=2, steps_per_level=2, channels=8, num_blocks=0),
    "glow-additive": GlowConfig(num_levels=1, steps_per_level=1, channels=8, num_blocks=1, coupling="additive"),
    "maf": MAFConfig(num_layers=2, hidden=(16,)),
    "maf-spline": MAFConfig(num_layers=1, hidden=(16,), transformer="spline", num_bins=4),
    "spline_flow": SplineFlowConfig(num_layers=2, hidden=(16,), num_bins=4),
    "spline_flow-ar": SplineFlowConfig(num_layers=1, hidden=(16,), num_bins=4, kind="autoregressive"),
}
CLASSES = {"realnvp": RealNVP, "glow": Glow, "maf": MAF, "spline_flow": SplineFlow}


def _model(name, spec):
    return CLASSES[name.split("-")[0]](TINY[name], spec)


def test_flow_models_are_registered():
    for name, cls in CLASSES.items():
        assert MODELS[name][1] is cls and cls.has_log_prob


@pytest.mark.parametrize("name,data", [
    # ~20 s each on 2 cores; both image flows also train end to end in test_flow_model_fit_end_to_end
    pytest.param("realnvp", "digits", marks=pytest.mark.slow), pytest.param("glow", "digits", marks=pytest.mark.slow),
    ("maf", "digits"),
    ("realnvp-points", "moons"), ("maf", "moons"), ("maf-spline", "moons"), ("spline_flow", "moons"), ("spline_flow-ar", "moons"),
])
def test_flow_model_interface(name, data, request):
    dataset = request.getfixturevalue(data)
    spec = dataset.spec
    model = _model(name, spec)
    batch = _batch(dataset)
    v = model.init(jax.random.key(0), batch)
    # Perturb so the flow is not the identity it starts as.
    leaves, tree = jax.tree_util.tree_flatten(v["params"])
    keys = jax.random.split(jax.random.key(9, impl="rbg"), len(leaves))  # rbg: quick to compile on CPU
    v = {"params": jax.tree_util.tree_unflatten(tree, [p + 0.02 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]),
         "state": {}}
    loss, metrics, state = jax.jit(model.loss)(v, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and state == {}
    assert float(metrics["nll_nats"]) == pytest.approx(float(loss))
    assert float(metrics["bits_per_dim"]) == pytest.approx(float(loss) / (spec.num_dims * np.log(2)), rel=1e-5)
    x = batch[spec.data_key]
    lp = jax.jit(lambda v, x, k: model.log_prob(v, x, k, labels=None))(v, x, jax.random.key(1))
    assert lp.shape == (16,) and lp.dtype == jnp.float32 and bool(jnp.isfinite(lp).all())
    # The loss is the mean of -log_prob under the same key (the same dequantization noise).
    assert float(-lp.mean()) == pytest.approx(float(loss), rel=1e-5, abs=1e-4)
    s = jax.jit(lambda v, k: model.sample(v, k, 5, temperature=0.8))(v, jax.random.key(3))
    assert s.shape == (5,) + tuple(spec.shape)
    if spec.kind == "image":
        assert s.dtype == jnp.uint8 and int(s.max()) < spec.num_levels
        # A likelihood bound in discrete units cannot beat the entropy bound: log P(x) <= 0.
        assert float(lp.max()) < 0.0
    else:
        assert s.dtype == jnp.float32 and bool(jnp.isfinite(s).all())


def test_point_flow_log_prob_is_exact_and_key_free(moons):
    model = _model("spline_flow", moons.spec)
    batch = _batch(moons)
    v = model.init(jax.random.key(0), batch)
    a = model.log_prob(v, batch["point"], jax.random.key(1))
    b = model.log_prob(v, batch["point"], jax.random.key(2))
    np.testing.assert_array_equal(a, b)


def test_logistic_base_changes_only_the_base_term(moons):
    """Same flow, same parameters: the logistic-base log p(x) differs from the Gaussian-base one by exactly
    log Logistic(z) - log N(z) at z = f(x), and samples are the inverse flow of logistic draws."""
    from jax.scipy.stats import logistic, norm

    import dataclasses

    normal = _model("realnvp-points", moons.spec)
    logistic_model = RealNVP(dataclasses.replace(TINY["realnvp-points"], base="logistic"), moons.spec)
    batch = _batch(moons)
    v = normal.init(jax.random.key(0), batch)
    x = batch["point"]
    z, _ = normal.flow.forward(v["params"], x)
    shift = (logistic.logpdf(z) - norm.logpdf(z)).sum(-1)
    key = jax.random.key(1)
    np.testing.assert_allclose(logistic_model.log_prob(v, x, key), normal.log_prob(v, x, key) + shift,
                               rtol=1e-5, atol=1e-4)
    s = logistic_model.sample(v, jax.random.key(2), 4000)
    back, _ = logistic_model.flow.forward(v["params"], s)
    np.testing.assert_allclose(np.var(back, axis=0), np.pi**2 / 3, rtol=0.1)  # Var of a standard logistic
    with pytest.raises(GMJaxError, match="base"):
        RealNVPConfig(base="laplace")


def test_image_flow_sample_round_trips_through_its_latent(digits):
    model = _model("glow-additive", digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    x, _ = model._to_model_space(batch["image"], jax.random.key(1))
    z, _ = model.flow.forward(v["params"], x)
    assert z.shape == (16, 64)
    # Inverting the latent and quantizing recovers the data exactly (dequantization noise is within a bin).
    np.testing.assert_array_equal(model._from_model_space(model.flow.inverse(v["params"], z)[0]), batch["image"])


@pytest.mark.parametrize("name,data", [pytest.param("realnvp", "digits", marks=pytest.mark.slow),  # ~17 s; glow
                                       ("glow-additive", "digits"), ("maf", "moons"),      # covers image flows
                                       ("spline_flow", "moons")])
def test_flow_model_fit_end_to_end(name, data, request, tmp_path):
    dataset = request.getfixturevalue(data)
    model = _model(name, dataset.spec)
    cfg = TrainConfig(steps=4, batch_size=32, log_every=2, checkpoint_every=4, eval_max_examples=64,
                      num_samples=4)
    results = fit(model, dataset, cfg, str(tmp_path), progress=False)
    assert np.isfinite(results["test_nll_nats"]) and np.isfinite(results["test_bits_per_dim"])
    if dataset.spec.kind == "image":  # better than nothing, worse than the uniform bound's scale
        assert results["test_bits_per_dim"] < 10


def test_invalid_flow_configs_raise(digits, moons):
    with pytest.raises(GMJaxError, match="lower the number of levels"):
        Glow(GlowConfig(num_levels=3), digits.spec)  # 8x8 squeezed three times leaves 1x1
    with pytest.raises(GMJaxError, match="lower the number of levels"):
        RealNVP(RealNVPConfig(num_scales=4), digits.spec)
    with pytest.raises(GMJaxError, match="image flow"):
        Glow(GlowConfig(), moons.spec)
    with pytest.raises(GMJaxError, match="num_bins"):
        SplineFlow(SplineFlowConfig(num_bins=1), moons.spec)
    with pytest.raises(GMJaxError, match="logit_alpha"):
        MAF(MAFConfig(logit_alpha=0.5), moons.spec)
    with pytest.raises(GMJaxError, match="steps_per_level"):
        Glow(GlowConfig(steps_per_level=0), digits.spec)
    from gm_jax.models import override

    with pytest.raises(GMJaxError, match="choose one of"):
        override(SplineFlowConfig(), {"kind": "diagonal"})
