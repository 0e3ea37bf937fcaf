import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gm_jax import parallel
from gm_jax.models import VAE, VAEConfig
from gm_jax.train import Checkpointer, TrainConfig, TrainingDiverged, fit, init_train_state, make_train_step
from gm_jax.train.loop import make_optimizers, restore_state

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "run_training.py")


def _run_helper(args, devices=1, **popen):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, HELPER, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_eight_devices_match_one_device(tmp_path, digits):
    """The same steps on a 1-D mesh of 8 virtual CPU devices and on 1 device give the same parameters."""
    procs = [_run_helper([tmp_path / f"run{n}", 30, "--save-params", tmp_path / f"p{n}.npz"], devices=n)
             for n in (1, 8)]
    for p in procs:
        _finish(p)
    one, eight = _load(tmp_path / "p1.npz"), _load(tmp_path / "p8.npz")
    assert int(one.pop("devices")) == 1 and int(eight.pop("devices")) == 8
    moved = 0.0
    for k in one:
        np.testing.assert_allclose(eight[k], one[k], rtol=2e-4, atol=2e-5, err_msg=k)
        moved = max(moved, float(np.abs(one[k]).max()))
    assert moved > 0


# ~45 s; the default suite kills and resumes a streaming run in tests/train/test_multiprocess.py (a job of two)
@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path, digits):
    """SIGKILL a streaming run after a few checkpoints, resume it, compare with a run never interrupted."""
    steps = 60
    victim = _run_helper([tmp_path / "killed", steps, "--stream-delay", 0.05])
    ckpt_dir = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        done = [int(d) for d in (os.listdir(ckpt_dir) if ckpt_dir.exists() else []) if d.isdigit()]
        if done and max(done) >= 20:
            break
        assert victim.poll() is None, victim.communicate()[1][-2000:]
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    latest = Checkpointer(str(ckpt_dir)).latest_step()
    assert latest is not None and 20 <= latest < steps, latest
    resumed = _run_helper([tmp_path / "killed", steps, "--stream-delay", 0.0, "--save-params", tmp_path / "a.npz"])
    straight = _run_helper([tmp_path / "straight", steps, "--save-params", tmp_path / "b.npz"])
    _finish(resumed)
    _finish(straight)
    a, b = _load(tmp_path / "a.npz"), _load(tmp_path / "b.npz")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)


class _DivergesAtCall5:
    """loss = |w|^2 + log(5 - calls): finite for the first five steps, then -inf."""

    has_log_prob = False

    def init(self, key, example_batch):
        return {"params": {"w": jnp.ones(3)}, "state": {"calls": jnp.zeros(())}}

    def loss(self, variables, batch, key):
        calls = variables["state"]["calls"]
        loss = jnp.sum(variables["params"]["w"] ** 2) + jnp.log(5.0 - calls)
        return loss, {}, {"calls": calls + 1}

    def sample(self, variables, key, num):
        return jnp.zeros((num, 8, 8, 1), jnp.uint8)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, digits):
    model = _DivergesAtCall5()
    cfg = TrainConfig(steps=50, batch_size=32, lr=0.1, log_every=1, checkpoint_every=2, keep_checkpoints=2)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss or gradient at step 5; .* \(step 4\) is kept"):
        fit(model, digits, cfg, str(tmp_path), progress=False, evaluate=False)
    assert Checkpointer(str(tmp_path / "checkpoints")).latest_step() == 4
    state = restore_state(model, digits, cfg, str(tmp_path))
    assert int(state.first_bad_step) == -1 and int(state.step) == 4
    assert float(state.model_state["calls"]) == 4
    assert np.isfinite(np.asarray(state.params["w"])).all()


def test_fit_writes_logs_samples_results_and_beats_uniform(tmp_path, digits):
    model = VAE(VAEConfig(hidden=(128,), latent_dim=8, eval_importance_samples=32), digits.spec)
    cfg = TrainConfig(steps=300, batch_size=64, lr=2e-3, log_every=100, checkpoint_every=150)
    results = fit(model, digits, cfg, str(tmp_path), progress=False)
    uniform = 64 * np.log(17)
    assert results["test_nll_nats"] < 0.6 * uniform, results  # well below the uniform model
    assert results["test_bits_per_dim"] == pytest.approx(results["test_nll_nats"] / (64 * np.log(2)))
    on_disk = json.loads((tmp_path / "results.json").read_text())
    for key in ("model", "dataset", "steps", "num_params", "test_nll_nats", "test_bits_per_dim"):
        assert key in on_disk
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [100, 200, 300]
    assert {"loss", "examples_per_s", "kl", "bits_per_dim"} <= set(json.loads(lines[0]))
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert Checkpointer(str(tmp_path / "checkpoints")).latest_step() == 300


class _TwoPlayerGame:
    """min_x max_y of f = a x^2/2 + x y - b y^2/2 with the y player updated n times per step: a model with
    two parameter groups, for checking the trainer's alternating updates against a hand-written loop."""

    has_log_prob = False
    param_groups = (("y", 3), ("x", 1))
    group_train_overrides = {"y": {"lr": 0.05}}

    def init(self, key, example_batch):
        return {"params": {"x": jnp.array([1.0, -2.0]), "y": jnp.array([0.5, 0.3])}, "state": {"calls": jnp.zeros(())}}

    def loss(self, variables, batch, key, group):
        p = variables["params"]
        c = batch["point"].mean(0)
        f = 0.5 * 1.3 * jnp.sum(p["x"] ** 2) + jnp.sum(p["x"] * p["y"] * c) - 0.5 * 0.7 * jnp.sum(p["y"] ** 2)
        state = {"calls": variables["state"]["calls"] + 1}
        return (f if group == "x" else -f), {"f": f}, state


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_parameter_groups_alternate_like_a_hand_written_loop(schedule):
    """Each group's learning rate follows the training step: the y player's three updates of step t all use
    the lr of step t (linear: decaying to 0 at step 4), not a schedule over its update count."""
    model = _TwoPlayerGame()
    cfg = TrainConfig(lr=0.1, ema_decay=0.9, steps=4, schedule=schedule)
    decay = (lambda t: 1.0) if schedule == "constant" else (lambda t: 1.0 - t / 4)
    optimizers = make_optimizers(model, cfg)
    state = init_train_state(model.init(None, None), optimizers, jax.random.key(0), ema=True)
    step = jax.jit(make_train_step(model, optimizers, cfg.ema_decay))
    batch = {"point": jnp.array([[1.0, 2.0], [0.0, 1.0]])}
    for _ in range(4):
        state, metrics = step(state, batch)

    # Reference: plain optax, y three times then x once per step.
    c = batch["point"].mean(0)
    x, y = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.3])
    # adam with the lr as an injected hyperparameter, set by hand to the lr of step t
    tx_x, tx_y = (optax.inject_hyperparams(optax.adam)(learning_rate=lr) for lr in (0.1, 0.05))
    ox, oy = tx_x.init(x), tx_y.init(y)
    ema = {"x": x, "y": y}
    f = lambda x, y: 0.5 * 1.3 * jnp.sum(x ** 2) + jnp.sum(x * y * c) - 0.5 * 0.7 * jnp.sum(y ** 2)
    for t in range(4):
        ox.hyperparams["learning_rate"] = 0.1 * decay(t)
        oy.hyperparams["learning_rate"] = 0.05 * decay(t)
        for _ in range(3):
            g = jax.grad(lambda y: -f(x, y))(y)
            u, oy = tx_y.update(g, oy, y)
            y = optax.apply_updates(y, u)
        g = jax.grad(lambda x: f(x, y))(x)
        u, ox = tx_x.update(g, ox, x)
        x = optax.apply_updates(x, u)
        d = min(0.9, (1 + t) / (10 + t))  # the EMA warm-up (TensorFlow's num_updates, diffusers' EMA)
        ema = jax.tree_util.tree_map(lambda e, p: d * e + (1 - d) * p, ema, {"x": x, "y": y})
    np.testing.assert_allclose(state.params["x"], x, rtol=1e-4)
    np.testing.assert_allclose(state.params["y"], y, rtol=1e-4)
    np.testing.assert_allclose(state.ema_params["x"], ema["x"], rtol=1e-4)
    assert int(state.step) == 4 and float(state.model_state["calls"]) == 16
    assert {"x/loss", "y/loss", "x/f", "y/grad_norm"} <= set(metrics)


def test_batch_size_must_divide_device_count_and_data():
    from gm_jax.data import batch_indices
    from gm_jax.errors import GMJaxError

    mesh = parallel.make_mesh()
    parallel.check_batch_size(mesh.size * 3, mesh)
    with pytest.raises(GMJaxError, match="exceeds"):
        batch_indices(0, 0, 10, 11)


def test_learning_rate_schedule_warmup_and_cosine():
    from gm_jax.train import learning_rate_schedule

    lr = learning_rate_schedule(TrainConfig(lr=1.0, steps=110, warmup_steps=10, schedule="cosine"))
    assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5) and float(lr(10)) == pytest.approx(1.0)
    assert float(lr(60)) == pytest.approx(0.5, abs=1e-6) and float(lr(110)) == pytest.approx(0.0, abs=1e-6)


def test_exponential_schedule_is_a_constant_factor_per_step():
    """PixelCNN++'s lr * 0.999995^t: final_lr_ratio = 0.999995^(steps - warm-up)."""
    from gm_jax.train import learning_rate_schedule

    cfg = TrainConfig(lr=2.0, steps=1010, warmup_steps=10, schedule="exponential", final_lr_ratio=0.999995 ** 1000)
    lr = learning_rate_schedule(cfg)
    for t in (10, 11, 500, 1010):
        assert float(lr(t)) == pytest.approx(2.0 * 0.999995 ** (t - 10), rel=1e-6)
    with pytest.raises(Exception, match="final_lr_ratio"):
        TrainConfig(schedule="exponential").validate()


def test_weight_clip_is_a_projected_step():
    """weight_clip: the adam step is taken, then every parameter is projected into the box (WGAN)."""
    from gm_jax.train.optim import make_optimizer

    cfg = TrainConfig(lr=0.3, grad_clip=10.0)
    params = {"w": jnp.array([0.05, -0.3, 0.0, 0.02]), "b": jnp.array([[0.5]])}
    grads = {"w": jnp.array([-1.0, 1.0, 0.1, 1e-3]), "b": jnp.array([[-2.0]])}
    plain, clipped = make_optimizer(cfg), make_optimizer(TrainConfig(lr=0.3, grad_clip=10.0, weight_clip=0.1))
    step = lambda tx: optax.apply_updates(params, tx.update(grads, tx.init(params), params)[0])
    expected = jax.tree_util.tree_map(lambda p: np.clip(p, -0.1, 0.1), step(plain))
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), step(clipped), expected)
    assert float(step(clipped)["w"][0]) == pytest.approx(0.1) and float(step(clipped)["w"][3]) < 0.1
    with pytest.raises(Exception, match="weight_clip"):
        TrainConfig(weight_clip=-1.0).validate()


def test_hflip_step_trains_on_the_flipped_batch_and_keeps_other_randomness(digits):
    """hflip=True is the same step on the batch flipped by random_hflip under fold_in(step key, #groups):
    the loss's own key (dropout, noise, ...) is unchanged."""
    from gm_jax.data import random_hflip

    model = VAE(VAEConfig(hidden=(16,), latent_dim=2), digits.spec)
    cfg = TrainConfig(lr=1e-3)
    optimizers = make_optimizers(model, cfg)
    batch = {k: jnp.asarray(v) for k, v in digits.read("train", np.arange(32)).items()}
    state = init_train_state(model.init(jax.random.key(0), batch), optimizers, jax.random.key(1), ema=False)
    flipped_step, plain_step = (jax.jit(make_train_step(model, optimizers, hflip=h)) for h in (True, False))
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    flipped = {**batch, "image": random_hflip(batch["image"], jax.random.fold_in(key, 1))}
    a, b, c = flipped_step(state, batch)[0], plain_step(state, flipped)[0], plain_step(state, batch)[0]
    leaves = lambda s: jax.tree_util.tree_leaves(s.params)
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    assert any(not np.allclose(x, z) for x, z in zip(leaves(a), leaves(c)))


def test_hflip_on_points_is_refused_before_anything_is_written(tmp_path):
    from gm_jax.data import load_dataset
    from gm_jax.errors import GMJaxError

    points = load_dataset("toy2d/moons")
    model = VAE(VAEConfig(hidden=(8,), latent_dim=2, likelihood="gaussian"), points.spec)
    with pytest.raises(GMJaxError, match="hflip=true flips images; toy2d/moons holds points"):
        fit(model, points, TrainConfig(steps=1, hflip=True), str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def _params(state):
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in
            jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))}


def test_several_steps_per_dispatch_train_exactly_as_one(tmp_path, digits):
    """steps_per_dispatch=4 (a scan over the batches of 4 steps per call) gives the parameters and logs of one
    step per call: data on device to step 6 (calls of 4 and 2 steps), then resumed with the data streamed from
    disk (a call of 2 steps realigns to step 8, then the last 2 steps)."""
    model = VAE(VAEConfig(hidden=(32,), latent_dim=4), digits.spec)
    base = dict(steps=10, batch_size=32, lr=3e-3, log_every=4, checkpoint_every=4, num_samples=4)
    one, four = str(tmp_path / "one"), str(tmp_path / "four")
    fit(model, digits, TrainConfig(**base), one, progress=False, evaluate=False)
    fit(model, digits, TrainConfig(**{**base, "steps": 6}, steps_per_dispatch=4), four, progress=False,
        evaluate=False)
    cfg = TrainConfig(**base, steps_per_dispatch=4, max_device_bytes=0)
    fit(model, digits, cfg, four, progress=False, evaluate=False)
    a, b = (_params(restore_state(model, digits, cfg, run)) for run in (one, four))
    for k, v in a.items():
        np.testing.assert_allclose(b[k], v, rtol=1e-6, atol=1e-7, err_msg=k)
    logs = [{r["step"]: r for r in map(json.loads, open(os.path.join(run, "metrics.jsonl")))} for run in (one, four)]
    assert list(logs[0]) == [4, 8, 10] and list(logs[1]) == [4, 6, 8, 10]
    for step in (4, 10):  # the same steps averaged (8 averages 7-8 after the resume, 5-8 without)
        assert logs[1][step]["loss"] == pytest.approx(logs[0][step]["loss"], rel=1e-6)
    with pytest.raises(Exception, match="log_every=6 must be a multiple of steps_per_dispatch=4"):
        TrainConfig(**{**base, "log_every": 6}, steps_per_dispatch=4)


def test_streamed_batches_read_ahead_equal_batches_read_in_the_loop(digits):
    """The grain read-ahead gives each step's rows in order, also after a jump (a resume elsewhere)."""
    from gm_jax.train.feeding import Feeder

    mesh = parallel.make_mesh()
    feeders = [Feeder(digits, TrainConfig(steps=12, batch_size=32, max_device_bytes=0, prefetch_batches=n), mesh)
               for n in (0, 4)]
    for first, count in ((0, 2), (2, 3), (9, 2), (11, 1)):  # 5 -> 9 jumps
        inline, ahead = (jax.device_get(f.host_batches(first, count)) for f in feeders)
        assert inline["image"].shape == (count, 32, 8, 8, 1)
        for k in inline:
            np.testing.assert_array_equal(ahead[k], inline[k])
        np.testing.assert_array_equal(inline["image"][0], digits.read("train", feeders[0].indices(first))["image"])
    feeders[1].close()
