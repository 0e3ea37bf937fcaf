"""Coupling layers (NICE, Dinh et al. 2015; RealNVP, Dinh et al. 2017; spline couplings, Durkan et al. 2019).

A binary mask m splits the event: the part where m = 1 passes through unchanged and conditions an
elementwise transformer applied where m = 0,

    z = m * x + (1 - m) * g(x; conditioner(m * x)),   log_det = sum over m = 0 of log|g'|,

and the inverse needs one conditioner pass since m * z = m * x. On vectors the conditioner may emit
parameters for the transformed elements only (raw [B, n_transformed, P] instead of [B, D, P]); the
transformer then runs on those elements alone, which halves the work of a half mask (flowjax's and nflows'
couplings compute only that half too). Masks (1 marks the conditioning part):
``checkerboard`` and ``channel`` for NHWC images, ``half`` and ``alternating`` for vectors [B, D];
``parity`` 1 swaps the roles. Stack couplings with complementary parities so every element is transformed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.flows.conditioners import check_conditioner
from gm_jax.flows.transformers import Additive, Affine, Spline
from gm_jax.shapes import check_output

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


def transformed_elements(kind: str, event_shape: tuple[int, ...], *, parity: int = 0) -> np.ndarray:
    """The indices (ascending) of the elements a coupling with this mask transforms (where the mask is 0)."""
    return np.flatnonzero(coupling_mask(kind, event_shape, parity=parity).reshape(-1) == 0)


@dataclasses.dataclass(frozen=True)
class Coupling:
    """Masked coupling with an elementwise ``transformer`` (:class:`~gm_jax.flows.transformers.Affine`,
    ``Additive`` or ``Spline``) whose parameters come from ``conditioner``, a
    :class:`~gm_jax.flows.conditioners.Conditioner` ``(init, apply)`` of plain functions with
    ``apply(params, m * x [B, *event]) -> raw [B, *event, transformer.num_params]`` (e.g.
    :func:`~gm_jax.flows.mlp_conditioner`, :func:`~gm_jax.flows.conv_conditioner`, or a hand-written network).
    On vectors [B, D], raw may instead be [B, n, P] for the n transformed elements only, in the order of
    :func:`transformed_elements` (``mlp_conditioner(P, outputs=n)``); only those elements are transformed.
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

    def _compact(self, x, raw, function: str):
        """The transformed elements' indices if the conditioner emits raw for those only, else None (raw
        for every element); any other shape raises one line."""
        p = self.transformer.num_params
        full = tuple(x.shape) + (p,)
        if x.ndim == 2:
            idx = transformed_elements(self.mask, x.shape[1:], parity=self.parity)
            if tuple(getattr(raw, "shape", ())) == (x.shape[0], len(idx), p):
                return idx
            hint = f"; or {(x.shape[0], len(idx), p)} for the {len(idx)} transformed elements only"
        else:
            hint = ""
        check_output(function, "conditioner.apply(params, x)", raw, full,
                     hint=f"{type(self.transformer).__name__} needs {p} parameters per element{hint}")
        return None

    def init(self, key, x):
        xm = x * self._mask(x)
        params = self.conditioner.init(key, xm)
        self._compact(xm, jax.eval_shape(self.conditioner.apply, params, xm), "Coupling.init")
        return params

    def _apply(self, params, x, inverse):
        m = self._mask(x)
        raw = self.conditioner.apply(params, x * m)
        idx = self._compact(x, raw, "Coupling.inverse" if inverse else "Coupling.forward")
        raw = raw.astype(jnp.float32)
        if idx is not None:  # only the transformed elements
            y, log_det = self.transformer(x[:, idx], raw, inverse=inverse)
            return x.at[:, idx].set(y), jnp.sum(log_det, axis=-1)
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
