"""The score_sde model: the interface on toy2d points and digits, and DSM training recovering the true score."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.models import MODELS, ScoreSDE, ScoreSDEConfig
from gm_jax.processes.sde import VPSDE
from gm_jax.train import fit
from gm_jax.train.config import TrainConfig

POINTS = ScoreSDEConfig(hidden=(16,), embed_dim=8, sample_steps=4, ode_steps=4)
IMAGES = ScoreSDEConfig(channels=8, channel_mult=(1,), num_res_blocks=1, attention_resolutions=(), dropout=0.1,
                        sample_steps=2, ode_steps=2)
TINY_TRAIN = TrainConfig(steps=4, batch_size=32, log_every=2, checkpoint_every=4, eval_max_examples=32, num_samples=4)


@pytest.fixture(scope="module")
def moons(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("toy2d/moons", data_dir)


def _batch(dataset, n=16):
    return {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(n)).items()}


def test_score_sde_is_registered_and_validates():
    assert MODELS["score_sde"] == (ScoreSDEConfig, ScoreSDE) and ScoreSDE.has_log_prob
    spec = DataSpec("p", "points", (2,), None, 0)
    for bad, match in [(dict(sde="vq"), "choose one of ve, vp, subvp"),
                       (dict(sde="ve", sigma_min=100.0), "sigma_min < sigma_max"),
                       (dict(sampler="ddim"), "sampler"), (dict(sample_eps=0.0), "sample_eps"),
                       (dict(hidden=(0,)), "hidden"), (dict(trace="exact_ish"), "trace")]:
        with pytest.raises(GMJaxError, match=match):
            ScoreSDE(ScoreSDEConfig(**bad), spec)
    with pytest.raises(GMJaxError, match="use fewer levels"):
        ScoreSDE(ScoreSDEConfig(channel_mult=(1, 2, 2, 2)), DataSpec("d", "image", (12, 12, 1), 17, 10))
    with pytest.raises(GMJaxError, match="images or points"):
        ScoreSDE(ScoreSDEConfig(), DataSpec("t", "text", (8,), 30, 0))


def test_score_sde_points_fit_and_every_sampler(moons, tmp_path):
    model = ScoreSDE(POINTS, moons.spec)
    results = fit(model, moons, TINY_TRAIN, str(tmp_path), progress=False)
    assert np.isfinite(results["test_nll_nats"])
    assert (tmp_path / "samples.png").exists()  # fit drew samples with the default sampler, pc
    v = model.init(jax.random.key(0), _batch(moons))
    for sampler in ("sde", "ode"):
        s = jax.jit(lambda v, k: model.sample(v, k, 5, sampler=sampler))(v, jax.random.key(1))
        assert s.shape == (5, 2) and s.dtype == jnp.float32 and bool(jnp.isfinite(s).all()), sampler
    # The adaptive ODE's evaluations are counted on a draw; fixed-step samplers have none to count.
    adaptive = ScoreSDE(dataclasses.replace(POINTS, ode_steps=0, denoise=True), moons.spec)
    count = adaptive.adaptive_network_evaluations(v, jax.random.key(1), 5, sampler="ode")
    assert isinstance(count, int) and count > 7 and (count - 2) % 6 == 0  # 6 per Tsit5 step, 1 to start, denoising
    assert adaptive.adaptive_network_evaluations(v, jax.random.key(1), 5, sampler="pc") is None
    assert model.adaptive_network_evaluations(v, jax.random.key(1), 5, sampler="ode") is None  # ode_steps=4
    # On points log_prob is the density of the points: exact trace and fixed probes make it key-free.
    exact = ScoreSDE(dataclasses.replace(POINTS, sde="ve", trace="exact"), moons.spec)
    x = _batch(moons)["point"]
    log_prob = jax.jit(exact.log_prob)
    a, b = (log_prob(v, x, jax.random.key(k)) for k in (1, 2))
    assert a.shape == (16,) and bool(jnp.isfinite(a).all())
    np.testing.assert_array_equal(a, b)


def test_score_sde_digits_interface(digits):
    model = ScoreSDE(IMAGES, digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    loss, metrics, state = jax.jit(model.loss)(v, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and state == {}
    # A zero-initialised output layer predicts eps = 0: the loss is then 1/2 E||z||^2 = D / 2 per example.
    assert float(metrics["dsm_loss_per_dim"]) == pytest.approx(0.5, rel=0.1)
    s = jax.jit(lambda v, k: model.sample(v, k, 3, sampler="sde"))(v, jax.random.key(2))
    assert s.shape == (3, 8, 8, 1) and s.dtype == jnp.uint8 and int(s.max()) < digits.spec.num_levels


@pytest.mark.slow
def test_score_sde_digits_fit_end_to_end(digits, tmp_path):
    model = ScoreSDE(IMAGES, digits.spec)
    results = fit(model, digits, TINY_TRAIN, str(tmp_path), progress=False)
    # A dequantization bound in discrete units: finite, and log P(x) <= 0 means nll >= 0.
    assert np.isfinite(results["test_nll_nats"]) and results["test_nll_nats"] > 0


def test_dsm_training_recovers_the_true_score():
    """The minimiser of the DSM loss is the score of the perturbed data (Vincent 2011): a small TimeMLP
    trained on 2-D Gaussian data predicts the closed-form noise eps*(x, t) = -s(t) grad log p_t(x)."""
    mu = jnp.array([0.5, -1.0])
    chol = jnp.linalg.cholesky(jnp.array([[1.0, 0.6], [0.6, 0.8]]))
    sigma = chol @ chol.T
    model = ScoreSDE(ScoreSDEConfig(hidden=(64, 64), embed_dim=16, time_scale=10.0),
                     DataSpec("g", "points", (2,), None, 0))
    sde = VPSDE()
    draw = lambda k, n: mu + jax.random.normal(k, (n, 2)) @ chol.T
    opt = optax.adam(3e-3)

    @jax.jit
    def train(key):
        v = model.init(key, {"point": jnp.zeros((1, 2))})

        def step(carry, k):
            params, opt_state = carry
            k_x, k_loss = jax.random.split(k)
            loss = lambda p: model.loss({"params": p, "state": {}}, {"point": draw(k_x, 256)}, k_loss)[0]
            grads = jax.grad(loss)(params)
            updates, opt_state = opt.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (v["params"], opt.init(v["params"])), jax.random.split(key, 400))
        return params

    @jax.jit
    def relative_errors(params, key):
        """sum_t E||eps - eps*||^2 / sum_t E||eps*||^2 over t in [0.05, 0.5], x_t from the true marginal, for
        eps = eps_theta and, as a baseline, for the exact noise prediction of N(0, I) data."""
        n = 4096
        k_t, k_x = jax.random.split(key)
        t = jax.random.uniform(k_t, (n,), minval=0.05, maxval=0.5)
        m, s = sde.marginal(t)
        cov = m[:, None, None] ** 2 * sigma + s[:, None, None] ** 2 * jnp.eye(2)
        x = m[:, None] * mu + jnp.einsum("bij,bj->bi", jnp.linalg.cholesky(cov), jax.random.normal(k_x, (n, 2)))
        true_eps = s[:, None] * jnp.linalg.solve(cov, (x - m[:, None] * mu)[..., None])[..., 0]
        rel = lambda pred: jnp.sum((pred - true_eps) ** 2) / jnp.sum(true_eps**2)
        return rel(model.net.apply(params, x, t)), rel(s[:, None] * x / (m**2 + s**2)[:, None])

    params0 = model.init(jax.random.key(0), {"point": jnp.zeros((1, 2))})["params"]
    assert float(relative_errors(params0, jax.random.key(1))[0]) == pytest.approx(1.0)  # zero output at init
    trained, baseline = (float(e) for e in relative_errors(train(jax.random.key(0)), jax.random.key(1)))
    assert trained < 0.03 and trained < baseline / 10  # measured: 0.007 and 0.27
