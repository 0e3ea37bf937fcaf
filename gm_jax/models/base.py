"""The model interface every family implements (DESIGN.md) and the registry the trainer and CLI use."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError

Variables = dict  # {"params": pytree of float32 arrays, "state": pytree of model state (may be empty)}


class Model(Protocol):
    """A generative model bound to its data spec and frozen config.

    - ``init(key, example_batch) -> Variables``
    - ``loss(variables, batch, key) -> (scalar, metrics dict of scalars, new model state)``;
      a model with several parameter groups (``param_groups``) also accepts ``group=NAME``.
    - ``sample(variables, key, num, **kw) -> Array`` in data space (the dataset's layout and dtype).
    - ``log_prob(variables, x, key) -> [B]`` nats per example relative to the discrete data
      (exact or a bound); ``has_log_prob`` says whether the family defines one.
    """

    config: Any
    spec: DataSpec
    has_log_prob: bool

    def init(self, key, example_batch) -> Variables: ...

    def loss(self, variables, batch, key): ...

    def sample(self, variables, key, num, **kw): ...

    def log_prob(self, variables, x, key): ...


def param_groups(model) -> tuple[tuple[str | None, int], ...]:
    """The (group name, updates per step) pairs the trainer runs in order; (None, 1) means all params."""
    return getattr(model, "param_groups", ((None, 1),))


def check_positive(config, *names) -> None:
    """Config validation: each named int field must be >= 1 (one clear line otherwise)."""
    for name in names:
        if getattr(config, name) < 1:
            raise GMJaxError(f"{name} must be >= 1, got {getattr(config, name)}")


def check_hidden(config, field: str = "hidden") -> None:
    """Config validation: every width of a tuple-of-widths field must be >= 1."""
    widths = getattr(config, field)
    if any(w < 1 for w in widths):
        raise GMJaxError(f"{field} widths must be >= 1, got {widths}")


def accepts_kwarg(fn, name: str) -> bool:
    """Whether callable ``fn`` takes a keyword ``name`` (or ``**kwargs``): how the CLI and the trainer
    pass optional sampling arguments only to the models that take them."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def rbg_key(key):
    """An RBG key derived deterministically from ``key``. Used for network init and dropout: XLA:CPU
    compiles threefry's unrolled hash once per weight tensor or dropout layer, several times slower than
    RngBitGenerator."""
    return jax.random.key(jax.random.bits(key, (), jnp.uint32), impl="rbg")


def num_params(params) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


# ------------------------------------------------------------------------------------------------ configs
def _convert(value: str, annotation, name: str):
    """Parses a ``--set`` string into the field's declared type, or raises one clear line."""
    origin = typing.get_origin(annotation)
    try:
        if annotation is bool:
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation is int:
            return int(value)
        if annotation is float:
            return float(value)
        if annotation is str:
            return value
        if origin is tuple:
            (inner, *_rest) = typing.get_args(annotation)
            return tuple(_convert(v.strip(), inner, name) for v in value.strip("()").split(",") if v.strip())
        if origin is typing.Literal:
            choices = typing.get_args(annotation)
            if value not in choices:
                raise GMJaxError(f"--set {name}={value}: choose one of {', '.join(map(str, choices))}")
            return value
    except GMJaxError:
        raise
    except ValueError:
        raise GMJaxError(f"--set {name}={value}: expected a value of type {getattr(annotation, '__name__', annotation)}") from None
    raise GMJaxError(f"--set {name}: fields of type {annotation} cannot be set from the command line")


def override(config, assignments: dict[str, str]):
    """Returns ``config`` with string ``assignments`` parsed to the fields' types; unknown fields raise."""
    hints = typing.get_type_hints(type(config))
    changes = {}
    for name, value in assignments.items():
        if name not in hints:
            fields = ", ".join(f.name for f in dataclasses.fields(config))
            raise GMJaxError(f"unknown config field '{name}' for {type(config).__name__}; fields: {fields}")
        changes[name] = _convert(value, hints[name], name) if isinstance(value, str) else value
    new = dataclasses.replace(config, **changes)
    validate = getattr(new, "validate", None)
    if validate:
        validate()
    return new


def config_to_dict(config) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(cls, values: dict):
    hints = typing.get_type_hints(cls)
    return cls(**{k: tuple(v) if typing.get_origin(hints[k]) is tuple else v for k, v in values.items()})
