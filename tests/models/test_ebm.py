"""The ebm and ncsn models through the model interface: training steps on toy2d and digits (the replay buffer
is carried as state), samples in data space, and config validation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.models import EBM, MODELS, NCSN, EBMConfig, NCSNConfig, override
from gm_jax.train import fit, init_train_state, make_train_step
from gm_jax.train.config import TrainConfig
from gm_jax.train.step import ALL

EBM_TINY = EBMConfig(hidden=(16,), channels=(8, 8), langevin_steps=3, buffer_capacity=64, sample_steps=4,
                     grad_clip=1.0)
NCSN_POINTS = NCSNConfig(num_scales=3, sigma_max=2.0, sigma_min=0.1, hidden=(16,), embed_dim=8, steps_per_sigma=5)
NCSN_IMAGES = NCSNConfig(num_scales=3, sigma_max=2.0, sigma_min=0.1, channels=8, channel_mult=(1,),
                         attention_resolutions=(), steps_per_sigma=2)


@pytest.fixture(scope="module")
def moons(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("toy2d/moons", data_dir)


def _batch(dataset, n=16):
    return {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(n)).items()}


def _train(model, batch, steps=3):
    """A few jitted train steps through the trainer's step (the path `gm-jax train` runs)."""
    tx = {ALL: optax.adam(1e-3)}
    v = model.init(jax.random.key(0), batch)
    state = init_train_state(v, tx, jax.random.key(1), ema=False)
    step = jax.jit(make_train_step(model, tx))
    for _ in range(steps):
        state, metrics = step(state, batch)
    assert int(state.first_bad_step) == -1
    return v, state, {k: float(m) for k, m in metrics.items()}


def test_models_are_registered_and_validate():
    assert MODELS["ebm"] == (EBMConfig, EBM) and MODELS["ncsn"] == (NCSNConfig, NCSN)
    assert not EBM.has_log_prob and not NCSN.has_log_prob
    spec = DataSpec("p", "points", (2,), None, 0)
    for bad, match in [(dict(step_size=0.0), "step_size"), (dict(reinit_prob=1.5), "reinit_prob"),
                       (dict(buffer_capacity=0), "buffer_capacity"), (dict(alpha=-1.0), "alpha"),
                       (dict(hidden=(0,)), "hidden"), (dict(grad_clip=-1.0), "grad_clip")]:
        with pytest.raises(GMJaxError, match=match):
            EBM(EBMConfig(**bad), spec)
    for bad, match in [(dict(sigma_min=20.0), "sigma_min < sigma_max"), (dict(num_scales=1), "num_scales"),
                       (dict(step_lr=0.0), "step_lr"), (dict(steps_per_sigma=0), "steps_per_sigma")]:
        with pytest.raises(GMJaxError, match=match):
            NCSN(NCSNConfig(**bad), spec)
    with pytest.raises(GMJaxError, match="reinit_prob"):
        override(EBMConfig(), {"reinit_prob": "2"})  # the CLI's --set path
    text = DataSpec("t", "text", (8,), 30, 0)
    for cls, cfg in ((EBM, EBMConfig()), (NCSN, NCSNConfig())):
        with pytest.raises(GMJaxError, match="images or points"):
            cls(cfg, text)
        with pytest.raises(GMJaxError, match="has_log_prob"):
            cls(cfg, spec).log_prob({}, jnp.zeros((1, 2)), jax.random.key(0))


def _check_samples(s, spec, num):
    assert s.shape == (num,) + tuple(spec.shape)
    if spec.kind == "image":
        assert s.dtype == jnp.uint8 and int(s.max()) < spec.num_levels
    else:
        assert s.dtype == jnp.float32 and bool(jnp.isfinite(s).all())


def test_ebm_points_fit_end_to_end_carries_and_checkpoints_the_buffer(moons, tmp_path):
    """`fit` (train steps, checkpoints, samples.png) with the replay buffer as model state: the restored
    buffer differs from the initial one in at most steps * batch_size rows (the drawn slots)."""
    from gm_jax import parallel
    from gm_jax.train.loop import initial_state, restore_state

    model = EBM(EBM_TINY, moons.spec)
    cfg = TrainConfig(steps=3, batch_size=16, log_every=1, checkpoint_every=3, num_samples=4)
    results = fit(model, moons, cfg, str(tmp_path), progress=False)
    assert results["steps"] == 3 and "test_nll_nats" not in results
    with open(tmp_path / "metrics.jsonl") as f:
        last = [__import__("json").loads(line) for line in f][-1]
    assert all(np.isfinite(last[k]) for k in ("loss", "e_pos", "e_neg", "cd_gap"))
    state = restore_state(model, moons, cfg, str(tmp_path))
    old = np.asarray(initial_state(model, moons, cfg, parallel.make_mesh()).model_state["buffer"]["samples"])
    new = np.asarray(state.model_state["buffer"]["samples"])
    assert new.shape == (64, 2)
    changed = np.any(old != new, axis=1).sum()
    assert 0 < changed <= 3 * 16
    variables = {"params": state.params, "state": state.model_state}
    sample = jax.jit(lambda v, k: model.sample(v, k, 5, steps=2, from_buffer=True))
    _check_samples(sample(variables, jax.random.key(3)), moons.spec, 5)


def test_ebm_digits_loss_updates_the_buffer_and_samples(digits):
    """The loss on images (forward only: the train step's plumbing is exercised on points by the fit test)."""
    model = EBM(EBM_TINY, digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    loss, metrics, state = jax.jit(model.loss)(v, batch, jax.random.key(1))
    assert all(np.isfinite(float(m)) for m in (loss, *metrics.values()))
    old, new = np.asarray(v["state"]["buffer"]["samples"]), np.asarray(state["buffer"]["samples"])
    assert new.shape == (64, 8, 8, 1) and 0 < np.any(old != new, axis=(1, 2, 3)).sum() <= 16
    assert new.min() >= -1.0 and new.max() <= 1.0  # chains are clamped to model space
    s = jax.jit(lambda v, k: model.sample(v, k, 5))({"params": v["params"], "state": state}, jax.random.key(2))
    _check_samples(s, digits.spec, 5)


def test_ncsn_points_train_and_sample(moons):
    model = NCSN(NCSN_POINTS, moons.spec)
    batch = _batch(moons, 64)
    v = model.init(jax.random.key(0), batch)
    # The zero-initialised output layer makes the initial score 0, so the loss is 1/2 E||z||^2 = D / 2 and
    # annealed Langevin is a pure random walk from N(0, sigma_max^2 I): its variance per coordinate is
    # sigma_max^2 + T * sum_i alpha_i (and no denoising drift), a closed-form check of the levels, the
    # step sizes and the start.
    _, state, metrics = _train(model, batch, steps=1)  # metrics of the first step are those of the init
    assert metrics["dsm_loss"] == pytest.approx(1.0, rel=0.3)  # 1/2 chi^2_2 averaged over 64 examples
    assert metrics["dsm_loss_per_dim"] == pytest.approx(metrics["dsm_loss"] / 2) and state.model_state == {}
    n = 4000
    sample = jax.jit(lambda v, k: model.sample(v, k, n))
    s = sample(v, jax.random.key(2))
    _check_samples(s, moons.spec, n)
    sig, c = model.sigmas, NCSN_POINTS
    var = c.sigma_max**2 + c.steps_per_sigma * np.sum(c.step_lr * sig**2 / sig[-1] ** 2)
    np.testing.assert_allclose(np.var(np.asarray(s), axis=0), var, rtol=5 * np.sqrt(2 / n))
    _check_samples(sample({"params": state.params, "state": {}}, jax.random.key(3)), moons.spec, n)


def test_ncsn_digits_loss_and_sample(digits):
    """Forward only (the U-Net's gradient is exercised by the score_sde tests; compiling it here too would
    double this test's time)."""
    model = NCSN(NCSN_IMAGES, digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    # One program for both (one compile of the U-Net's forward pass setup instead of two jits).
    (loss, metrics, state), s = jax.jit(lambda v, b, k: (model.loss(v, b, k), model.sample(v, k, 3)))(
        v, batch, jax.random.key(1))
    assert state == {} and float(metrics["dsm_loss_per_dim"]) == pytest.approx(0.5, rel=0.2)  # zero score: D/2
    _check_samples(s, digits.spec, 3)
    with pytest.raises(GMJaxError, match="annealed_langevin"):
        model.sample(v, jax.random.key(0), 2, sampler="pc")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ebm", "ncsn"])
def test_models_learn_eight_gaussians(name, data_dir, tmp_path):
    """1000 training steps (~20 s each on 2 CPU cores) with the default configs (NCSN: levels fitted to
    the data's scale); most samples land on the 8 modes and every mode gets a share. Measured: ebm 93% of
    samples within 3 std of a mode, ncsn 90%, each mode 7-17% of the samples."""
    from gm_jax.data import load_dataset
    from gm_jax.data.toy2d import log_density
    from gm_jax.train import eval_variables, restore_state

    data = load_dataset("toy2d/eight_gaussians", data_dir)
    if name == "ebm":
        model, kw = EBM(EBMConfig(), data.spec), {"steps": 500}
    else:
        model, kw = NCSN(NCSNConfig(num_scales=10, sigma_max=6.0, sigma_min=0.05, step_lr=1e-4), data.spec), {}
    cfg = TrainConfig(steps=1000, batch_size=128, lr=1e-3, log_every=500, checkpoint_every=1000, num_samples=16)
    fit(model, data, cfg, str(tmp_path), progress=False)
    variables = eval_variables(restore_state(model, data, cfg, str(tmp_path)))
    s = np.asarray(jax.jit(lambda v, k: model.sample(v, k, 2000, **kw))(variables, jax.random.key(0)))
    angles = np.arange(8) * np.pi / 4
    centres = 4 / 1.414 * np.stack([np.cos(angles), np.sin(angles)], 1)
    dist = np.sqrt(((s[:, None] - centres[None]) ** 2).sum(-1))
    assert (dist.min(1) < 3 * 0.5 / 1.414).mean() > 0.8
    assert np.bincount(dist.argmin(1), minlength=8).min() > 0.04 * len(s)
    assert log_density("eight_gaussians", s).mean() > -5.0  # a perfect sampler: -H = -2.83
