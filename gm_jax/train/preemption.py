"""Stopping a run cleanly on SIGTERM (what schedulers and preemptible VMs send) or Ctrl-C.

The handler only records the request; the training loop polls it between steps, saves a checkpoint and
raises :class:`TrainingStopped`. A second Ctrl-C stops at once (the newest checkpoint is kept).
"""

from __future__ import annotations

import signal
import threading

import jax

from gm_jax.errors import GMJaxError

__all__ = ["StopRequest", "StopAtOnce", "TrainingStopped"]


class TrainingStopped(GMJaxError):
    """Training stopped on a signal after saving a checkpoint; ``exit_code`` is 128 + the signal number
    (143 for SIGTERM, 130 for SIGINT), as a shell reports a process ended by that signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class _SignalHandlers:
    """Installs ``self._handle`` for ``self.signals()`` (SIGTERM and SIGINT) inside ``with``; the previous
    handlers come back on exit. Off the main thread (where Python allows no signal handlers) it installs
    nothing."""

    def signals(self) -> tuple:
        return signal.SIGTERM, signal.SIGINT

    def _handle(self, signum, frame):
        raise NotImplementedError  # each subclass says what a signal does

    def __enter__(self):
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for s in self.signals():
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False


class StopRequest(_SignalHandlers):
    """``with StopRequest() as stop: ... if stop.requested(step): ...``: a signal only records the request,
    which the loop polls between steps. Off the main thread it never fires.

    In a job of several processes SIGTERM is left to JAX's preemption notifier (``jax.distributed`` installs
    it), whose service makes every process stop at the same step; a Python handler would replace it."""

    def __init__(self):
        self.signum = None

    def signals(self) -> tuple:
        return (signal.SIGINT,) if jax.process_count() > 1 else (signal.SIGTERM, signal.SIGINT)

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum

    def requested(self, step: int) -> bool:
        """Whether to stop after ``step``. With several processes every one must stop at the same step:
        jax's preemption sync point (set up by ``jax.distributed.initialize``) decides for all of them."""
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            try:
                # the service sees the scheduler's SIGTERM itself; a local flag could stop one process alone
                if multihost_utils.reached_preemption_sync_point(step):
                    self.signum = signal.SIGTERM
                    return True
                return False
            except RuntimeError:  # no preemption service: fall back to this process's signal
                pass
        return self.signum is not None

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a stop request"


class StopAtOnce(_SignalHandlers):
    """``with StopAtOnce(message): ...``: SIGTERM or Ctrl-C raises :class:`TrainingStopped` with ``message``
    (after the signal's name) right away; for phases after the last checkpoint, where nothing is left to save."""

    def __init__(self, message: str):
        self.message = message

    def _handle(self, signum, frame):
        raise TrainingStopped(f"{signal.Signals(signum).name} {self.message}", signum)
