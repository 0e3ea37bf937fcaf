"""A run directory's guards: one writer at a time, writable before any work, logs that agree with the
checkpoint a run resumes from, and the run record (``config.json``) with its resume history.

The run record is ``{"model", "dataset", "data_dir", "model_config", "train_config", "resumes"}``:
``model_config`` and ``train_config`` are the configs the run started with, never overwritten; each
accepted resume that changed a setting appends ``{"step", "changes": {field: [old, new]}, "model_changes": ...}``
to ``resumes``, and :func:`effective_train_config` / :func:`effective_model_config` replay them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile

from gm_jax.errors import GMJaxError

__all__ = ["RunLock", "check_writable", "truncate_log", "read_run_record", "effective_train_config",
           "effective_model_config", "resume_record", "RUN_RECORD"]

RUN_RECORD = "config.json"
# the keys of a run record and their JSON types
RECORD_KEYS = {"model": str, "dataset": str, "data_dir": str, "model_config": dict, "train_config": dict,
               "resumes": list}
LOCK_FILE = ".lock"


def _in_use(workdir: str, lock_file) -> GMJaxError:
    """The one line for a work dir another training holds; the lock file holds the holder's pid."""
    return GMJaxError(f"{workdir} is in use by another training (pid {lock_file.read().strip() or 'unknown'}); "
                      "wait for it to finish or train into another --workdir")


class RunLock:
    """An exclusive lock on a work dir held while a run trains (``with RunLock(workdir): ...``).

    The lock is ``fcntl.flock`` on ``workdir/.lock``, which holds the owner's pid: the kernel releases it
    when the owner dies, so the lock of a killed run is taken over without any clean-up.
    """

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, LOCK_FILE)
        self._file = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            f.seek(0)
            error = _in_use(os.path.dirname(self.path), f)
            f.close()
            raise error from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    @staticmethod
    def check_free(workdir: str) -> None:
        """Raises the in-use line if another training holds ``workdir``'s lock; writes nothing. Called before
        a run reads its checkpoints, which the holder may be rotating."""
        path = os.path.join(workdir, LOCK_FILE)
        if not os.path.isfile(path):
            return
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                raise _in_use(workdir, f) from None
            fcntl.flock(f, fcntl.LOCK_UN)

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
        return False


def check_writable(path: str, what: str = "--workdir") -> None:
    """Raises one line unless ``path`` (a directory, made later if missing) can be written: checked before
    any work starts, so a read-only location fails at once rather than after training."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise GMJaxError(f"{what} {path}: {probe} is a file, not a directory; choose another path")
    try:  # a real write: os.access misses read-only mounts and other processes' quotas
        fd, name = tempfile.mkstemp(dir=probe, prefix=".gm-jax-probe-")
        os.close(fd)
        os.remove(name)
    except OSError:
        raise GMJaxError(f"{what} {path}: {probe} is not writable; choose a writable location") from None


def truncate_log(path: str, last_step: int) -> int:
    """Drops the records of a JSON-lines log whose ``step`` is after ``last_step`` (steps a resumed run
    will log again) and a torn last line; rewrites atomically. Returns the number of records dropped."""
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        lines = f.read().splitlines()
    kept = []
    for line in lines:
        try:
            step = int(json.loads(line)["step"])
        except (json.JSONDecodeError, TypeError, KeyError, ValueError):
            continue  # a line torn by a kill mid-write, or not a record
        if step <= last_step:
            kept.append(line)
    if len(kept) != len(lines):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(line + "\n" for line in kept))
        os.replace(tmp, path)
    return len(lines) - len(kept)


def read_run_record(workdir: str, filename: str = RUN_RECORD, *,
                    required=("model", "dataset", "model_config", "train_config")) -> dict | None:
    """The run record ``workdir/filename`` (None if there is none), checked to be a JSON object with the
    ``required`` keys and config sections that are objects."""
    path = os.path.join(workdir, filename)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            run = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GMJaxError(f"{path} is not valid JSON ({getattr(e, 'msg', e)}); restore it, or train into a new "
                         "--workdir") from None
    if not isinstance(run, dict):
        raise GMJaxError(f"{path} is not a gm-jax run record (a JSON object); restore it, or train into a new --workdir")
    missing = [k for k in required if k not in run]
    unknown = sorted(set(run) - set(RECORD_KEYS))
    bad = [k for k, kind in RECORD_KEYS.items() if k in run and run[k] is not None and not isinstance(run[k], kind)]
    if not bad and isinstance(run.get("resumes"), list) and not all(isinstance(r, dict) for r in run["resumes"]):
        bad = ["resumes"]
    if missing or unknown or bad:
        problem = (f"missing {', '.join(missing)}" if missing else f"unknown key {', '.join(map(repr, unknown))}"
                   if unknown else f"{', '.join(bad)} of the wrong type")
        raise GMJaxError(f"{path} is not a gm-jax run record ({problem}); fix or restore it")
    return run


def effective_train_config(run: dict) -> dict:
    """The run's training fields now: its starting ``train_config`` with every resume's changes applied."""
    values = dict(run["train_config"])
    for resume in run.get("resumes", []):
        values.update({k: new for k, (_, new) in resume.get("changes", {}).items()})
    return values


def effective_model_config(run: dict) -> dict:
    """The run's model fields now: its ``model_config`` with every resume's changes of sampling and evaluation
    settings applied."""
    values = dict(run["model_config"])
    for resume in run.get("resumes", []):
        values.update({k: new for k, (_, new) in resume.get("model_changes", {}).items()})
    return values


def resume_record(run: dict, model_config: dict, train_config: dict, step: int, *,
                  inference_fields=frozenset()) -> dict:
    """The run record after an accepted resume at ``step`` with the given configs.

    Model settings must stay the run's (a change would make it another model), except ``inference_fields``
    (sampling and evaluation settings); ``seed`` stays (it fixes the data order and every key). Accepted
    changes are appended to the resume history (training fields under ``changes``, model fields under
    ``model_changes``), the original configs are kept.
    """
    current_model = effective_model_config(run)
    changed = sorted(k for k in set(model_config) | set(current_model) if model_config.get(k) != current_model.get(k))
    refused = [k for k in changed if k not in inference_fields]
    if refused:
        raise GMJaxError(f"resuming a {run['model']} run with other model settings ({', '.join(refused)}) "
                         "would make it another model; train into a new --workdir")
    current = effective_train_config(run)
    if train_config.get("seed") != current.get("seed"):
        raise GMJaxError(f"the run was trained with seed={current.get('seed')}; a resumed run keeps its seed "
                         "(it fixes the data order and every key); train into a new --workdir for another seed")
    entry = {"step": step}
    train_changes = {k: [current.get(k), v] for k, v in train_config.items() if current.get(k) != v}
    if train_changes:
        entry["changes"] = train_changes
    if changed:
        entry["model_changes"] = {k: [current_model.get(k), model_config.get(k)] for k in changed}
    if len(entry) == 1:
        return run
    return {**run, "resumes": [*run.get("resumes", []), entry]}
