"""Shape helpers shared by the functional core: per-example coefficients, event means, and the trace-time
check of a user network's output (DESIGN.md: every function that calls a user network names itself, the
expected and the received shape when the network returns the wrong one).

Shapes are static under ``jax.jit``, so these checks run once, at trace time, and cost nothing at run time.
"""

from __future__ import annotations

import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = ["per_example", "mean_event", "check_output", "check_batch_values"]


def per_example(values, x):
    """Per-example values [B] reshaped to broadcast against x [B, ...] (as [B, 1, ..., 1])."""
    values = jnp.asarray(values)
    return values.reshape(values.shape + (1,) * (x.ndim - values.ndim))


def mean_event(x):
    """x [B, ...] averaged over every axis but the first: [B]."""
    return x.reshape(x.shape[0], -1).mean(axis=-1)


def _shape(a):
    return tuple(getattr(a, "shape", ()))


def check_output(function: str, network: str, out, expected_shape, *, hint: str = ""):
    """Raise one line unless ``out`` (an array) has ``expected_shape``; returns ``out``.

    ``function`` names the gm-jax function, ``network`` the user's callable as its docstring calls it
    (e.g. ``"eps_fn(x_t, t)"``). Without this check a [B, 1] output for [B, 2] data would broadcast silently.
    """
    expected_shape = tuple(expected_shape)
    if isinstance(out, (tuple, list)) or not hasattr(out, "shape"):
        raise GMJaxError(f"{function}: {network} must return one array of shape {expected_shape}, got "
                         f"{type(out).__name__}{hint and '; ' + hint}")
    if _shape(out) != expected_shape:
        raise GMJaxError(f"{function}: {network} must return shape {expected_shape}, got {_shape(out)}"
                         f"{hint and '; ' + hint}")
    return out


def check_batch_values(function: str, network: str, out, batch: int):
    """Raise one line unless ``out`` is one value per example, shape [batch]; returns ``out``."""
    return check_output(function, network, out, (batch,), hint="return one value per example")
