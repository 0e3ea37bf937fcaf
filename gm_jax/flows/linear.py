"""Volume-changing and volume-preserving linear maps on the last (channel/feature) axis: ActNorm, the
LU-parameterised invertible 1x1 convolution (both Glow, Kingma & Dhariwal 2018) and reversal.

All act on [B, ..., C], the same map at every spatial position; for vectors [B, D] the spatial size is 1,
so they double as the linear mixing layers of vector flows.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import lu, solve_triangular

from gm_jax.flows.base import zero_log_det


def _num_positions(x) -> int:
    """Spatial positions per example (H * W for images, 1 for vectors)."""
    return int(np.prod(x.shape[1:-1]))


@dataclasses.dataclass(frozen=True)
class ActNorm:
    """z = (x + bias) * exp(log_scale), per channel; log_det = positions * sum(log_scale).

    Data-dependent init (Glow section 3.1): bias and log_scale make z zero-mean, unit-variance per channel
    on the init batch. Params: {"bias": [C], "log_scale": [C]}.
    """

    min_std: float = 1e-2  # a constant channel in the init batch must not get a huge scale

    def init(self, key, x):
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        std = jnp.std(x, axis=axes)
        return {"bias": -mean, "log_scale": -jnp.log(jnp.maximum(std, self.min_std))}

    def forward(self, params, x):
        z = (x + params["bias"]) * jnp.exp(params["log_scale"])
        return z, zero_log_det(x) + _num_positions(x) * jnp.sum(params["log_scale"])

    def inverse(self, params, z):
        x = z * jnp.exp(-params["log_scale"]) - params["bias"]
        return x, zero_log_det(z) - _num_positions(z) * jnp.sum(params["log_scale"])


@dataclasses.dataclass(frozen=True)
class Invertible1x1Conv:
    """z[..., i] = sum_j W[i, j] x[..., j] with W = L (U + diag(exp(log_s))) (Glow's LU form).

    L is unit lower-triangular, U strictly upper-triangular; log_det = positions * sum(log_s).
    Glow writes W = P L (U + diag(sign(s) exp(log|s|))) with P and sign(s) fixed from the LU of a random
    rotation Q. We fold those constants into the initial matrix instead: W0 = P^T Q diag(sign s) is itself
    a random orthogonal matrix with an unpivoted LU whose diagonal is |s|, so P = I and sign = +1 here,
    params are only trainable arrays, and every stacked copy draws its own rotation from its key.
    Params: {"lower": [C, C], "upper": [C, C], "log_s": [C]} (only the strict triangles of lower/upper are used).
    """

    def init(self, key, x):
        c = x.shape[-1]
        q, _ = jnp.linalg.qr(jax.random.normal(key, (c, c), jnp.float32))
        _, lower, upper = lu(q)  # q = P lower upper
        s = jnp.diag(upper)
        upper = upper * jnp.sign(s)[None, :]  # column signs: W0 = P^T q diag(sign s), diagonal |s|
        return {"lower": lower, "upper": upper, "log_s": jnp.log(jnp.abs(s))}

    @staticmethod
    def _factors(params):
        c = params["log_s"].shape[0]
        lower = jnp.tril(params["lower"], -1) + jnp.eye(c)
        upper = jnp.triu(params["upper"], 1) + jnp.diag(jnp.exp(params["log_s"]))
        return lower, upper

    def weight(self, params):
        """The C x C matrix W."""
        lower, upper = self._factors(params)
        return lower @ upper

    def forward(self, params, x):
        z = x @ self.weight(params).T
        return z, zero_log_det(x) + _num_positions(x) * jnp.sum(params["log_s"])

    def inverse(self, params, z):
        lower, upper = self._factors(params)
        flat = z.reshape(-1, z.shape[-1]).T  # [C, N]: solve L U x = z by two triangular solves
        x = solve_triangular(upper, solve_triangular(lower, flat, lower=True, unit_diagonal=True), lower=False)
        return x.T.reshape(z.shape), zero_log_det(z) - _num_positions(z) * jnp.sum(params["log_s"])


@dataclasses.dataclass(frozen=True)
class Reverse:
    """Reverses the last axis (MAF's order reversal between autoregressive layers); volume preserving."""

    def init(self, key, x):
        return {}

    def forward(self, params, x):
        return x[..., ::-1], zero_log_det(x)

    def inverse(self, params, z):
        return z[..., ::-1], zero_log_det(z)
