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
from gm_jax.flows.transformers import Additive, Affine, Spline

MASKS = ("checkerboard", "channel", "half", "alternating")


def coupling_mask(kind: str, event_shape: tuple[int, ...], parity: int = 0) -> np.ndarray:
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
    ``Additive`` or ``Spline``) whose parameters come from ``conditioner``, a Flax module mapping
    [B, *event] -> [B, *event, transformer.num_params] (e.g. :class:`MLPConditioner`, :class:`ConvConditioner`).
    Params are the conditioner's params."""

    conditioner: Any
    transformer: Any
    mask: str
    parity: int = 0

    def _mask(self, x):
        return jnp.asarray(coupling_mask(self.mask, x.shape[1:], self.parity))

    def init(self, key, x):
        if getattr(self.conditioner, "num_params", self.transformer.num_params) != self.transformer.num_params:
            raise GMJaxError(f"the conditioner outputs {self.conditioner.num_params} parameters per element, "
                             f"the transformer needs {self.transformer.num_params}")
        return self.conditioner.init(key, x * self._mask(x))["params"]

    def _apply(self, params, x, inverse):
        m = self._mask(x)
        raw = self.conditioner.apply({"params": params}, x * m)
        y, log_det = self.transformer(x, raw, inverse=inverse)
        z = m * x + (1.0 - m) * y
        return z, jnp.sum(((1.0 - m) * log_det).reshape(x.shape[0], -1), axis=-1)

    def forward(self, params, x):
        return self._apply(params, x, inverse=False)

    def inverse(self, params, z):
        return self._apply(params, z, inverse=True)


def affine_coupling(conditioner, mask: str, parity: int = 0, max_log_scale: float = 3.0) -> Coupling:
    """RealNVP affine coupling (Dinh et al. 2017); the conditioner outputs 2 parameters per element."""
    return Coupling(conditioner, Affine(max_log_scale), mask, parity)


def additive_coupling(conditioner, mask: str, parity: int = 0) -> Coupling:
    """NICE additive coupling (Dinh et al. 2015), volume preserving; 1 parameter per element."""
    return Coupling(conditioner, Additive(), mask, parity)


def spline_coupling(conditioner, mask: str, parity: int = 0, num_bins: int = 8, bound: float = 4.0) -> Coupling:
    """Rational-quadratic spline coupling (Durkan et al. 2019); 3 * num_bins - 1 parameters per element."""
    return Coupling(conditioner, Spline(num_bins, bound), mask, parity)
