"""What each config field is: name, type, default and one-line meaning, as ``gm-jax config MODEL`` prints.

The meaning lives beside the field (``hparam(default, "meaning")``, :func:`gm_jax.models.base.hparam`);
a subclass that only changes a default keeps its base class's meaning (:func:`field_help`).
"""

from __future__ import annotations

import dataclasses
import typing

from gm_jax.models.base import field_help, literal_choices

__all__ = ["FieldRow", "describe_config", "format_config", "type_name"]


@dataclasses.dataclass(frozen=True)
class FieldRow:
    """One config field: ``type`` and ``default`` as text; ``help`` None when the field has no meaning."""

    name: str
    type: str
    default: str
    help: str | None


def type_name(annotation) -> str:
    """``int``, ``tuple[int, ...]``, or the choices of a Literal as ``a | b | c``."""
    choices = literal_choices(annotation)
    if choices is not None:
        return " | ".join(map(str, choices))
    if typing.get_origin(annotation) is tuple:
        args = ["..." if a is Ellipsis else type_name(a) for a in typing.get_args(annotation)]
        return f"tuple[{', '.join(args)}]"
    return getattr(annotation, "__name__", str(annotation))


def describe_config(config) -> list[FieldRow]:
    """One row per field of ``config`` (a config instance, whose values are the defaults shown, or a config
    class, shown with its own defaults), in declaration order."""
    if isinstance(config, type):
        config = config()
    cls = type(config)
    hints = typing.get_type_hints(cls)
    return [FieldRow(f.name, type_name(hints[f.name]), str(getattr(config, f.name)), field_help(cls, f.name))
            for f in dataclasses.fields(cls)]


def format_config(config, title: str | None = None) -> str:
    """:func:`describe_config` as an aligned table (field, type, default, meaning) under ``title``."""
    rows = [("field", "type", "default", "meaning")]
    rows += [(r.name, r.type, r.default, r.help or "") for r in describe_config(config)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [title] if title else []
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
    return "\n".join(line.rstrip() for line in lines)
