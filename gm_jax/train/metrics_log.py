"""Where a run's numbers go: ``metrics.jsonl`` (one JSON record per log point) and TensorBoard event
files in ``tensorboard/`` (written with tensorboardX, so no TensorFlow is needed), which also show the
samples of each evaluation.

On resume both are cut back to the restored step, so no step appears twice: the JSON log is rewritten and
the event writer starts with ``purge_step`` = restored step + 1, which tells TensorBoard to drop the old events
at that step and after (it keeps only steps < purge_step), so the records at the restored step stay, as in the
JSON log. Each writer's file name ends in its start time in ns: tensorboardX names files by the second and opens
them with 'wb', so a writer reopened within the same second would otherwise overwrite the earlier events.
"""

from __future__ import annotations

import json
import os
import time

from gm_jax.train.rundir import truncate_log

__all__ = ["MetricsLog", "METRICS_FILE", "TENSORBOARD_DIR"]

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def _event_writer(workdir: str, start_step: int):
    from tensorboardX import SummaryWriter

    return SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR), purge_step=start_step + 1 if start_step else None,
                         # tensorboardX names files by the second and opens them "wb": a resume within the
                         # same second would overwrite the earlier file without a unique suffix
                         flush_secs=30, filename_suffix=f".{time.time_ns()}")


class MetricsLog:
    """Appends records ``{"step": int, name: float, ...}``; training metrics are tagged ``train/NAME`` in
    TensorBoard, names that already carry a prefix (``eval/nll_nats``) keep it."""

    def __init__(self, workdir: str, start_step: int, *, tensorboard: bool = True):
        self.path = os.path.join(workdir, METRICS_FILE)
        truncate_log(self.path, start_step)
        self._writer = None
        # opened at the first record, so a run stopped before it leaves no event file
        self._open_writer = (lambda: _event_writer(workdir, start_step)) if tensorboard else None

    def last(self, name: str, default=None):
        """The value of ``name`` in the newest record that has it (e.g. ``wall_s`` to continue after a resume)."""
        if not os.path.isfile(self.path):
            return default
        with open(self.path) as f:
            for line in reversed(f.read().splitlines()):
                value = json.loads(line).get(name)
                if value is not None:
                    return value
        return default

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is None and self._open_writer is not None:
            self._writer = self._open_writer()
        if self._writer is not None:
            step, now = int(record["step"]), time.time()
            for name, value in record.items():
                if name != "step" and isinstance(value, (int, float)):
                    tag = name if "/" in name and name.split("/")[0] == "eval" else f"train/{name}"
                    self._writer.add_scalar(tag, value, step, walltime=now)

    def write_samples(self, path: str, step: int, tag: str = "eval/samples") -> None:
        """Shows the sample file ``path`` (a PNG grid, or text) in TensorBoard at ``step``."""
        if self._writer is None:
            return
        if path.endswith(".png"):
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                self._writer.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")
        else:
            with open(path, encoding="utf-8") as f:
                self._writer.add_text(tag, f.read(), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
