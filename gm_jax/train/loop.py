"""The training loop every model runs: data feeding, jitted steps, logging, checkpoints, evaluation."""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from gm_jax import parallel
from gm_jax.data.loading import Dataset, batch_indices
from gm_jax.errors import GMJaxError
from gm_jax.metrics.likelihood import evaluate_log_likelihood
from gm_jax.models.base import accepts_kwarg, num_params, param_groups
from gm_jax.train.checkpoint import Checkpointer
from gm_jax.train.config import TrainConfig
from gm_jax.train.optim import make_optimizer
from gm_jax.train.step import ALL, TrainState, init_train_state, make_train_step
from gm_jax.visualize import can_save_samples, samples_filename, save_samples

__all__ = ["fit", "evaluation", "restore_state", "eval_variables", "initial_state", "make_optimizers",
           "sample_source", "write_json", "TrainingDiverged"]


class TrainingDiverged(GMJaxError):
    """A loss or gradient became non-finite; the last good checkpoint is kept."""


def make_optimizers(model, cfg: TrainConfig) -> dict:
    """One optax optimizer per parameter group; a model may override TrainConfig fields per group
    through ``group_train_overrides = {group: {"lr": ...}}`` (e.g. TTUR learning rates)."""
    overrides = getattr(model, "group_train_overrides", {})
    return {group or ALL: make_optimizer(cfg, **overrides.get(group, {})) for group, _ in param_groups(model)}


def eval_variables(state: TrainState) -> dict:
    """The variables used for sampling and evaluation: the EMA parameters when EMA is on."""
    params = state.ema_params if jax.tree_util.tree_leaves(state.ema_params) else state.params
    return {"params": params, "state": state.model_state}


def initial_state(model, dataset: Dataset, cfg: TrainConfig, mesh) -> TrainState:
    key = jax.random.key(cfg.seed)
    example = {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(min(2, dataset.size("train")))).items()}
    variables = model.init(jax.random.fold_in(key, 1), example)
    state = init_train_state(variables, make_optimizers(model, cfg), key, ema=cfg.ema_decay > 0)
    return parallel.put_replicated(state, mesh)


class _Feeder:
    """Yields the global batch of a step: gathered on device when the data fits, else read from disk."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig, mesh):
        self.dataset, self.cfg, self.mesh = dataset, cfg, mesh
        self.n = dataset.size("train")
        probe = dataset.read("train", [0])
        bytes_per_example = sum(v.nbytes for v in probe.values())
        self.on_device = bytes_per_example * self.n <= cfg.max_device_bytes
        self.data = None
        if self.on_device:
            host = dataset.read("train")
            self.data = parallel.put_replicated({k: jnp.asarray(v) for k, v in host.items()}, mesh)

    def indices(self, step: int) -> np.ndarray:
        return batch_indices(self.cfg.seed, step, self.n, self.cfg.batch_size)

    def host_batch(self, step: int):
        rows = parallel.local_rows(self.indices(step), self.mesh)
        return parallel.global_batch(self.dataset.read("train", rows), self.mesh)


def _compile_step(model, cfg: TrainConfig, mesh, feeder: _Feeder):
    step = make_train_step(model, make_optimizers(model, cfg), cfg.ema_decay)
    rep, shard = parallel.replicated(mesh), parallel.batch_sharding(mesh)
    if feeder.on_device:
        def device_step(state, data, idx):
            batch = jax.tree_util.tree_map(lambda a: a[idx], data)
            batch = jax.lax.with_sharding_constraint(batch, shard)
            return step(state, batch)

        jitted = jax.jit(device_step, in_shardings=(rep, rep, rep), out_shardings=(rep, rep), donate_argnums=0)
        return lambda state, s: jitted(state, feeder.data, feeder.indices(s))
    jitted = jax.jit(step, in_shardings=(rep, shard), out_shardings=(rep, rep), donate_argnums=0)
    return lambda state, s: jitted(state, feeder.host_batch(s))


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


def fit(model, dataset: Dataset, cfg: TrainConfig, workdir: str, *, mesh=None, progress: bool = True,
        evaluate: bool = True, run_info: dict | None = None) -> dict:
    """Trains ``model`` on ``dataset`` to ``cfg.steps``, resuming from ``workdir``'s latest checkpoint.

    Writes to ``workdir``: ``checkpoints/`` (orbax, keep-N), ``metrics.jsonl`` (every ``log_every``
    steps), ``samples.png`` (``samples.txt`` for text; at the end and every ``sample_every`` steps) and
    ``results.json``.

    Returns the results dict (also written to results.json).
    """
    mesh = mesh or parallel.make_mesh()
    parallel.check_batch_size(cfg.batch_size, mesh)
    os.makedirs(workdir, exist_ok=True)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=cfg.keep_checkpoints)
    state = initial_state(model, dataset, cfg, mesh)
    if ckpt.latest_step() is not None:
        state, _ = ckpt.restore(state)
    start = int(jax.device_get(state.step))
    feeder = _Feeder(dataset, cfg, mesh)
    run_step = _compile_step(model, cfg, mesh, feeder)
    spec = dataset.spec
    is_main = jax.process_index() == 0
    meta = {"model": (run_info or {}).get("model", type(model).__name__.lower()), "dataset": spec.name}

    source = sample_source(model, dataset, cfg.num_samples)
    sample_fn = jax.jit(lambda v, k: model.sample(v, k, cfg.num_samples, **source))

    def save(step):
        _check_finite(state, ckpt, workdir)
        ckpt.save(step, state, {**meta, "step": step})

    def write_samples(step):
        if is_main and can_save_samples(spec):
            samples = sample_fn(eval_variables(state), jax.random.fold_in(jax.random.key(cfg.seed + 1), step))
            save_samples(jax.device_get(samples), spec, os.path.join(workdir, samples_filename(spec)))
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and is_main), dynamic_ncols=True)
    t_last, s_last, t_start = time.perf_counter(), start, time.perf_counter()
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    for s in range(start, cfg.steps):
        state, metrics = run_step(state, s)
        done = s + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            _check_finite(state, ckpt, workdir)
            now = time.perf_counter()
            rate = (done - s_last) * cfg.batch_size / max(now - t_last, 1e-9)
            t_last, s_last = now, done
            record = {"step": done, "examples_per_s": rate, **metrics}
            if is_main:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{metrics['loss' if 'loss' in metrics else next(iter(metrics))]:.4g}",
                            ex_s=f"{rate:.0f}")
        if done % cfg.checkpoint_every == 0 and done != cfg.steps:
            save(done)
        if cfg.sample_every and done % cfg.sample_every == 0:
            write_samples(done)
        bar.update(1)
    bar.close()
    train_seconds = time.perf_counter() - t_start
    save(cfg.steps)
    ckpt.wait()
    ckpt.close()
    write_samples(cfg.steps)
    results = {
        **meta,
        "steps": cfg.steps,
        "num_params": num_params(state.params),
        "train_seconds_this_run": train_seconds,
    }
    if evaluate:
        results.update(evaluation(model, dataset, state, cfg, mesh))
    if is_main:
        write_json(os.path.join(workdir, "results.json"), results)
    return results


def evaluation(model, dataset: Dataset, state: TrainState, cfg: TrainConfig, mesh) -> dict:
    """The final evaluation written to results.json: test NLL (nats, bits/dim) for likelihood models."""
    out = {}
    if model.has_log_prob:
        out.update(evaluate_log_likelihood(model, eval_variables(state), dataset,
                                           jax.random.key(cfg.seed + 2), mesh, cfg.eval_batch_size,
                                           cfg.eval_max_examples))
    return out


def restore_state(model, dataset: Dataset, cfg: TrainConfig, workdir: str, mesh=None) -> TrainState:
    """The latest checkpointed state of a run (for ``sample`` and ``evaluate``)."""
    mesh = mesh or parallel.make_mesh()
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=cfg.keep_checkpoints)
    if ckpt.latest_step() is None:
        raise GMJaxError(f"no checkpoint in {workdir}/checkpoints; train first with `gm-jax train`")
    state, _ = ckpt.restore(initial_state(model, dataset, cfg, mesh))
    ckpt.close()
    return state
