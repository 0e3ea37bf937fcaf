"""Feeding the jitted training program: the global batch of each step, and ``k`` steps per dispatch.

The batch of step ``t`` is a function of (seed, t) only (:func:`gm_jax.data.loading.batch_indices`), so a
resumed run, a run over more devices or processes, and a run that dispatches several steps at once all see
the same batches. Data too large for the device streams from disk through a grain pipeline over the step
numbers: worker threads read each process's rows of the coming steps (``prefetch_batches`` ahead) while the
device trains, and the order stays that of the steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax import parallel
from gm_jax.data.loading import Dataset, batch_indices
from gm_jax.train.config import TrainConfig

__all__ = ["Feeder", "compile_steps"]


class Feeder:
    """The global batches of steps: gathered on device when the data fits (``max_device_bytes``), else read
    from disk, each process reading only its rows."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig, mesh):
        self.dataset, self.cfg, self.mesh = dataset, cfg, mesh
        self.n = dataset.size("train")
        probe = dataset.read("train", [0])
        bytes_per_example = sum(v.nbytes for v in probe.values())
        self.on_device = bytes_per_example * self.n <= cfg.max_device_bytes
        self.data, self._ahead, self._next_step = None, None, None
        if self.on_device:
            host = dataset.read("train")
            self.data = parallel.put_replicated({k: jnp.asarray(v) for k, v in host.items()}, mesh)

    def indices(self, step: int) -> np.ndarray:
        """[batch_size] example indices of step ``step``."""
        return batch_indices(self.cfg.seed, step, self.n, self.cfg.batch_size)

    def read_step(self, step: int) -> dict[str, np.ndarray]:
        """This process's rows of the batch of ``step``, read from disk."""
        return self.dataset.read("train", parallel.local_rows(self.indices(step), self.mesh))

    def host_batches(self, first: int, count: int):
        """The batches of steps first .. first + count - 1 read from disk, stacked: [count, batch_size, ...],
        sharded on the batch axis. Consecutive calls are served by one read-ahead pipeline."""
        if self.cfg.prefetch_batches == 0:
            rows = [self.read_step(t) for t in range(first, first + count)]
        else:
            if self._ahead is None or self._next_step != first:  # the first call, or a jump: start reading at first
                self.close()
                self._ahead = iter(_read_ahead(self.read_step, first, self.cfg.steps, self.cfg.prefetch_batches))
            rows = [next(self._ahead) for _ in range(count)]
            self._next_step = first + count
        stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *rows)
        return parallel.global_batch(stacked, self.mesh, batch_axis=1)

    def close(self) -> None:
        """Stops the read-ahead threads (a no-op when none run)."""
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None


def _read_ahead(read_step, first: int, last: int, depth: int):
    """grain's iterator over read_step(t) for t = first .. last - 1, in order, with up to ``depth`` steps
    read ahead by as many threads (at most 16)."""
    import grain

    options = grain.ReadOptions(num_threads=min(depth, 16), prefetch_buffer_size=depth)
    return grain.MapDataset.range(first, last).map(read_step).to_iter_dataset(options)


def compile_steps(step, mesh, feeder: Feeder):
    """``run_steps(state, sums, first, count) -> (state, sums)``: steps first .. first + count - 1 in one
    jitted call (a ``lax.scan`` over their batches when count > 1), adding each step's metrics to ``sums`` on
    device, so a log point reports the mean over its interval without a transfer per step.

    ``count`` > 1 saves the per-step dispatch, which bounds small models on accelerators; every step sees the
    batch and key it would see alone. One program is compiled per distinct ``count``."""
    rep, shard = parallel.replicated(mesh), parallel.batch_sharding(mesh)

    def one(state, sums, batch):
        state, metrics = step(state, jax.lax.with_sharding_constraint(batch, shard))
        return state, jax.tree_util.tree_map(jnp.add, sums, metrics)

    def scan(state, sums, xs, batch_of):
        if jax.tree_util.tree_leaves(xs)[0].shape[0] == 1:  # a single step: no loop around it
            return one(state, sums, batch_of(jax.tree_util.tree_map(lambda x: x[0], xs)))
        body = lambda carry, x: (one(*carry, batch_of(x)), None)
        return jax.lax.scan(body, (state, sums), xs)[0]

    if feeder.on_device:
        def device_steps(state, sums, data, idx):  # idx [count, batch_size]
            return scan(state, sums, idx, lambda i: jax.tree_util.tree_map(lambda a: a[i], data))

        jitted = jax.jit(device_steps, in_shardings=(rep, rep, rep, rep), out_shardings=(rep, rep),
                         donate_argnums=(0, 1))
        return lambda state, sums, first, count: jitted(
            state, sums, feeder.data, np.stack([feeder.indices(t) for t in range(first, first + count)]))

    def host_steps(state, sums, batches):  # [count, batch_size, ...]
        return scan(state, sums, batches, lambda b: b)

    jitted = jax.jit(host_steps, in_shardings=(rep, rep, parallel.batch_sharding(mesh, batch_axis=1)),
                     out_shardings=(rep, rep), donate_argnums=(0, 1))
    return lambda state, sums, first, count: jitted(state, sums, feeder.host_batches(first, count))
