"""Elementwise maps used around image flows."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def _sum_event(a):
    return jnp.sum(a.reshape(a.shape[0], -1), axis=-1)


@dataclasses.dataclass(frozen=True)
class Logit:
    """y = logit(alpha + (1 - 2 alpha) x) for x in (0, 1) (RealNVP section 4.1, alpha = 0.05).

    Keeps the flow away from the unbounded ends of the logit. log|dy/dx| per element is
    log(1 - 2 alpha) - log p - log(1 - p) with p = alpha + (1 - 2 alpha) x. No params.
    """

    alpha: float = 0.05

    def init(self, key, x):
        return {}

    def forward(self, params, x):
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        y = jnp.log(p) - jnp.log1p(-p)
        return y, _sum_event(np.log(1.0 - 2.0 * self.alpha) - jnp.log(p) - jnp.log1p(-p))

    def inverse(self, params, y):
        x = (jax.nn.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)
        # log dp/dy = log sigmoid(y) + log sigmoid(-y), stable for large |y|.
        return x, _sum_event(jax.nn.log_sigmoid(y) + jax.nn.log_sigmoid(-y) - np.log(1.0 - 2.0 * self.alpha))
