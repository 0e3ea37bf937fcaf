"""Watching a run: interval means in metrics.jsonl and TensorBoard, the learning rate, wall time and
throughput, evaluation during training, the EMA warm-up, config warnings and the progress bar's losses.

The expected numbers never come from the trainer's own bookkeeping: a hand-written model whose loss and
SGD update are arithmetic on batch pixel means (replayed here in numpy from ``batch_indices``), a fake
clock that advances only when a training batch is read, the learning-rate schedule written out by hand,
TensorBoard's purge rule applied to the raw TFRecord frames, and for real models a step-by-step replay of
``make_train_step`` or a direct ``evaluate_log_likelihood`` of the checkpointed parameters.
"""

import json
import math
import os
import struct
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gm_jax import parallel
from gm_jax.data import batch_indices, load_dataset
from gm_jax.data.loading import Dataset
from gm_jax.errors import GMJaxError
from gm_jax.metrics.likelihood import evaluate_log_likelihood
from gm_jax.models import MAF, VAE, MAFConfig, VAEConfig
from gm_jax.train import TrainConfig, fit, learning_rate_schedule, make_train_step, restore_state
from gm_jax.train import loop
from gm_jax.train.loop import _bar_losses, config_warnings, eval_variables, initial_state, make_optimizers
from gm_jax.train.metrics_log import MetricsLog
from gm_jax.train.step import ema_decay_at
from gm_jax.visualize import save_samples

W0 = 0.9  # the tracker's initial parameter, far from the digits' pixel means (~0.3)


# ------------------------------------------------------------------------------------------- helpers
def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _event_files(workdir):
    d = os.path.join(workdir, "tensorboard")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if "tfevents" in f)


def _read_events(path):
    """The events of one file, read from the TFRecord framing: uint64 length, uint32 crc of the length,
    the serialized Event, uint32 crc of the data (all little-endian)."""
    from tensorboardX.proto.event_pb2 import Event

    with open(path, "rb") as f:
        data = f.read()
    events, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        pos += 12
        events.append(Event.FromString(data[pos:pos + length]))
        pos += length + 4
    assert pos == len(data), f"{path}: torn record"
    return events


def _scalars(event):
    out = {}
    for v in event.summary.value:
        kind = v.WhichOneof("value")
        if kind in ("simple_value", "tensor"):
            out[v.tag] = v.simple_value if kind == "simple_value" else v.tensor.float_val[0]
    return out


def _images(workdir):
    """{tag: {step: RGB array}} of the image summaries in the run's event files (PNG-encoded)."""
    import io

    out = {}
    for path in _event_files(workdir):
        for e in _read_events(path):
            for v in e.summary.value:
                if v.WhichOneof("value") == "image":
                    with Image.open(io.BytesIO(v.image.encoded_image_string)) as image:
                        out.setdefault(v.tag, {})[e.step] = np.asarray(image.convert("RGB"))
    return out


def _tensorboard_view(workdir):
    """{tag: {step: value}} as TensorBoard shows the run: files in name order, events in file order, and a
    SessionLog START at step T drops every event read before it whose step is >= T (TensorBoard's
    EventAccumulator._Purge: only events with step < T are kept)."""
    from tensorboardX.proto.event_pb2 import SessionLog

    view = {}
    for path in _event_files(workdir):
        for e in _read_events(path):
            if e.HasField("session_log") and e.session_log.status == SessionLog.START:
                for steps in view.values():
                    for s in [s for s in steps if s >= e.step]:
                        del steps[s]
            for tag, value in _scalars(e).items():
                view.setdefault(tag, {})[e.step] = value
    return view


def _png(path):
    return np.asarray(Image.open(path))


def _hand_lr(t, cfg):
    """Linear warm-up from 0 over warmup_steps, then cosine from lr to lr * final_lr_ratio at steps."""
    if t < cfg.warmup_steps:
        return cfg.lr * t / cfg.warmup_steps
    span = cfg.steps - cfg.warmup_steps
    k = min(t - cfg.warmup_steps, span) / span
    r = cfg.final_lr_ratio
    return cfg.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * k)))


# --------------------------------------------------------------- a model whose every number is arithmetic
class _MeanTracker:
    """One scalar w fitted to the pixel means m_i in [0, 1] of the batch: loss = mean_i (w - m_i)^2 / 2, so
    plain SGD does w <- w - lr (w - mean_i m_i); log_prob(x_i) = -(w - m_i)^2 / 2 nats. Its samples are
    pure noise from the key, so samples drawn with one key are identical whatever w is."""

    has_log_prob = True

    def init(self, key, example_batch):
        return {"params": {"w": jnp.asarray(W0, jnp.float32)}, "state": {}}

    @staticmethod
    def _means(x):
        return jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3)) / 16.0

    def loss(self, variables, batch, key):
        m = self._means(batch["image"])
        return jnp.mean(0.5 * (variables["params"]["w"] - m) ** 2), {"m": jnp.mean(m)}, variables["state"]

    def log_prob(self, variables, x, key, *, labels=None):
        return -0.5 * (variables["params"]["w"] - self._means(x)) ** 2

    def sample(self, variables, key, num):
        return jax.random.randint(key, (num, 8, 8, 1), 0, 17).astype(jnp.uint8)


def _tracker_replay(train_means, cfg):
    """Per 0-based step t, in float64: the loss, the batch mean m and the gradient norm at the parameters
    before the update; and w, EMA after t updates (index 0: the initialisation)."""
    n = len(train_means)
    w, ema = W0, W0
    per_step = {"loss": [], "m": [], "grad_norm": []}
    ws, emas = [w], [ema]
    for t in range(cfg.steps):
        m = train_means[batch_indices(cfg.seed, t, n, cfg.batch_size)]
        per_step["loss"].append(np.mean(0.5 * (w - m) ** 2))
        per_step["m"].append(m.mean())
        per_step["grad_norm"].append(abs(w - m.mean()))
        w = w - _hand_lr(t, cfg) * (w - m.mean())
        d = min(cfg.ema_decay, (1 + t) / (10 + t))  # the EMA warm-up
        ema = d * ema + (1 - d) * w
        ws.append(w)
        emas.append(ema)
    return {k: np.array(v) for k, v in per_step.items()}, np.array(ws), np.array(emas)


class _Killed(Exception):
    pass


class _ClockedDigits(Dataset):
    """digits whose training-batch reads drive a fake clock: each advances it by 1 s, the first of a
    ``fit`` (whose step compiles) by 101 s; the read for step ``kill_at`` raises, as if the process died."""

    def setup(self, batch_size):
        self.batch_size, self.now, self.first, self.reads, self.kill_at = batch_size, 0.0, True, 0, None
        return self

    def read(self, split, indices=None):
        if split == "train" and indices is not None and len(indices) == self.batch_size:
            self.now += 101.0 if self.first else 1.0
            self.first = False
            self.reads += 1
            if self.kill_at is not None and self.reads - 1 == self.kill_at:
                raise _Killed
        return super().read(split, indices)


TRACKER_CFG = dict(steps=13, batch_size=32, optimizer="sgd", b1=0.0, lr=0.5, warmup_steps=3, schedule="cosine",
                   final_lr_ratio=0.2, ema_decay=0.9, log_every=5, eval_every=4, eval_examples=96,
                   eval_batch_size=32, checkpoint_every=4, max_device_bytes=0, num_samples=16,
                   prefetch_batches=0)  # reads in the loop: they drive the fake clock and the kill


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, digits):
    """The tracker trained for 13 steps (log every 5, evaluate every 4, checkpoint every 4), killed at the
    read of step 10 (after logging step 10 past its last checkpoint, 8), then resumed to the end."""
    workdir = str(tmp_path_factory.mktemp("tracked"))
    cfg = TrainConfig(**TRACKER_CFG)
    data = _ClockedDigits(digits.spec, digits.splits).setup(cfg.batch_size)
    model = _MeanTracker()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: data.now))
        data.kill_at = 10
        with pytest.raises(_Killed):
            fit(model, data, cfg, workdir, progress=False, evaluate=False)
        before = _records(workdir)
        first_files = _event_files(workdir)
        data.first, data.kill_at = True, None
        results = fit(model, data, cfg, workdir, progress=False, evaluate=True)
    train_means = digits.read("train")["image"].astype(np.float64).mean(axis=(1, 2, 3)) / 16.0
    test_means = digits.read("test")["image"].astype(np.float64).mean(axis=(1, 2, 3)) / 16.0
    per_step, ws, emas = _tracker_replay(train_means, cfg)
    return types.SimpleNamespace(workdir=workdir, cfg=cfg, model=model, records=_records(workdir), before=before,
                                 first_files=first_files, results=results, per_step=per_step, ws=ws,
                                 emas=emas, test_means=test_means)


def _train_records(records):
    return [r for r in records if "loss" in r]


def _eval_records(records):
    return [r for r in records if "eval/loss" in r]


# ----------------------------------------------------------------------------------------- 1: means
def test_logged_metrics_are_means_over_the_interval_including_partial_and_resumed(tracked):
    """Before the kill: step 5 is the mean of steps 1-5. The resumed run restores step 8, so its intervals
    are steps 9-10 (2 steps) and 11-13 (the last, partial interval), not 6-10 or 1-10."""
    assert [r["step"] for r in tracked.before] == [4, 5, 8, 10]
    train = _train_records(tracked.records)
    assert [r["step"] for r in train] == [5, 10, 13]
    intervals = {5: range(0, 5), 10: range(8, 10), 13: range(10, 13)}  # 0-based steps
    for r in train:
        for name in ("loss", "m", "grad_norm"):
            expected = tracked.per_step[name][list(intervals[r["step"]])].mean()
            assert r[name] == pytest.approx(expected, rel=2e-5, abs=1e-8), (r["step"], name)
    # the oracle can tell a mean from a last value here
    assert abs(tracked.per_step["loss"][4] - tracked.per_step["loss"][:5].mean()) > 0.01


# ------------------------------------------------------------------------------ 2: lr, wall time, rate
def test_lr_wall_time_and_examples_per_second(tracked):
    """lr is the schedule at the interval's last update (written out by hand: warm-up then cosine). The
    fake clock advances 1 s per training batch and 101 s for the first step of each fit (compilation): the
    rate (32 examples/s) leaves that step out, wall_s counts it and continues across the resume."""
    cfg = tracked.cfg
    schedule = learning_rate_schedule(cfg)
    train = _train_records(tracked.records)
    for r in train:
        assert r["lr"] == pytest.approx(_hand_lr(r["step"] - 1, cfg), rel=1e-6)
        assert r["lr"] == pytest.approx(float(schedule(r["step"] - 1)), rel=1e-6)
    assert [r["examples_per_s"] for r in train] == pytest.approx([32.0, 32.0, 32.0])
    # step 5: 101 + 4 s since the start; resumed at 8 (the clock goes on from the last record, step 5's 105 s):
    # 101 s (step 9) + 1 s (step 10), then + 3 s
    assert [r["wall_s"] for r in train] == pytest.approx([105.0, 207.0, 210.0])
    assert train[2]["wall_s"] > train[1]["wall_s"]


def test_examples_per_second_and_wall_time_on_a_real_clock(vae_run):
    train = [r for r in vae_run.records if "loss" in r]
    assert all(r["examples_per_s"] > 0 for r in train)
    walls = [r["wall_s"] for r in train]
    assert all(b > a > 0 for a, b in zip(walls, walls[1:])), walls


# -------------------------------------------------------------------------------------- 3: TensorBoard
def test_tensorboard_shows_exactly_what_metrics_jsonl_holds(tracked):
    """After TensorBoard's purge, the event files hold every record of metrics.jsonl under train/NAME and
    eval/NAME: the step-10 record logged before the kill is gone, the records at the restored step kept."""
    view = _tensorboard_view(tracked.workdir)
    expected = {}
    for r in tracked.records:
        for name, value in r.items():
            if name != "step":
                expected.setdefault(name if name.startswith("eval/") else f"train/{name}", {})[r["step"]] = value
    assert set(view) == set(expected)
    assert {"train/loss", "train/lr", "train/wall_s", "train/examples_per_s", "eval/loss",
            "eval/test_nll_nats"} <= set(view)
    for tag, steps in expected.items():
        assert sorted(view[tag]) == sorted(steps), tag
        for step, value in steps.items():
            assert view[tag][step] == pytest.approx(value, rel=1e-6, abs=1e-6), (tag, step)


def test_resumed_event_file_starts_with_a_purge_after_the_restored_step(tracked):
    """tensorboardX writes purge_step as a file_version event and a SessionLog START at that step; a run
    resumed from step 8 keeps everything up to step 8 (as metrics.jsonl does) and purges from step 9."""
    from tensorboardX.proto.event_pb2 import SessionLog

    new = [f for f in _event_files(tracked.workdir) if f not in tracked.first_files]
    assert len(new) == 1 and len(tracked.first_files) == 1
    assert sorted([tracked.first_files[0], new[0]]) == [tracked.first_files[0], new[0]]  # read in run order
    events = [e for e in _read_events(new[0]) if not e.HasField("file_version")]
    assert events[0].HasField("session_log") and events[0].session_log.status == SessionLog.START
    assert events[0].step == 9
    assert min(e.step for e in events[1:]) == 10
    old = _read_events(tracked.first_files[0])
    assert not any(e.HasField("session_log") for e in old)
    assert {e.step for e in old if e.summary.value} == {4, 5, 8, 10}


def test_a_writer_reopened_in_the_same_second_keeps_the_earlier_events(tmp_path, monkeypatch):
    """tensorboardX names event files by the second and opens them with 'wb': a resume within the same
    second must not overwrite the first run's file."""
    import tensorboardX.event_file_writer as efw

    monkeypatch.setattr(efw, "time", types.SimpleNamespace(time=lambda: 1_700_000_000.0))
    log = MetricsLog(str(tmp_path), 0)
    log.write({"step": 1, "loss": 1.0})
    log.write({"step": 2, "loss": 2.0})
    log.close()
    log = MetricsLog(str(tmp_path), 1)
    log.write({"step": 2, "loss": 3.0})
    log.close()
    assert _tensorboard_view(str(tmp_path)) == {"train/loss": {1: 1.0, 2: 3.0}}
    assert [r["loss"] for r in _records(str(tmp_path))] == [1.0, 3.0]


# ---------------------------------------------------------------------------- 4: evaluation in training
def test_evaluation_records_use_the_ema_on_the_first_eval_examples(tracked):
    """eval/loss, eval/m and eval/test_nll_nats at steps 4, 8, 12 are the tracker's numbers on the first 96
    test examples with the EMA parameters of that step (by hand), not the raw parameters."""
    evals = _eval_records(tracked.records)
    assert [r["step"] for r in evals] == [4, 8, 12]
    m = tracked.test_means[:tracked.cfg.eval_examples]
    for r in evals:
        ema, w = tracked.emas[r["step"]], tracked.ws[r["step"]]
        nll = np.mean(0.5 * (ema - m) ** 2)
        assert abs(nll - np.mean(0.5 * (w - m) ** 2)) > 1e-3 * nll  # EMA and params are told apart
        assert r["eval/loss"] == pytest.approx(nll, rel=2e-5)
        assert r["eval/m"] == pytest.approx(m.mean(), rel=1e-5)
        assert r["eval/test_nll_nats"] == pytest.approx(nll, rel=2e-5)
        assert r["eval/test_bits_per_dim"] == pytest.approx(nll / (64 * np.log(2)), rel=2e-5)
    final = np.mean(0.5 * (tracked.emas[-1] - tracked.test_means) ** 2)  # results.json: the whole test split
    assert tracked.results["test_nll_nats"] == pytest.approx(final, rel=2e-5)


def test_each_evaluation_saves_samples_from_the_same_noise(tracked):
    """The tracker's samples depend on the key only: one file per evaluation, all drawn from one key."""
    d = os.path.join(tracked.workdir, "samples")
    assert sorted(os.listdir(d)) == ["step_0000004.png", "step_0000008.png", "step_0000012.png"]
    first = _png(os.path.join(d, "step_0000004.png"))
    assert first.std() > 0
    for name in ("step_0000008.png", "step_0000012.png"):
        np.testing.assert_array_equal(_png(os.path.join(d, name)), first)
    np.testing.assert_array_equal(_png(os.path.join(tracked.workdir, "samples.png")), first)
    # TensorBoard shows each evaluation's grid (the same pixels) under eval/samples
    shown = _images(tracked.workdir)["eval/samples"]
    assert sorted(shown) == [4, 8, 12]
    for step, image in shown.items():
        on_disk = np.asarray(Image.open(os.path.join(d, f"step_{step:07d}.png")).convert("RGB"))
        np.testing.assert_array_equal(image, on_disk)


@pytest.fixture(scope="module")
def moons():
    return load_dataset("toy2d/moons", os.environ["GM_JAX_DATA_DIR"])


@pytest.fixture(scope="module")
def maf_run(tmp_path_factory, moons):
    workdir = str(tmp_path_factory.mktemp("maf"))
    model = MAF(MAFConfig(num_layers=2, hidden=(16,)), moons.spec)
    cfg = TrainConfig(steps=10, batch_size=32, lr=1e-2, ema_decay=0.99, log_every=5, eval_every=5,
                      checkpoint_every=5, eval_examples=64, eval_batch_size=32, eval_sample_metrics="fid,prdc",
                      eval_features="raw", eval_num_samples=64, num_samples=64)
    fit(model, moons, cfg, workdir, progress=False, evaluate=False)
    return types.SimpleNamespace(workdir=workdir, cfg=cfg, model=model, records=_records(workdir))


def test_flow_evaluation_matches_a_direct_likelihood_of_the_checkpointed_ema(maf_run, moons):
    """eval/test_nll_nats at steps 5 and 10 equals evaluate_log_likelihood of the checkpoint's EMA on the
    first eval_examples test points (exact for a flow on points, so any key); eval/loss (the flow's NLL
    loss on the same points) agrees; FID and PRDC on raw points are finite."""
    cfg, model = maf_run.cfg, maf_run.model
    evals = _eval_records(maf_run.records)
    assert [r["step"] for r in evals] == [5, 10]
    mesh = parallel.make_mesh()
    x = jnp.asarray(moons.read("test", np.arange(cfg.eval_examples))["point"])
    for r in evals:
        state = restore_state(model, moons, cfg, maf_run.workdir, mesh, step=r["step"])
        ema = eval_variables(state)
        direct = evaluate_log_likelihood(model, ema, moons, jax.random.key(7), mesh, 16, cfg.eval_examples,
                                         progress=False)
        assert r["eval/test_nll_nats"] == pytest.approx(direct["test_nll_nats"], rel=1e-5)
        by_hand = -float(np.mean(np.asarray(model.log_prob(ema, x, jax.random.key(0)), np.float64)))
        assert r["eval/test_nll_nats"] == pytest.approx(by_hand, rel=1e-5)
        assert r["eval/loss"] == pytest.approx(by_hand, rel=1e-5)
        raw = -float(np.mean(np.asarray(model.log_prob({"params": state.params, "state": {}}, x, jax.random.key(0)))))
        assert abs(raw - by_hand) > 1e-4 * abs(by_hand)  # the raw parameters give another number
        for k in ("eval/fid", "eval/precision", "eval/recall", "eval/density", "eval/coverage"):
            assert np.isfinite(r[k]), k
        assert r["eval/fid"] >= 0 and 0 <= r["eval/precision"] <= 1 and 0 <= r["eval/coverage"] <= 1
    d = os.path.join(maf_run.workdir, "samples")
    assert sorted(os.listdir(d)) == ["step_0000005.png", "step_0000010.png"]
    np.testing.assert_array_equal(_png(os.path.join(maf_run.workdir, "samples.png")),
                                  _png(os.path.join(d, "step_0000010.png")))


def test_unknown_sample_metric_is_refused_at_construction():
    with pytest.raises(GMJaxError, match="unknown metric sharpness"):
        TrainConfig(eval_sample_metrics="fid,sharpness")
    assert TrainConfig(eval_sample_metrics="fid, prdc").eval_sample_metrics == "fid, prdc"


# ------------------------------------------------------------------------------------ 5: EMA warm-up
def test_ema_decay_at_is_the_warm_up_formula():
    for decay in (0.9, 0.999):
        for step in (0, 1, 5, 80, 1000, 10 ** 6):
            assert float(ema_decay_at(step, decay)) == pytest.approx(min(decay, (1 + step) / (10 + step)), rel=1e-6)
    assert float(ema_decay_at(0, 0.999)) == pytest.approx(0.1)
    np.testing.assert_allclose(ema_decay_at(jnp.arange(4), 0.999), [1 / 10, 2 / 11, 3 / 12, 4 / 13], rtol=1e-6)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, digits):
    """A tiny VAE trained 12 steps (log every 5; EMA 0.999), and the same steps replayed here with
    make_train_step from the same initial state and data order, keeping every step's metrics and params."""
    workdir = str(tmp_path_factory.mktemp("vae"))
    model = VAE(VAEConfig(hidden=(16,), latent_dim=2), digits.spec)
    cfg = TrainConfig(steps=12, batch_size=32, lr=3e-3, log_every=5, ema_decay=0.999, checkpoint_every=100,
                      num_samples=16)
    fit(model, digits, cfg, workdir, progress=False, evaluate=False)
    mesh = parallel.make_mesh()
    state = initial_state(model, digits, cfg, mesh)
    init_params = jax.device_get(state.params)
    step = jax.jit(make_train_step(model, make_optimizers(model, cfg), cfg.ema_decay))
    train = digits.read("train")
    per_step, params = [], [init_params]
    for t in range(cfg.steps):
        idx = batch_indices(cfg.seed, t, digits.size("train"), cfg.batch_size)
        state, metrics = step(state, {k: jnp.asarray(v[idx]) for k, v in train.items()})
        per_step.append({k: float(v) for k, v in jax.device_get(metrics).items()})
        params.append(jax.device_get(state.params))
    return types.SimpleNamespace(workdir=workdir, cfg=cfg, model=model, mesh=mesh, records=_records(workdir),
                                 per_step=per_step, params=params,
                                 final=restore_state(model, digits, cfg, workdir, mesh))


def test_vae_logs_interval_means_of_a_replayed_run(vae_run):
    train = [r for r in vae_run.records if "loss" in r]
    assert [r["step"] for r in train] == [5, 10, 12]
    names = set(vae_run.per_step[0])
    assert {"loss", "grad_norm", "kl"} <= names
    for r, span in zip(train, (range(0, 5), range(5, 10), range(10, 12))):
        for name in names:
            expected = np.mean([vae_run.per_step[t][name] for t in span])
            assert r[name] == pytest.approx(expected, rel=1e-4, abs=1e-5), (r["step"], name)


def test_ema_warm_up_moves_the_sampling_parameters_off_the_initialisation(vae_run, digits, tmp_path):
    """With ema_decay=0.999 a 12-step run's EMA is, by the warm-up min(decay, (1+t)/(10+t)), mostly the
    recent parameters: computed here from the replayed parameters, it is what the run saved, and it is
    what samples.png was drawn from."""
    cfg = vae_run.cfg
    ema = vae_run.params[0]
    for t in range(cfg.steps):
        d = min(cfg.ema_decay, (1 + t) / (10 + t))
        ema = jax.tree_util.tree_map(lambda e, p, d=d: d * np.float64(e) + (1 - d) * np.float64(p), ema,
                                     vae_run.params[t + 1])
    saved = jax.device_get(vae_run.final.ema_params)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), saved, ema)
    flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])
    init, last, avg = flat(vae_run.params[0]), flat(jax.device_get(vae_run.final.params)), flat(saved)
    moved = np.linalg.norm(avg - init) / np.linalg.norm(last - init)
    assert moved > 0.5, moved  # without the warm-up the EMA would have moved ~1% of the way
    # samples.png: drawn from the EMA (rendered here), which differs from the raw parameters' samples
    key = jax.random.key(cfg.seed + 1)
    for name, params in (("ema", vae_run.final.ema_params), ("raw", vae_run.final.params)):
        samples = vae_run.model.sample({"params": params, "state": vae_run.final.model_state}, key, cfg.num_samples)
        save_samples(jax.device_get(samples), digits.spec, str(tmp_path / f"{name}.png"))
    on_disk = _png(os.path.join(vae_run.workdir, "samples.png"))
    np.testing.assert_array_equal(on_disk, _png(tmp_path / "ema.png"))
    assert not np.array_equal(on_disk, _png(tmp_path / "raw.png"))


# ------------------------------------------------------------------------------------- 6: warnings
def test_config_warnings_name_a_warm_up_or_ema_horizon_longer_than_the_run():
    assert config_warnings(TrainConfig(steps=2000, warmup_steps=100, ema_decay=0.999)) == []
    assert config_warnings(TrainConfig(steps=100, warmup_steps=99)) == []
    assert config_warnings(TrainConfig(steps=50, ema_decay=0.0)) == []
    (w,) = config_warnings(TrainConfig(steps=100, warmup_steps=100))
    assert "warmup_steps=100" in w and "steps=100" in w
    (w,) = config_warnings(TrainConfig(steps=500, ema_decay=0.999))
    assert "ema_decay=0.999" in w and "1000" in w
    assert len(config_warnings(TrainConfig(steps=20, warmup_steps=30, ema_decay=0.99))) == 2


# ------------------------------------------------------------------------------------ 7: progress bar
def test_progress_bar_shows_every_players_loss_and_nothing_else_as_a_loss():
    gan = {"discriminator/loss": 0.6931, "discriminator/grad_norm": 3.25, "discriminator/d_real": 1.5,
           "discriminator/d_fake": -1.25, "discriminator/gp": 0.125, "generator/loss": 2.125,
           "generator/grad_norm": 7.5, "generator/d_fake": -0.75, "generator/lr": 1e-4}
    shown = _bar_losses(gan)
    assert sorted(shown.values()) == sorted([f"{0.6931:.4g}", f"{2.125:.4g}"])
    assert len(shown) == 2 and all("loss" not in k or k == "loss" for k in shown)
    assert shown[next(k for k in shown if k.startswith("d"))] == f"{0.6931:.4g}"
    assert shown[next(k for k in shown if k.startswith("g"))] == f"{2.125:.4g}"
    assert _bar_losses({"loss": 1.5, "kl": 0.25, "grad_norm": 9.0, "recon_loss": 3.0}) == {"loss": "1.5"}
