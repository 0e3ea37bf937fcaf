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
from gm_jax.flows.transformers import Affine, Spline


@dataclasses.dataclass(frozen=True)
class MaskedAutoregressive:
    """One MAF layer on vectors [B, D]. ``made`` is a :class:`gm_jax.nets.MADE` with
    ``num_params == transformer.num_params`` (use ``zero_init_output=True`` for an identity start);
    ``transformer`` is :class:`~gm_jax.flows.transformers.Affine` (MAF) or ``Spline`` (autoregressive NSF).
    Params are the MADE's params."""

    made: Any
    transformer: Any = Affine()

    def init(self, key, x):
        if self.made.num_params != self.transformer.num_params:
            raise GMJaxError(f"MADE outputs {self.made.num_params} parameters per dimension, the transformer "
                             f"needs {self.transformer.num_params}")
        return self.made.init(key, x)["params"]

    def _raw(self, params, x):
        return self.made.apply({"params": params}, x).astype(jnp.float32)

    def forward(self, params, x):
        z, log_det = self.transformer(x, self._raw(params, x))
        return z, jnp.sum(log_det, axis=-1)

    def inverse(self, params, z):
        d = z.shape[-1]
        step = lambda _, x: self.transformer(z, self._raw(params, x), inverse=True)[0]
        x = jax.lax.fori_loop(0, d - 1, step, jnp.zeros_like(z))
        x, log_det = self.transformer(z, self._raw(params, x), inverse=True)
        return x, jnp.sum(log_det, axis=-1)


def maf_layer(made, max_log_scale: float = 3.0) -> MaskedAutoregressive:
    """Affine MAF layer; ``made`` needs num_params = 2."""
    return MaskedAutoregressive(made, Affine(max_log_scale))


def autoregressive_spline_layer(made, num_bins: int = 8, bound: float = 4.0) -> MaskedAutoregressive:
    """Autoregressive rational-quadratic spline layer; ``made`` needs num_params = 3 * num_bins - 1."""
    return MaskedAutoregressive(made, Spline(num_bins, bound))
