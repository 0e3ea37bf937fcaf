"""Adapters from Flax (linen) modules to the plain-function contracts of the functional core.

The maths in :mod:`gm_jax.flows` never imports Flax: it takes a
:class:`~gm_jax.flows.Conditioner` ``(init, apply)`` of plain functions. :func:`flax_conditioner` is the
bridge for the Flax networks of this package (e.g. :class:`~gm_jax.nets.MADE`) or a user's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gm_jax.errors import GMJaxError
from gm_jax.flows.conditioners import Conditioner

__all__ = ["flax_conditioner"]


@dataclasses.dataclass(frozen=True)
class _FlaxInit:
    module: Any

    def __call__(self, key, x):
        variables = self.module.init(key, x)
        if set(variables) != {"params"}:
            raise GMJaxError(f"flax_conditioner: {type(self.module).__name__} has variable collections "
                             f"{sorted(variables)}; a conditioner may only have 'params' (no batch statistics)")
        return variables["params"]


@dataclasses.dataclass(frozen=True)
class _FlaxApply:
    module: Any

    def __call__(self, params, x):
        return self.module.apply({"params": params}, x)


def flax_conditioner(module) -> Conditioner:
    """A Flax module ``module(x [B, *event]) -> [B, *event, num_params]`` as a
    :class:`~gm_jax.flows.Conditioner`: ``init(key, x) = module.init(key, x)["params"]`` and
    ``apply(params, x) = module.apply({"params": params}, x)``. Compares by value (equal modules give
    equal conditioners), so identically built flows share jit caches."""
    return Conditioner(_FlaxInit(module), _FlaxApply(module))
