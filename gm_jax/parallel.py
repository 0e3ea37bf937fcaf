"""The device mesh and shardings. Every cross-device concern lives here, none in the maths.

Training and evaluation use a 1-D ``("data",)`` mesh over all devices (of all hosts after
``jax.distributed.initialize``): batches are sharded on their first axis, parameters and optimizer
state are replicated, and ``jax.jit`` with these shardings inserts the gradient all-reduce.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gm_jax.errors import GMJaxError

__all__ = ["DATA_AXIS", "make_mesh", "batch_sharding", "replicated", "check_batch_size", "local_rows", "global_batch",
           "put_replicated"]

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A 1-D data mesh over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Shards the first (batch) axis over the mesh."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    if batch_size % mesh.size:
        raise GMJaxError(f"{what}={batch_size} is not divisible by the {mesh.size} devices; "
                         f"use a multiple of {mesh.size} (--set {what}=N)")


def local_rows(global_indices: np.ndarray, mesh: Mesh) -> np.ndarray:
    """The rows of a global batch this process must provide (its devices' contiguous shards)."""
    n_proc = jax.process_count()
    if n_proc == 1:
        return global_indices
    per = len(global_indices) // n_proc
    i = jax.process_index()
    return global_indices[i * per:(i + 1) * per]


def global_batch(local_batch, mesh: Mesh):
    """Assembles per-process numpy batches into one global array sharded on the batch axis."""
    sharding = batch_sharding(mesh)
    return jax.tree_util.tree_map(lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)),
                                  local_batch)


def put_replicated(tree, mesh: Mesh):
    """Places a (host) pytree on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))
