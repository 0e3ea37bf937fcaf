"""Atomic, resumable checkpoints with orbax.

Each save writes the TrainState (arrays) and a small JSON record into a temporary directory that orbax
renames into place only when complete, so a run killed mid-save leaves the previous checkpoints intact
and :meth:`Checkpointer.restore` only ever sees complete ones.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

__all__ = ["Checkpointer"]


class Checkpointer:
    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        """Saves (asynchronously) unless a checkpoint of this step exists."""
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         meta=ocp.args.JsonSave(meta)))

    def restore(self, like_state, step: int | None = None):
        """Restores (state, meta) of ``step`` (default latest) with the shapes/shardings of ``like_state``."""
        step = self.latest_step() if step is None else step
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like_state)
        out = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                  meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
