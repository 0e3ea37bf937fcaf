"""The training loop every model runs: data feeding, jitted steps, logging, checkpoints, evaluation."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from gm_jax import parallel
from gm_jax.data.loading import Dataset
from gm_jax.errors import GMJaxError
from gm_jax.metrics.likelihood import evaluate_log_likelihood
from gm_jax.models.base import accepts_kwarg, num_params, param_groups
from gm_jax.train.checkpoint import Checkpointer
from gm_jax.train.config import TrainConfig
from gm_jax.train.feeding import Feeder, compile_steps
from gm_jax.train.metrics_log import MetricsLog
from gm_jax.train.optim import learning_rate_schedule, make_optimizer
from gm_jax.train.periodic_eval import PeriodicEvaluator, evaluation_samples_path
from gm_jax.train.preemption import StopAtOnce, StopRequest, TrainingStopped
from gm_jax.train.rundir import RunLock, check_writable
from gm_jax.train.step import ALL, TrainState, init_train_state, make_train_step
from gm_jax.visualize import can_save_samples, samples_filename, save_samples

__all__ = ["fit", "evaluation", "restore_state", "eval_variables", "initial_state", "make_optimizers",
           "sample_source", "write_json", "TrainingDiverged", "TrainingStopped"]


class TrainingDiverged(GMJaxError):
    """A loss or gradient became non-finite; the last good checkpoint is kept."""


def make_optimizers(model, cfg: TrainConfig) -> dict:
    """One optax optimizer per parameter group; a model may override TrainConfig fields per group
    through ``group_train_overrides = {group: {"lr": ...}}`` (e.g. TTUR learning rates)."""
    overrides = getattr(model, "group_train_overrides", {})
    return {group or ALL: make_optimizer(cfg, updates_per_step=repeats, **overrides.get(group, {}))
            for group, repeats in param_groups(model)}


def eval_variables(state: TrainState) -> dict:
    """The variables used for sampling and evaluation: the EMA parameters when EMA is on."""
    params = state.ema_params if jax.tree_util.tree_leaves(state.ema_params) else state.params
    return {"params": params, "state": state.model_state}


def _new_state(model, dataset: Dataset, cfg: TrainConfig) -> TrainState:
    key = jax.random.key(cfg.seed)
    example = {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(min(2, dataset.size("train")))).items()}
    variables = model.init(jax.random.fold_in(key, 1), example)
    return init_train_state(variables, make_optimizers(model, cfg), key, ema=cfg.ema_decay > 0)


def initial_state(model, dataset: Dataset, cfg: TrainConfig, mesh) -> TrainState:
    """The state of step 0 (initialised parameters, optimizer and EMA), replicated over the mesh."""
    return parallel.put_replicated(_new_state(model, dataset, cfg), mesh)


def abstract_state(model, dataset: Dataset, cfg: TrainConfig, mesh) -> TrainState:
    """The shapes, dtypes and (replicated) shardings of :func:`initial_state`, computed by tracing alone:
    the restore target of a checkpoint, with nothing initialised or compiled."""
    sharding = parallel.replicated(mesh)
    shapes = jax.eval_shape(lambda: _new_state(model, dataset, cfg))
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


def _metric_shapes(step, cfg: TrainConfig, state: TrainState, dataset: Dataset):
    """The per-step metrics' shapes and dtypes (traced, not run)."""
    probe = dataset.read("train", [0])
    batch = {k: jax.ShapeDtypeStruct((cfg.batch_size,) + v.shape[1:], v.dtype) for k, v in probe.items()}
    return jax.eval_shape(step, state, batch)[1]


def _check_finite(state: TrainState, ckpt: Checkpointer, workdir: str):
    bad = int(jax.device_get(state.first_bad_step))
    if bad >= 0:
        ckpt.wait()
        last = ckpt.latest_step()
        kept = f"the last good checkpoint (step {last}) is kept in {workdir}" if last is not None else \
            "no checkpoint had been written yet"
        raise TrainingDiverged(f"non-finite loss or gradient at step {bad}; training stopped and {kept}; "
                               "lower lr or set grad_clip (e.g. --set grad_clip=1.0)")


def write_json(path: str, obj) -> None:
    """Writes JSON atomically (temporary file, then rename), so readers never see half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)  # atomic


def sample_source(model, dataset: Dataset, num: int) -> dict:
    """``{"source": the first num test examples}`` for models that translate data (their ``sample`` takes
    ``source``, e.g. CycleGAN), else ``{}``."""
    if not accepts_kwarg(model.sample, "source"):
        return {}
    split = "test" if dataset.size("test") else "train"
    rows = np.arange(min(num, dataset.size(split)))
    return {"source": jnp.asarray(dataset.read(split, rows)[dataset.spec.data_key])}


def _say(message: str) -> None:
    """A one-line notice on stderr that does not break the progress bar."""
    tqdm.write(f"gm-jax: {message}", file=sys.stderr)


def _resume(model, dataset: Dataset, cfg: TrainConfig, workdir: str, ckpt: Checkpointer, state, meta: dict):
    """(state, start step, damaged steps) of the run in ``workdir``: the newest intact checkpoint, checked
    to belong to this model and dataset and to lie within ``cfg.steps``; or the fresh state at step 0."""
    if ckpt.latest_step() is None:
        return state, 0, ()
    saved = ckpt.read_meta(ckpt.latest_step()) or {}
    if saved.get("model") is not None and (saved["model"], saved.get("dataset")) != (meta["model"], meta["dataset"]):
        raise GMJaxError(f"{workdir} holds a {saved['model']} run on {saved.get('dataset')}, not {meta['model']} "
                         f"on {meta['dataset']}; train into another --workdir")
    restored = ckpt.restore(state)
    for step, reason in restored.damaged:
        _say(f"checkpoint step {step} in {ckpt.directory} is damaged ({reason}); resuming from step {restored.step}")
    if restored.step > cfg.steps:
        raise GMJaxError(f"{workdir} holds a checkpoint at step {restored.step}, past steps={cfg.steps}; pass "
                         f"--steps {restored.step} or more to continue it, or train into a new --workdir")
    return restored.state, restored.step, tuple(s for s, _ in restored.damaged)


def _learning_rates(model, cfg: TrainConfig) -> dict:
    """{metric name: lr schedule}: ``lr``, or ``GROUP/lr`` per parameter group."""
    overrides = getattr(model, "group_train_overrides", {})
    return {("lr" if group is None else f"{group}/lr"):
            learning_rate_schedule(dataclasses.replace(cfg, **overrides.get(group, {})))
            for group, _ in param_groups(model)}


def _bar_losses(means: dict) -> dict:
    """The progress bar's numbers: every player's loss (``loss``, or ``generator/loss`` and
    ``discriminator/loss``), never another metric under the name ``loss``."""
    losses = {k.split("/")[0] if "/" in k else k: v for k, v in means.items() if k == "loss" or k.endswith("/loss")}
    return {k[:4] if k != "loss" else k: f"{v:.4g}" for k, v in losses.items()}


def config_warnings(cfg: TrainConfig) -> list[str]:
    """Settings that quietly spoil a run: a warm-up that outlasts it, an EMA horizon longer than it."""
    out = []
    if cfg.warmup_steps >= cfg.steps:
        out.append(f"warmup_steps={cfg.warmup_steps} >= steps={cfg.steps}: the learning rate never reaches "
                   f"lr={cfg.lr:g}; lower warmup_steps or train longer")
    if cfg.ema_decay > 0 and 1.0 / (1.0 - cfg.ema_decay) > cfg.steps:
        out.append(f"ema_decay={cfg.ema_decay:g} averages over ~{1.0 / (1.0 - cfg.ema_decay):.0f} steps, more than "
                   f"steps={cfg.steps}; the EMA warm-up keeps samples sensible, but set ema_decay=0 or lower it for "
                   "a run this short")
    return out


def fit(model, dataset: Dataset, cfg: TrainConfig, workdir: str, *, mesh=None, progress: bool = True,
        evaluate: bool = True, run_info: dict | None = None, before_first_save=None) -> dict:
    """Trains ``model`` on ``dataset`` to ``cfg.steps``, resuming from ``workdir``'s newest intact checkpoint.

    Everything is checked (work dir writable, checkpoint of this model and within ``cfg.steps``, no other
    training holding the work dir) before anything is written. Writes to ``workdir``: ``checkpoints/``
    (orbax, keep-N), ``metrics.jsonl`` and ``tensorboard/`` (means over each ``log_every`` interval, the
    learning rate, wall time and examples/s without compilation), ``samples.png`` (``samples.txt`` for
    text; at the end and every ``sample_every`` steps) and ``results.json``. ``before_first_save(start)``
    is called just before this call's first checkpoint (the CLI writes the run record then, so a command
    whose run diverges at once leaves no trace). SIGTERM or Ctrl-C saves a checkpoint and raises
    :class:`~gm_jax.train.preemption.TrainingStopped`.

    Returns the results dict (also written to results.json).
    """
    mesh = mesh or parallel.make_mesh()
    parallel.check_batch_size(cfg.batch_size, mesh)
    check_writable(workdir)
    if jax.process_index() == 0:
        RunLock.check_free(workdir)
    spec = dataset.spec
    if cfg.hflip and spec.kind != "image":
        raise GMJaxError(f"hflip=true flips images; {spec.name} holds {spec.kind}: drop --set hflip=true")
    meta = {"model": (run_info or {}).get("model", type(model).__name__.lower()), "dataset": spec.name}
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=cfg.keep_checkpoints)
    state, start, damaged = _resume(model, dataset, cfg, workdir, ckpt, initial_state(model, dataset, cfg, mesh), meta)
    feeder = Feeder(dataset, cfg, mesh)
    feeder.indices(start)  # checks batch_size against the data now, before anything is written
    step = make_train_step(model, make_optimizers(model, cfg), cfg.ema_decay, hflip=cfg.hflip)
    metric_shapes = _metric_shapes(step, cfg, state, dataset)
    run_steps = compile_steps(step, mesh, feeder)
    zeros = lambda: parallel.put_replicated(
        jax.tree_util.tree_map(lambda m: jnp.zeros(m.shape, m.dtype), metric_shapes), mesh)
    is_main = jax.process_index() == 0
    source = sample_source(model, dataset, cfg.num_samples)
    sample_fn = jax.jit(lambda v, k: model.sample(v, k, cfg.num_samples, **source))
    lrs = _learning_rates(model, cfg)
    first_save = [before_first_save]
    for warning in config_warnings(cfg) if is_main else ():
        _say(f"warning: {warning}")

    def save(step):
        _check_finite(state, ckpt, workdir)
        if first_save[0] is not None:
            first_save.pop()(start)
            first_save.append(None)
        ckpt.save(step, state, {**meta, "step": step})

    evaluator = PeriodicEvaluator(model, dataset, cfg, mesh) if cfg.eval_every else None

    def write_samples(step, also=None):  # one fixed key, so successive files show the model change
        if can_save_samples(spec):  # every process runs the program (multi-controller JAX); the first writes
            samples = parallel.to_host(sample_fn(eval_variables(state), jax.random.key(cfg.seed + 1)))
            if not is_main:
                return
            for path in (os.path.join(workdir, samples_filename(spec)), also):
                if path:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    save_samples(samples, spec, path)

    def evaluate_now(step):
        record = evaluator(eval_variables(state), step)
        if log is not None:
            log.write({"step": step, **record})
        samples_path = evaluation_samples_path(workdir, step, samples_filename(spec))
        write_samples(step, also=samples_path)
        if log is not None and os.path.isfile(samples_path):
            log.write_samples(samples_path, step)
        return record

    with RunLock(workdir) if is_main else contextlib.nullcontext():
        if ckpt.latest_step() != (start if start else None) and not damaged:
            raise GMJaxError(f"{workdir} changed while this run was starting (another training?); run again")
        if damaged and is_main:
            moved = ckpt.set_aside(damaged, os.path.join(workdir, "damaged_checkpoints"))
            _say(f"moved the damaged checkpoint(s) to {', '.join(moved)}")
        log = MetricsLog(workdir, start) if is_main else None
        bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and is_main), dynamic_ncols=True)
        sums, logged, t_start = zeros(), start, time.perf_counter()
        wall_before = log.last("wall_s", 0.0) if log is not None else 0.0  # a resumed run's clock continues
        t_last, s_last = t_start, start
        try:
            with StopRequest() as stop:
                per_dispatch, s = cfg.steps_per_dispatch, start
                while s < cfg.steps:
                    # dispatches end on multiples of per_dispatch (a run stopped elsewhere realigns) and at the end
                    count = min(per_dispatch - s % per_dispatch, cfg.steps - s)
                    state, sums = run_steps(state, sums, s, count)
                    done = s + count
                    if s == start:  # the first dispatch compiled: time the rest
                        jax.block_until_ready(sums)
                        t_last, s_last = time.perf_counter(), done
                    if done % cfg.log_every == 0 or done == cfg.steps:
                        _check_finite(state, ckpt, workdir)
                        means = {k: float(v) / (done - logged) for k, v in jax.device_get(sums).items()}
                        sums, logged = zeros(), done
                        now = time.perf_counter()
                        rate = (done - s_last) * cfg.batch_size / (now - t_last) if done > s_last and now > t_last else None
                        t_last, s_last = now, done
                        record = {"step": done, **means, **{k: float(f(done - 1)) for k, f in lrs.items()},
                                  "wall_s": wall_before + now - t_start, **({"examples_per_s": rate} if rate else {})}
                        if log is not None:
                            log.write(record)
                        bar.set_postfix(**_bar_losses(means), **({"ex_s": f"{rate:.0f}"} if rate else {}))
                    t_pause = time.perf_counter()  # checkpoints, samples and evaluations are not training
                    if done % cfg.checkpoint_every == 0 and done != cfg.steps:
                        save(done)
                    if cfg.sample_every and done % cfg.sample_every == 0:
                        write_samples(done)
                    if evaluator is not None and done % cfg.eval_every == 0:
                        evaluate_now(done)
                    t_last += time.perf_counter() - t_pause
                    bar.update(count)
                    s = done
                    if done != cfg.steps and stop.requested(done):
                        save(done)
                        ckpt.wait()
                        raise TrainingStopped(f"{stop.name()} at step {done}: saved a checkpoint in {workdir}; run "
                                              "the same command to resume", stop.signum)
            train_seconds = time.perf_counter() - t_start
            save(cfg.steps)
            ckpt.wait()
        finally:
            bar.close()
            feeder.close()
            ckpt.close()
            if log is not None:
                log.close()
    with StopAtOnce(f"after training: step {cfg.steps} is saved in {workdir}; `gm-jax evaluate --workdir "
                    f"{workdir}` computes the test numbers"):
        write_samples(cfg.steps)
        results = {
            **meta,
            "steps": cfg.steps,
            "num_params": num_params(state.params),
            "train_seconds_this_run": train_seconds,
        }
        if evaluate:
            results.update(evaluation(model, dataset, state, cfg, mesh, progress=progress))
    if is_main:
        write_json(os.path.join(workdir, "results.json"), results)
    return results


def evaluation(model, dataset: Dataset, state: TrainState, cfg: TrainConfig, mesh, *, progress: bool = True) -> dict:
    """The final evaluation written to results.json: test NLL (nats, bits/dim) for likelihood models."""
    out = {}
    if model.has_log_prob:
        out.update(evaluate_log_likelihood(model, eval_variables(state), dataset,
                                           jax.random.key(cfg.seed + 2), mesh, cfg.eval_batch_size,
                                           cfg.eval_max_examples, progress=progress))
    return out


def restore_state(model, dataset: Dataset, cfg: TrainConfig, workdir: str, mesh=None, *,
                  step: int | None = None) -> TrainState:
    """A run's checkpointed state (for ``sample`` and ``evaluate``): ``step``, or the newest intact one,
    saying on stderr which damaged checkpoints it skipped. Reads only."""
    mesh = mesh or parallel.make_mesh()
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=cfg.keep_checkpoints)
    try:
        restored = ckpt.restore(abstract_state(model, dataset, cfg, mesh), step)
    finally:
        ckpt.close()
    for s, reason in restored.damaged:
        _say(f"checkpoint step {s} in {ckpt.directory} is damaged ({reason}); using step {restored.step}")
    return restored.state
