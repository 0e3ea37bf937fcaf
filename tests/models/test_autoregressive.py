"""MADE and PixelCNN models: interface, exact normalization over every image of tiny specs, samples that
follow log_prob, conditioning, training end to end, bad configs."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.data import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.models import MODELS, MADEConfig, MADEModel, PixelCNN, PixelCNNConfig

TINY_PIXELCNN = dict(features=4, num_layers=2, head_features=16, num_mixtures=2)


def _batch(dataset, n=8):
    return {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(n)).items()}


def _all_images(spec):
    """Every image of a tiny spec: uint8 [K^D, *shape]."""
    values = np.array(list(itertools.product(range(spec.num_levels), repeat=spec.num_dims)), np.uint8)
    return jnp.asarray(values.reshape((-1,) + spec.shape))


def _init(model, x, labels=None):
    batch = {"image": x[:1]} if labels is None else {"image": x[:1], "label": labels[:1]}
    return jax.jit(model.init)(jax.random.key(0), batch)


# --------------------------------------------------------------------------------------- interface on digits
@pytest.mark.parametrize("name,cfg", [  # the categorical PixelCNN: test_log_prob_sums_to_one... and (slow) fit
    # ~20 s and ~8 s: the conditional DMOL PixelCNN and the Bernoulli MADE are also checked exactly by
    # test_log_prob_sums_to_one_over_every_image_and_samples_follow_it
    pytest.param("pixelcnn", PixelCNNConfig(**TINY_PIXELCNN, likelihood="dmol", conditional=True),
                 marks=pytest.mark.slow),
    ("made", MADEConfig(hidden=(32,), num_orderings=1)),
    pytest.param("made", MADEConfig(hidden=(32,), likelihood="bernoulli", num_orderings=3, conditional=True),
                 marks=pytest.mark.slow),
], ids=["pixelcnn-dmol-conditional", "made-categorical", "made-bernoulli-orderings"])
def test_interface_shapes_finite_values_and_log_prob_consistent_with_loss(digits, name, cfg):
    model = MODELS[name][1](cfg, digits.spec)
    batch = _batch(digits)
    v = jax.jit(model.init)(jax.random.key(0), batch)

    @jax.jit
    def run(v, batch, key):
        loss, metrics, state = model.loss(v, batch, key)
        return loss, metrics, state, model.log_prob(v, batch["image"], key, labels=batch["label"])

    sample = jax.jit(lambda v, key, t: model.sample(v, key, 3, temperature=t))
    loss, metrics, state, lp = run(v, batch, jax.random.key(1))
    samples, cold = sample(v, jax.random.key(2), 1.0), sample(v, jax.random.key(2), 0.0)
    assert np.isfinite(float(loss)) and state == {}
    assert float(metrics["nll_nats"]) == pytest.approx(float(metrics["bits_per_dim"]) * 64 * np.log(2), rel=1e-5)
    assert lp.shape == (8,) and bool(jnp.isfinite(lp).all())
    if cfg.likelihood != "bernoulli":  # deterministic: the loss is exactly the mean NLL
        assert float(-lp.mean()) == pytest.approx(float(metrics["nll_nats"]), rel=1e-5)
    for s in (samples, cold):
        assert s.shape == (3, 8, 8, 1) and s.dtype == jnp.uint8 and int(s.max()) <= 16
    if cfg.likelihood == "bernoulli":
        assert set(np.unique(np.asarray(samples))) <= {0, 16}
    if cfg.conditional:
        other = model.log_prob(v, batch["image"], jax.random.key(1), labels=(batch["label"] + 3) % 10)
        assert float(jnp.abs(other - lp).max()) > 1e-4
        with pytest.raises(GMJaxError, match="conditional: batches .* need labels"):
            model.loss(v, {"image": batch["image"]}, jax.random.key(0))


# ------------------------------------------------------------------------- exact normalization and sampling
TINY_GRAY = DataSpec("tiny_gray", "image", (2, 2, 1), 3, 0)  # 81 images
TINY_RGB = DataSpec("tiny_rgb", "image", (1, 2, 3), 2, 4)  # 64 images, 3 channels, 4 classes


def _assert_frequencies_match(samples, log_probs, num_levels):
    """Chi-square of sampled images against exp(log_prob) of every image (cells expecting < 5 pooled)."""
    p = np.exp(np.asarray(log_probs, np.float64))
    flat = np.asarray(samples).reshape(len(samples), -1).astype(np.int64)
    idx = flat @ (num_levels ** np.arange(flat.shape[1] - 1, -1, -1))  # the order of _all_images
    counts, n = np.bincount(idx, minlength=len(p)), len(flat)
    keep = p * n >= 5
    obs, exp = np.append(counts[keep], counts[~keep].sum()), np.append(p[keep] * n, p[~keep].sum() * n)
    chi2, dof = float(((obs - exp) ** 2 / np.maximum(exp, 1e-12)).sum()), len(obs) - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof), (chi2, dof)


@pytest.mark.parametrize("spec,make,check_samples", [
    pytest.param(TINY_GRAY, lambda s: PixelCNN(PixelCNNConfig(**TINY_PIXELCNN), s), False,
                 marks=pytest.mark.slow),  # C = 1 goes through the rgb code path, tested next (~10 s)
    (TINY_RGB, lambda s: PixelCNN(PixelCNNConfig(**TINY_PIXELCNN, conditional=True), s), True),
    (TINY_RGB, lambda s: PixelCNN(PixelCNNConfig(**TINY_PIXELCNN, likelihood="dmol", conditional=True), s), True),
    (TINY_GRAY, lambda s: MADEModel(MADEConfig(hidden=(16, 16), num_orderings=2, order_seed=1), s), True),
    (DataSpec("tiny_binary", "image", (2, 2, 1), 2, 0),
     lambda s: MADEModel(MADEConfig(hidden=(16,), likelihood="bernoulli", num_orderings=1), s), False),
], ids=["pixelcnn-cat-gray", "pixelcnn-cat-rgb", "pixelcnn-dmol-rgb", "made-cat-ensemble", "made-bernoulli"])
def test_log_prob_sums_to_one_over_every_image_and_samples_follow_it(spec, make, check_samples):
    """Exact normalization of the model's joint, and samples (network + ancestral sampler + per-position
    draws) whose frequencies match exp(log_prob)."""
    model = make(spec)
    images = _all_images(spec)
    labels = jnp.full(len(images), 3) if spec.num_classes else None
    v = _init(model, images, labels)
    v = jax.tree_util.tree_map(lambda p: 3.0 * p, v)  # sharper conditionals than at init: a stricter test
    lp = jax.jit(lambda v, x: model.log_prob(v, x, jax.random.key(0), labels=labels))(v, images)
    assert float(jax.nn.logsumexp(lp)) == pytest.approx(0.0, abs=1e-4)
    if not check_samples:
        return
    n = 20_000
    kw = {} if labels is None else {"labels": jnp.full(n, 3)}
    if isinstance(model, MADEModel):  # log_prob ensembles both orderings; a sample comes from one: p_1 directly
        lp = model._log_prob(v["params"], *model._inputs(images, None), None, 1)
        assert float(jax.nn.logsumexp(lp)) == pytest.approx(0.0, abs=1e-4)
        kw["ordering"] = 1
    samples = jax.jit(lambda v, k: model.sample(v, k, n, **kw))(v, jax.random.key(5))
    _assert_frequencies_match(samples, lp, spec.num_levels)


# ------------------------------------------------------------------------------------------ MADE on points
def test_made_mog_density_integrates_to_one(data_dir):
    from gm_jax.data import load_dataset

    d = load_dataset("toy2d/moons", data_dir)
    model = MADEModel(MADEConfig(hidden=(32, 32), num_components=3, num_orderings=2), d.spec)
    assert model.likelihood == "mog"
    v = jax.jit(model.init)(jax.random.key(0), _batch(d))
    v = jax.tree_util.tree_map(lambda p: 0.5 * p, v)  # keeps the density's mass well inside the grid
    g = np.linspace(-10, 10, 401)
    grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), jnp.float32)
    lp = jax.jit(lambda v, x: model.log_prob(v, x, None))(v, grid)
    integral = float(jnp.exp(lp).sum()) * (g[1] - g[0]) ** 2
    assert integral == pytest.approx(1.0, abs=1e-2)
    samples = jax.jit(lambda v, k: model.sample(v, k, 5, temperature=0.5))(v, jax.random.key(1))
    assert samples.shape == (5, 2) and samples.dtype == jnp.float32 and bool(jnp.isfinite(samples).all())


@pytest.mark.slow
def test_made_mog_fits_moons(data_dir, tmp_path):
    from gm_jax.data import load_dataset, toy2d
    from gm_jax.train import TrainConfig, fit

    d = load_dataset("toy2d/moons", data_dir)
    model = MADEModel(MADEConfig(hidden=(32, 32), num_components=3, num_orderings=2), d.spec)
    results = fit(model, d, TrainConfig(steps=150, batch_size=128, lr=3e-3, log_every=50, checkpoint_every=150,
                                        num_samples=16, eval_max_examples=1000), str(tmp_path / "moons"),
                  progress=False)
    # A cross-entropy is above the data's entropy (2.39 nats); 150 steps already get within ~1 nat of it.
    entropy, _ = toy2d.entropy("moons")
    assert entropy - 0.1 < results["test_nll_nats"] < entropy + 1.2, (results["test_nll_nats"], entropy)


# ----------------------------------------------------------------------------------------- training end to end
@pytest.mark.parametrize("name,cfg", [
    pytest.param("pixelcnn", PixelCNNConfig(**TINY_PIXELCNN), marks=pytest.mark.slow),  # ~28 s on 2 cores
    ("made", MADEConfig(hidden=(64,))),
])
def test_fit_a_few_steps_on_digits(digits, tmp_path, name, cfg):
    from gm_jax.train import TrainConfig, fit

    model = MODELS[name][1](cfg, digits.spec)
    results = fit(model, digits, TrainConfig(steps=30, batch_size=32, lr=3e-3, log_every=10, checkpoint_every=30,
                                             num_samples=2, eval_max_examples=64), str(tmp_path), progress=False)
    # Uniform over 17 levels is 64 ln 17 = 181.3 nats; 30 steps already beat it by a margin.
    assert np.isfinite(results["test_nll_nats"]) and results["test_nll_nats"] < 170
    assert (tmp_path / "samples.png").exists()


def test_bad_configs_are_rejected(digits):
    points = DataSpec("toy2d/moons", "points", (2,), None, 0)
    unlabeled = DataSpec("x", "image", (4, 4, 1), 5, 0)
    cases = [
        (lambda: PixelCNN(PixelCNNConfig(kernel_size=4), digits.spec), "kernel_size must be odd"),
        (lambda: PixelCNN(PixelCNNConfig(num_layers=0), digits.spec), "num_layers must be >= 1"),
        (lambda: PixelCNN(PixelCNNConfig(), points), "pixelcnn models images"),
        (lambda: PixelCNN(PixelCNNConfig(conditional=True), unlabeled), "conditional=true needs labels"),
        (lambda: MADEModel(MADEConfig(likelihood="categorical"), points), "likelihood=mog"),
        (lambda: MADEModel(MADEConfig(likelihood="mog"), digits.spec), "categorical or bernoulli"),
        (lambda: MADEModel(MADEConfig(num_orderings=0), digits.spec), "num_orderings must be >= 1"),
        (lambda: MADEModel(MADEConfig(hidden=(0,)), digits.spec), "hidden widths"),
    ]
    cases.append((lambda: MADEModel(MADEConfig(num_orderings=2), digits.spec).sample(None, jax.random.key(0), 1,
                                                                                     ordering=2), "ordering must be"))
    for make, message in cases:
        with pytest.raises(GMJaxError, match=message):
            make()
