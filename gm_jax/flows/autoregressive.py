"""Masked autoregressive flow layer (MAF, Papamakarios et al. 2017) and its neural-spline variant
(autoregressive rational-quadratic spline, Durkan et al. 2019).

z_i = g(x_i; MADE(x)_i), where MADE's output i sees only x_j earlier in its ordering (Germain et al. 2015):
the density direction (``forward``) is one network pass. Sampling (``inverse``) repeats
x <- g^{-1}(z; MADE(x)) D times in ``lax.fori_loop``: after pass t the first t elements of the ordering
are exact, whatever the ordering, so the last pass's log-det is the exact one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.flows.conditioners import check_conditioner, check_conditioner_init, conditioner_raw
from gm_jax.flows.transformers import Affine, Spline


@dataclasses.dataclass(frozen=True)
class MaskedAutoregressive:
    """One MAF layer on vectors [B, D]. ``conditioner`` is a
    :class:`~gm_jax.flows.conditioners.Conditioner` ``(init, apply)`` with
    ``apply(params, x [B, D]) -> raw [B, D, transformer.num_params]`` whose row i depends only on inputs
    earlier in its ordering (a MADE, Germain et al. 2015: :func:`gm_jax.nets.flax_conditioner` of
    :class:`gm_jax.nets.MADE` with ``zero_init_output=True`` for an identity start, or any hand-written
    masked network). ``transformer`` is :class:`~gm_jax.flows.transformers.Affine` (MAF) or ``Spline``
    (autoregressive NSF). The raw shape is checked at trace time. Params are the conditioner's params."""

    conditioner: Any
    transformer: Any = Affine()

    def __post_init__(self):
        check_conditioner("MaskedAutoregressive", self.conditioner)

    def _hint(self):
        return f"{type(self.transformer).__name__} needs {self.transformer.num_params} parameters per dimension"

    def _check_vectors(self, function, x):
        if x.ndim != 2:
            raise GMJaxError(f"{function}: a masked autoregressive layer acts on vectors [B, D], got shape "
                             f"{tuple(x.shape)}; flatten first")

    def init(self, key, x):
        self._check_vectors("MaskedAutoregressive.init", x)
        params = self.conditioner.init(key, x)
        check_conditioner_init("MaskedAutoregressive.init", self.conditioner, params, x,
                               self.transformer.num_params, hint=self._hint())
        return params

    def _raw(self, function, params, x):
        return conditioner_raw(function, self.conditioner, params, x, self.transformer.num_params,
                               hint=self._hint())

    def forward(self, params, x):
        """x [B, D] -> (z [B, D], log|det dz/dx| [B]): one conditioner pass."""
        self._check_vectors("MaskedAutoregressive.forward", x)
        z, log_det = self.transformer(x, self._raw("MaskedAutoregressive.forward", params, x))
        return z, jnp.sum(log_det, axis=-1)

    def inverse(self, params, z):
        """z [B, D] -> (x [B, D], log|det dx/dz| [B]): D conditioner passes."""
        self._check_vectors("MaskedAutoregressive.inverse", z)
        d = z.shape[-1]
        raw = lambda x: self._raw("MaskedAutoregressive.inverse", params, x)
        step = lambda _, x: self.transformer(z, raw(x), inverse=True)[0]
        x = jax.lax.fori_loop(0, d - 1, step, jnp.zeros_like(z))
        x, log_det = self.transformer(z, raw(x), inverse=True)
        return x, jnp.sum(log_det, axis=-1)


def maf_layer(conditioner, *, max_log_scale: float = 3.0) -> MaskedAutoregressive:
    """Affine MAF layer (Papamakarios et al. 2017); the conditioner outputs 2 parameters per dimension."""
    return MaskedAutoregressive(conditioner, Affine(max_log_scale))


def autoregressive_spline_layer(conditioner, *, num_bins: int = 8, bound: float = 4.0) -> MaskedAutoregressive:
    """Autoregressive rational-quadratic spline layer (Durkan et al. 2019); the conditioner outputs
    3 * num_bins - 1 parameters per dimension."""
    return MaskedAutoregressive(conditioner, Spline(num_bins, bound))
