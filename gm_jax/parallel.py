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
           "put_replicated", "to_host", "initialize_processes", "check_same_command", "lost_peer"]

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A 1-D data mesh over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh, *, batch_axis: int = 0) -> NamedSharding:
    """Shards the batch axis (the first, or ``batch_axis`` of stacked batches [steps, batch, ...]) over the
    mesh."""
    return NamedSharding(mesh, P(*(None,) * batch_axis, DATA_AXIS))


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


def global_batch(local_batch, mesh: Mesh, *, batch_axis: int = 0):
    """Assembles per-process numpy batches into one global array sharded on the batch axis (the first, or
    ``batch_axis``)."""
    sharding = batch_sharding(mesh, batch_axis=batch_axis)
    return jax.tree_util.tree_map(lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)),
                                  local_batch)


def put_replicated(tree, mesh: Mesh):
    """Places a (host) pytree on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def to_host(x) -> np.ndarray:
    """A (possibly multi-process, batch-sharded) array as one numpy array on every process: the shards of
    the other processes are gathered (a collective, so every process must call it)."""
    if jax.process_count() > 1 and not getattr(x, "is_fully_replicated", True):
        from jax.experimental import multihost_utils

        x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))


def initialize_processes(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Joins this process to a job of several (``jax.distributed.initialize``) before anything uses JAX.

    ``coordinator`` "HOST:PORT" with ``num_processes`` and ``process_id``: explicit; "auto": what
    ``jax.distributed`` detects from the cluster (SLURM, TPU pods, Kubernetes/MPI launchers); None: a single
    process (the other two must then be None too). On CPU the collectives go through gloo."""
    if coordinator is None:
        if num_processes is not None or process_id is not None:
            raise GMJaxError("--num-processes and --process-id need --coordinator HOST:PORT (or --coordinator auto)")
        return
    if coordinator != "auto":
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise GMJaxError(f"--coordinator {coordinator}: expected HOST:PORT (e.g. 10.0.0.1:1234) or auto")
        if num_processes is None or process_id is None:
            raise GMJaxError("--coordinator HOST:PORT needs --num-processes N and --process-id I")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise GMJaxError(f"--process-id must be in [0, --num-processes), got {process_id} of {num_processes}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        if coordinator == "auto":
            jax.distributed.initialize()
        else:
            jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    except (RuntimeError, ValueError) as e:
        detail = str(e).splitlines()[0][:200].rstrip(".") if str(e) else type(e).__name__
        if "Failed to start RPC server" in str(e):  # process 0 hosts the coordinator on that port
            raise GMJaxError(f"could not start the job's coordinator at --coordinator {coordinator} (the port is "
                             "taken?); pick a free port and pass it to every process") from None
        fix = ("outside SLURM, a TPU pod or another launcher jax.distributed knows, pass --coordinator HOST:PORT "
               "--num-processes N --process-id I" if coordinator == "auto" else "check the address and that "
               "process 0 runs")
        raise GMJaxError(f"could not join the job at --coordinator {coordinator} ({detail}); {fix}") from None


def check_same_command(command: str) -> None:
    """Raises one line unless every process of the job was given the same ``command`` (what must agree, as
    text), compared through one all-gather of its hash; processes that disagree (other --steps, --set, ...)
    would otherwise hang at a collective or mix two runs. Every process must call it."""
    if jax.process_count() == 1:
        return
    import hashlib

    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(command.encode()).digest(), np.uint8)
    hashes = np.asarray(multihost_utils.process_allgather(digest))  # [processes, 32]
    differ = [i for i in range(len(hashes)) if not np.array_equal(hashes[i], hashes[0])]
    if differ:
        raise GMJaxError(f"process {differ[0]} of this job was started with another command than process 0; give "
                         "every process the same command (only --process-id, --data-dir, --compilation-cache and "
                         "--no-progress may differ)")


# What JAX's collectives and coordination service say when another process of the job has died.
_LOST_PEER_SIGNS = ("Connection reset by peer", "Connection closed by peer", "Socket closed", "heartbeat timeout",
                    "coordination service", "Gloo ")


def lost_peer(error: BaseException) -> str | None:
    """A short reason if ``error`` is a collective or coordination failure of a multi-process job (another
    process died or became unreachable), else None."""
    text = str(error)
    for sign in _LOST_PEER_SIGNS:  # in order: the most specific phrase names the reason
        if sign in text:
            return text[text.index(sign):].splitlines()[0][:120].rstrip(". ")
    return None
