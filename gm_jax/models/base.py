"""The model interface every family implements (DESIGN.md) and the registry the trainer and CLI use."""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError

__all__ = ["Model", "Variables", "Config", "param_groups", "check_group", "check_positive", "check_hidden",
           "check_fields", "literal_choices", "accepts_kwarg", "rbg_key", "num_params", "override", "config_to_dict",
           "config_from_dict", "hparam", "field_help"]

Variables = dict  # {"params": pytree of float32 arrays, "state": pytree of model state (may be empty)}


class Model(Protocol):
    """A generative model bound to its data spec and frozen config.

    - ``init(key, example_batch) -> Variables``
    - ``loss(variables, batch, key) -> (scalar, metrics dict of scalars, new model state)``;
      a model with several parameter groups (``param_groups``) requires the keyword ``group=NAME``.
    - ``sample(variables, key, num, *, labels=None, temperature=1.0, sampler=None, steps=None, ...)
      -> Array`` in data space (the dataset's layout and dtype). Every optional argument is keyword-only,
      and those a family takes come in this order, its own ones last.
    - ``log_prob(variables, x, key, *, labels=None) -> [B]`` nats per example relative to the discrete
      data (exact or a bound); ``has_log_prob`` says whether the family defines one.
    """

    config: Any
    spec: DataSpec
    has_log_prob: bool

    def init(self, key, example_batch) -> Variables: ...

    def loss(self, variables, batch, key): ...

    def sample(self, variables, key, num, *, labels=None, **kw): ...

    def log_prob(self, variables, x, key, *, labels=None): ...


def param_groups(model) -> tuple[tuple[str | None, int], ...]:
    """The (group name, updates per step) pairs the trainer runs in order; (None, 1) means all params."""
    return getattr(model, "param_groups", ((None, 1),))


def check_group(model, group) -> str:
    """``group`` if it names one of ``model.param_groups``, else one line naming the valid groups: a
    several-player ``loss`` takes ``group=NAME`` and never picks one silently."""
    names = tuple(name for name, _ in param_groups(model))
    if group not in names:
        what = "needs the keyword group=NAME" if group is None else f"has no parameter group '{group}'"
        raise GMJaxError(f"{type(model).__name__}.loss {what}; choose one of {', '.join(names)}")
    return group


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
def hparam(default, help: str, *, inference: bool = False):
    """A config field with its one-line meaning beside it: ``lr: float = hparam(1e-3, "peak learning rate")``.
    The meaning is the field's ``metadata["help"]``, which ``gm-jax config MODEL`` prints. ``inference=True``
    marks a setting used only to sample or evaluate (a sampler, an estimator's size): a trained run may
    change it without becoming another model."""
    return dataclasses.field(default=default, metadata={"help": help, "inference": inference})


def inference_fields(cls) -> frozenset:
    """The fields of config class ``cls`` marked ``hparam(..., inference=True)``."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("inference"))


def field_help(cls, name: str) -> str | None:
    """The one-line meaning of field ``name`` of config class ``cls``: the field's own or, where a subclass
    only changes the default (``loss: GANLoss = "hinge"``), the nearest base class's; None if undescribed."""
    for klass in cls.__mro__:
        field = getattr(klass, "__dataclass_fields__", {}).get(name)
        if field is not None and field.metadata.get("help"):
            return field.metadata["help"]
    return None


def literal_choices(annotation) -> tuple | None:
    """The allowed values of a ``Literal[...]`` annotation, or None for any other type. A config's choices
    live only in its field's Literal (or a module's Literal alias); tuples of names derive from it with
    ``typing.get_args``."""
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _check_field(name: str, value, annotation):
    """``value`` of field ``name`` checked against its declared type and normalised (a list becomes a
    tuple, numpy scalars Python numbers, an int given for a float a float); one clear line otherwise."""
    choices = literal_choices(annotation)
    if choices is not None:
        if not isinstance(value, typing.Hashable) or value not in choices:
            raise GMJaxError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
        return value
    if annotation is bool:
        if _is_bool(value):
            return bool(value)
        raise GMJaxError(f"{name} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, numbers.Integral) and not _is_bool(value):
            return int(value)
        raise GMJaxError(f"{name} must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, numbers.Real) and not _is_bool(value):
            if not math.isfinite(value):  # nan slips through every range check (nan <= 0 is False)
                raise GMJaxError(f"{name} must be a finite number, got {value!r}")
            return float(value)
        raise GMJaxError(f"{name} must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise GMJaxError(f"{name} must be a string, got {value!r}")
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (tuple, list)):
            raise GMJaxError(f"{name} must be a tuple (or list), e.g. {name}=(64, 64), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_field(name, v, args[0]) for v in value)
        if len(args) != len(value):
            raise GMJaxError(f"{name} must have {len(args)} entries, got {value!r}")
        return tuple(_check_field(name, v, a) for v, a in zip(value, args))
    return value


def check_fields(config) -> None:
    """Every field of dataclass ``config`` against its annotation (Literal fields against their choices),
    normalised in place (``object.__setattr__``, so frozen dataclasses too)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        checked = _check_field(field.name, value, hints[field.name])
        if checked is not value:
            object.__setattr__(config, field.name, checked)


class Config:
    """The base of every config: a frozen dataclass validated at construction (``__post_init__``), so a
    bad value fails where it is written, with one line naming the config, the field and the fix.

    ``__post_init__`` checks every field against its annotation (:func:`check_fields`: Literal choices,
    int/float/bool/str types, lists become tuples) and then runs the family's ``validate`` (ranges and
    relations between fields, e.g. ``check_positive``). ``dataclasses.replace`` and :func:`override`
    construct a new config, so they validate too.
    """

    def __post_init__(self):
        try:
            check_fields(self)
            self.validate()
        except GMJaxError as e:
            raise GMJaxError(f"{type(self).__name__}: {e}") from None

    def validate(self) -> None:
        """The family's checks beyond the field types (subclasses override; called by ``__post_init__``)."""


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
            items = [v.strip() for v in value.strip().strip("()").split(",")]
            if items[-1] == "":  # "64," is a one-element tuple
                items.pop()
            if "" in items:
                raise GMJaxError(f"--set {name}={value}: an empty item; separate values by single commas")
            return tuple(_convert(v, inner, name) for v in items)
        choices = literal_choices(annotation)
        if choices is not None:
            if value not in choices:
                raise GMJaxError(f"--set {name}={value}: choose one of {', '.join(map(str, choices))}")
            return value
    except GMJaxError:
        raise
    except ValueError:
        raise GMJaxError(f"--set {name}={value}: expected a value of type {getattr(annotation, '__name__', annotation)}") from None
    raise GMJaxError(f"--set {name}: fields of type {annotation} cannot be set from the command line")


def override(config, assignments: dict[str, str]):
    """Returns ``config`` with string ``assignments`` parsed to the fields' types; unknown fields raise, and
    the new config validates at construction (``Config.__post_init__``)."""
    hints = typing.get_type_hints(type(config))
    changes = {}
    for name, value in assignments.items():
        if name not in hints:
            fields = ", ".join(f.name for f in dataclasses.fields(config))
            raise GMJaxError(f"unknown config field '{name}' for {type(config).__name__}; fields: {fields}")
        changes[name] = _convert(value, hints[name], name) if isinstance(value, str) else value
    return dataclasses.replace(config, **changes)


def config_to_dict(config) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(cls, values: dict):
    """The config ``cls`` of a JSON dict (lists become tuples and everything validates at construction);
    an unknown field raises one line naming it."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise GMJaxError(f"{cls.__name__} has no field {', '.join(map(repr, unknown))} (a config written by another "
                         f"gm-jax version, or edited?); fields: {', '.join(sorted(known))}")
    return cls(**values)
