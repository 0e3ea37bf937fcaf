"""Planar and radial flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows").

Both are closed form in the ``forward`` direction; their inverses reduce to one scalar monotone equation
per example, solved by a fixed number of safeguarded Newton steps inside ``lax.fori_loop``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

NUM_SOLVER_ITERS = 60  # bisection alone would reach float32 resolution of the bracket in ~30


def solve_increasing(fn, lo, hi, num_iters: int = NUM_SOLVER_ITERS):
    """Root of an increasing scalar function on [lo, hi] (elementwise over arrays).

    ``fn(t) -> (g(t), g'(t))`` with g(lo) <= 0 <= g(hi). Each iteration takes the Newton step from the
    midpoint-initialised iterate when it stays inside the bracket, else bisects, then shrinks the bracket
    with the sign of g: global convergence of bisection, quadratic convergence of Newton near the root.
    """

    def body(_, state):
        lo, hi, t = state
        g, dg = fn(t)
        lo, hi = jnp.where(g > 0, lo, t), jnp.where(g > 0, t, hi)
        newton = t - g / jnp.where(dg > 0, dg, 1.0)
        ok = (dg > 0) & (newton > lo) & (newton < hi)
        return lo, hi, jnp.where(ok, newton, 0.5 * (lo + hi))

    _, _, t = jax.lax.fori_loop(0, num_iters, body, (lo, hi, 0.5 * (lo + hi)))
    return t


def _batch_dot(x, v):
    return jnp.sum(x * v, axis=-1)


@dataclasses.dataclass(frozen=True)
class Planar:
    """z = x + u_hat tanh(w . x + b) on vectors [B, D].

    u_hat = u + (m(w.u) - w.u) w / |w|^2 with m(a) = -1 + softplus(a) > -1, so w . u_hat > -1 and the map is
    invertible (Rezende & Mohamed appendix A.1). log_det = log|1 + (1 - tanh^2(w.x + b)) w.u_hat|.
    Params: {"u": [D], "w": [D], "b": []}.
    """

    init_scale: float = 0.1

    def init(self, key, x):
        ku, kw = jax.random.split(key)
        d = x.shape[-1]
        return {"u": self.init_scale * jax.random.normal(ku, (d,)), "w": self.init_scale * jax.random.normal(kw, (d,)),
                "b": jnp.zeros(())}

    @staticmethod
    def _u_hat(params):
        u, w = params["u"], params["w"]
        wu = jnp.dot(w, u)
        return u + (jax.nn.softplus(wu) - 1.0 - wu) * w / (jnp.dot(w, w) + 1e-12)

    def forward(self, params, x):
        u_hat, w, b = self._u_hat(params), params["w"], params["b"]
        t = jnp.tanh(_batch_dot(x, w) + b)
        z = x + t[:, None] * u_hat
        return z, jnp.log(jnp.abs(1.0 + (1.0 - t**2) * jnp.dot(w, u_hat)))

    def inverse(self, params, z):
        u_hat, w, b = self._u_hat(params), params["w"], params["b"]
        c, wz = jnp.dot(w, u_hat), _batch_dot(z, w)
        # a = w . x solves a + c tanh(a + b) = w . z; |tanh| <= 1 brackets it within |c| of w . z.
        fn = lambda a: (a + c * jnp.tanh(a + b) - wz, 1.0 + c * (1.0 - jnp.tanh(a + b) ** 2))
        a = solve_increasing(fn, wz - jnp.abs(c) - 1e-6, wz + jnp.abs(c) + 1e-6)
        t = jnp.tanh(a + b)
        return z - t[:, None] * u_hat, -jnp.log(jnp.abs(1.0 + (1.0 - t**2) * c))


@dataclasses.dataclass(frozen=True)
class Radial:
    """z = x + beta (x - x0) / (alpha + r), r = |x - x0|, on vectors [B, D].

    alpha = softplus(raw_alpha) > 0 and beta = -alpha + softplus(raw_beta) > -alpha keep it invertible
    (Rezende & Mohamed appendix A.2). log_det = (D - 1) log(1 + beta h) + log(1 + beta alpha h^2), h = 1/(alpha + r).
    Params: {"x0": [D], "raw_alpha": [], "raw_beta": []}.
    """

    init_scale: float = 0.1

    def init(self, key, x):
        d = x.shape[-1]
        return {"x0": self.init_scale * jax.random.normal(key, (d,)), "raw_alpha": jnp.zeros(()),
                "raw_beta": jnp.zeros(())}

    @staticmethod
    def _alpha_beta(params):
        alpha = jax.nn.softplus(params["raw_alpha"])
        return alpha, -alpha + jax.nn.softplus(params["raw_beta"])

    def _log_det(self, alpha, beta, r, d):
        h = 1.0 / (alpha + r)
        return (d - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * alpha * h**2)

    def forward(self, params, x):
        alpha, beta = self._alpha_beta(params)
        diff = x - params["x0"]
        r = jnp.sqrt(jnp.sum(diff**2, axis=-1))
        z = x + (beta / (alpha + r))[:, None] * diff
        return z, self._log_det(alpha, beta, r, x.shape[-1])

    def inverse(self, params, z):
        alpha, beta = self._alpha_beta(params)
        diff = z - params["x0"]
        rz = jnp.sqrt(jnp.sum(diff**2, axis=-1))
        # r solves r (1 + beta / (alpha + r)) = |z - x0|; the beta term lies within |beta| of 0.
        fn = lambda r: (r + beta * r / (alpha + r) - rz, 1.0 + beta * alpha / (alpha + r) ** 2)
        r = solve_increasing(fn, jnp.maximum(rz - jnp.abs(beta), 0.0), rz + jnp.abs(beta) + 1e-6)
        x = params["x0"] + diff / (1.0 + beta / (alpha + r))[:, None]
        return x, -self._log_det(alpha, beta, r, z.shape[-1])
