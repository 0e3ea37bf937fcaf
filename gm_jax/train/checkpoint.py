"""Atomic, resumable checkpoints with orbax, and recovery from damaged ones.

Each save writes the TrainState (arrays) and a small JSON record into a temporary directory that orbax
renames into place only when complete, so a run killed mid-save leaves the previous checkpoints intact.
A checkpoint damaged afterwards (a truncated or corrupted file) is found at restore: :meth:`Checkpointer.restore`
falls back to the newest intact one and reports what it skipped; a checkpoint of a different model (other
shapes) is refused before any restore is tried.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import NamedTuple

import jax
import orbax.checkpoint as ocp

from gm_jax.errors import GMJaxError

__all__ = ["Checkpointer", "Restored"]


class Restored(NamedTuple):
    """What :meth:`Checkpointer.restore` gives back: the state and JSON record of ``step``, and the newer
    checkpoints it skipped as damaged, ``((step, reason), ...)``."""

    state: object
    meta: dict
    step: int
    damaged: tuple


def _path_names(path) -> tuple[str, ...]:
    """A tree path as plain names, so a dataclass field, a dict key and a tuple index compare alike
    (orbax stores the state's dataclass fields as dict keys)."""
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _shapes(tree) -> dict:
    return {_path_names(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def _reason(error: Exception) -> str:
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{type(error).__name__}: {line[:160]}"


def _silence_abandoned_reads() -> None:
    """After a failed restore orbax abandons the checkpoint's other reads; as they finish they raise into a
    closed event loop or a collected coroutine, and Python prints each (hundreds of lines) even though the
    failure was handled (through sys.excepthook, sys.unraisablehook or asyncio's logger). Filter exactly
    those from the three; anything else is still reported. Also orbax's error for an unreadable
    ``_CHECKPOINT_METADATA``, which restoring does not need."""
    if getattr(sys.excepthook, "_gm_jax_filter", False):
        return
    base_except, base_unraisable = sys.excepthook, sys.unraisablehook

    def abandoned(value) -> bool:
        text = str(value)
        return text == "Event loop is closed" or "Encountered error while reading array" in text

    def excepthook(kind, value, tb):
        if not abandoned(value):
            base_except(kind, value, tb)

    def unraisablehook(info):
        if not abandoned(info.exc_value):
            base_unraisable(info)

    def log_filter(record) -> bool:  # asyncio logs "Task exception was never retrieved" for each
        return not (abandoned(record.getMessage()) or (record.exc_info and abandoned(record.exc_info[1])))

    def metadata_filter(record) -> bool:  # orbax's own bookkeeping (creation time); the state restores without it
        return "Failed to json parse Metadata file" not in record.getMessage()

    excepthook._gm_jax_filter = True
    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook
    logging.getLogger("asyncio").addFilter(log_filter)
    logging.getLogger("absl").addFilter(metadata_filter)


class Checkpointer:
    """Keeps the newest ``keep`` checkpoints of a run in ``directory`` (created at the first save)."""

    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self._open()

    def _open(self):
        _silence_abandoned_reads()
        options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=False)
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"),
                                              item_handlers=handlers)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps()) if os.path.isdir(self.directory) else []

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, meta: dict) -> None:
        """Saves (asynchronously) unless a checkpoint of this step exists."""
        if step in self.all_steps():
            return
        os.makedirs(self.directory, exist_ok=True)
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         meta=ocp.args.JsonSave(meta)))

    def read_meta(self, step: int) -> dict | None:
        """The JSON record saved with ``step`` (model, dataset, step), or None if it cannot be read."""
        try:
            out = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            return dict(out["meta"] or {})
        except Exception:  # a damaged record is reported by restore()
            return None

    def _check_same_shapes(self, step: int, saved_tree, like_state) -> None:
        saved, wanted = _shapes(saved_tree), _shapes(like_state)
        if saved == wanted:
            return
        diff = sorted(set(saved) ^ set(wanted)) or sorted(k for k in saved if saved[k] != wanted[k])
        where = "/".join(diff[0])
        part = {"opt_state": "the optimizer state (optimizer, grad_clip, weight_clip)",
                "ema_params": "the EMA (ema_decay 0 or not)", "params": "the model's parameters"}.get(diff[0][0])
        if part:
            raise GMJaxError(f"the checkpoint of step {step} in {self.directory} holds a different model or optimizer: "
                             f"{part} differs from the new settings' (at '{where}'); resume it with its own "
                             "settings, or train into a new --workdir")
        detail = (f"'{where}' has shape {saved[diff[0]]} there and {wanted[diff[0]]} here" if diff[0] in saved
                  and diff[0] in wanted else f"'{where}' is only in the {'checkpoint' if diff[0] in saved else 'new'} state")
        raise GMJaxError(f"the checkpoint of step {step} in {self.directory} holds a different model or optimizer "
                         f"({detail}); resume it with its own config, or train into a new --workdir")

    def restore(self, like_state, step: int | None = None) -> Restored:
        """Restores ``step`` (default: the newest intact checkpoint) with the shapes and shardings of
        ``like_state``. A damaged checkpoint is skipped when ``step`` is None and refused when it is asked
        for; a checkpoint whose shapes differ from ``like_state`` is refused. Raises GMJaxError with one line.
        """
        steps = self.all_steps()
        if not steps:
            raise GMJaxError(f"no checkpoint in {self.directory}; train first with `gm-jax train`")
        if step is not None and step not in steps:
            raise GMJaxError(f"no checkpoint of step {step} in {self.directory}; saved steps: "
                             f"{', '.join(map(str, steps))}")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like_state)
        damaged = []
        for s in [step] if step is not None else steps[::-1]:
            try:
                saved_tree = self._manager.item_metadata(s)["state"]
                if saved_tree is None:
                    raise ValueError("no array metadata")
            except Exception as e:  # orbax / tensorstore raise many types for unreadable files
                damaged.append((s, _reason(e)))
                continue
            self._check_same_shapes(s, saved_tree, like_state)
            try:
                out = self._manager.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                       meta=ocp.args.JsonRestore()))
            except Exception as e:
                damaged.append((s, _reason(e)))
                continue
            return Restored(out["state"], dict(out["meta"] or {}), s, tuple(damaged))
        listing = "; ".join(f"step {s}: {r}" for s, r in damaged)
        if step is not None:
            others = ", ".join(str(s) for s in steps if s != step) or "none"
            raise GMJaxError(f"the checkpoint of step {step} in {self.directory} is damaged ({listing}); choose "
                             f"another --step (saved: {others}) or leave --step out for the newest intact one")
        raise GMJaxError(f"no intact checkpoint in {self.directory} ({listing}); train into a new --workdir")

    def set_aside(self, steps, destination: str) -> list[str]:
        """Moves the checkpoints of ``steps`` (damaged ones) out of the way into ``destination``, so new
        saves of those steps are not skipped; returns the new paths."""
        moved = []
        os.makedirs(destination, exist_ok=True)
        for s in steps:
            target = os.path.join(destination, f"{s}-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.move(os.path.join(self.directory, str(s)), target)
            moved.append(target)
        self._manager.close()
        self._open()
        return moved

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
