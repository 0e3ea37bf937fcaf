"""Coupling layers (NICE, Dinh et al. 2015; RealNVP, Dinh et al. 2017; spline couplings, Durkan et al. 2019).

A binary mask m splits the event: the part where m = 1 passes through unchanged and conditions an
elementwise transformer applied where m = 0,

    z = m * x + (1 - m) * g(x; conditioner(m * x)),   log_det = sum over m = 0 of log|g'|,

and the inverse needs one conditioner pass since m * z = m * x. Masks (1 marks the conditioning part):
``checkerboard`` and ``channel`` for NHWC images, ``half`` and ``alternating`` for vectors [B, D];
``parity`` 1 swaps the roles. Stack couplings with complementary parities so every element is transformed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.flows.conditioners import check_conditioner, check_conditioner_init, conditioner_raw
from gm_jax.flows.transformers import Additive, Affine, Spline

MASKS = ("checkerboard", "channel", "half", "alternating")


def coupling_mask(kind: str, event_shape: tuple[int, ...], *, parity: int = 0) -> np.ndarray:
    """The float32 mask of one example's event shape: 1 = conditioning (identity) part, 0 = transformed."""
    if kind not in MASKS:
        raise GMJaxError(f"unknown coupling mask '{kind}'; choose one of {', '.join(MASKS)}")
    image = kind in ("checkerboard", "channel")
    if image != (len(event_shape) == 3):
        raise GMJaxError(f"mask '{kind}' is for {'images [H, W, C]' if image else 'vectors [D]'}, "
                         f"got event shape {tuple(event_shape)}")
    if kind == "checkerboard":
        h, w, c = event_shape
        keep = (np.arange(h)[:, None, None] + np.arange(w)[None, :, None]) % 2 == 0
        keep = np.broadcast_to(keep, (h, w, c))
    elif kind == "channel":
        h, w, c = event_shape
        if c < 2:
            raise GMJaxError(f"a channel mask needs at least 2 channels, got {c}; squeeze first")
        keep = np.broadcast_to(np.arange(c) < c // 2, (h, w, c))
    else:
        (d,) = event_shape
        if d < 2:
            raise GMJaxError(f"a coupling on vectors needs dimension >= 2, got {d}")
        keep = np.arange(d) < d // 2 if kind == "half" else np.arange(d) % 2 == 0
    keep = keep if parity == 0 else ~keep
    return keep.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Coupling:
    """Masked coupling with an elementwise ``transformer`` (:class:`~gm_jax.flows.transformers.Affine`,
    ``Additive`` or ``Spline``) whose parameters come from ``conditioner``, a
    :class:`~gm_jax.flows.conditioners.Conditioner` ``(init, apply)`` of plain functions with
    ``apply(params, m * x [B, *event]) -> raw [B, *event, transformer.num_params]`` (e.g.
    :func:`~gm_jax.flows.mlp_conditioner`, :func:`~gm_jax.flows.conv_conditioner`, or a hand-written network).
    The raw shape is checked at trace time. Params are the conditioner's params."""

    conditioner: Any
    transformer: Any
    mask: str
    _: dataclasses.KW_ONLY
    parity: int = 0

    def __post_init__(self):
        check_conditioner("Coupling", self.conditioner)

    def _mask(self, x):
        return jnp.asarray(coupling_mask(self.mask, x.shape[1:], parity=self.parity))

    def _hint(self):
        return f"{type(self.transformer).__name__} needs {self.transformer.num_params} parameters per element"

    def init(self, key, x):
        xm = x * self._mask(x)
        params = self.conditioner.init(key, xm)
        check_conditioner_init("Coupling.init", self.conditioner, params, xm, self.transformer.num_params,
                               hint=self._hint())
        return params

    def _apply(self, params, x, inverse):
        m = self._mask(x)
        raw = conditioner_raw("Coupling.inverse" if inverse else "Coupling.forward", self.conditioner, params,
                              x * m, self.transformer.num_params, hint=self._hint())
        y, log_det = self.transformer(x, raw, inverse=inverse)
        z = m * x + (1.0 - m) * y
        return z, jnp.sum(((1.0 - m) * log_det).reshape(x.shape[0], -1), axis=-1)

    def forward(self, params, x):
        """x [B, *event] -> (z [B, *event], log|det dz/dx| [B])."""
        return self._apply(params, x, inverse=False)

    def inverse(self, params, z):
        """z [B, *event] -> (x [B, *event], log|det dx/dz| [B]); one conditioner pass, since m * z = m * x."""
        return self._apply(params, z, inverse=True)


def affine_coupling(conditioner, mask: str, *, parity: int = 0, max_log_scale: float = 3.0) -> Coupling:
    """RealNVP affine coupling (Dinh et al. 2017); the conditioner outputs 2 parameters per element
    (shift, raw log-scale; see :class:`~gm_jax.flows.transformers.Affine`)."""
    return Coupling(conditioner, Affine(max_log_scale), mask, parity=parity)


def additive_coupling(conditioner, mask: str, *, parity: int = 0) -> Coupling:
    """NICE additive coupling (Dinh et al. 2015), volume preserving; 1 parameter per element."""
    return Coupling(conditioner, Additive(), mask, parity=parity)


def spline_coupling(conditioner, mask: str, *, parity: int = 0, num_bins: int = 8, bound: float = 4.0) -> Coupling:
    """Rational-quadratic spline coupling (Durkan et al. 2019); 3 * num_bins - 1 parameters per element."""
    return Coupling(conditioner, Spline(num_bins, bound), mask, parity=parity)
