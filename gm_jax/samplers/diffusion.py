"""Samplers of discrete-time diffusion models: DDPM ancestral sampling (Ho et al. 2020, Alg. 2), DDIM
(Song, Meng & Ermon 2021) with its deterministic inversion, and classifier-free guidance (Ho & Salimans
2021).

Each is one ``lax.scan`` over the (possibly strided) steps with a fixed-shape state, so the whole loop
compiles to one XLA program. The network is a plain callable ``eps_fn(x_t [B, ...], t int32 [B])``
returning ε [B, ...] (or ``(ε, var_interp)`` with ``variance="learned"``, Nichol & Dhariwal 2021);
t is the 0-based step index of :mod:`gm_jax.processes.discrete`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.processes.discrete import DiffusionSchedule, p_mean_variance, split_network_output, x0_from_eps


def ddpm_sample(eps_fn, schedule: DiffusionSchedule, key, shape, variance: str = "beta", clip_x0: bool = False,
                x_T=None):
    """Ancestral sampling x_T ~ N(0, I), x_{t-1} ~ p(x_{t-1} | x_t) for t = T..1 (Ho et al. 2020, Alg. 2).

    Args:
      eps_fn: ``(x_t, t) -> eps`` (or ``(eps, var_interp)`` with ``variance="learned"``).
      shape: the batch shape [B, ...] to draw. ``variance``: ``"beta"`` (sigma_t^2 = beta_t, Ho et al.'s
        choice for CIFAR-10), ``"posterior"`` (beta~_t) or ``"learned"``; see
        :func:`gm_jax.processes.p_mean_variance`. ``clip_x0`` clips the predicted x_0 to [-1, 1] (images).
      x_T: optional starting noise of ``shape`` (else drawn from ``key``).
    Returns: x_0 [shape] (the last step adds no noise).
    """
    k_init, k_steps = jax.random.split(key)
    x = jax.random.normal(k_init, shape) if x_T is None else jnp.asarray(x_T, jnp.float32)
    batch = shape[0]

    def step(x, inputs):
        i, k = inputs
        t = jnp.full((batch,), i, jnp.int32)
        eps, interp = split_network_output(eps_fn(x, t), variance)
        mean, log_var, _ = p_mean_variance(schedule, x, t, eps, variance, interp, clip_x0)
        noise = jax.random.normal(k, x.shape)
        return mean + jnp.where(i > 0, jnp.exp(0.5 * log_var), 0.0) * noise, None

    steps = jnp.arange(schedule.num_steps - 1, -1, -1)
    x, _ = jax.lax.scan(step, x, (steps, jax.random.split(k_steps, schedule.num_steps)))
    return x


def ddim_timesteps(num_train_steps: int, num_steps: int) -> np.ndarray:
    """The increasing sub-sequence of ``num_steps`` 0-based steps, evenly spread over [0, T-1] and ending at
    T-1 (the "uniform" skip of Song et al. 2021, anchored at the last step so sampling starts at x_T)."""
    if not 1 <= num_steps <= num_train_steps:
        raise GMJaxError(f"num_steps must be in [1, {num_train_steps}] (the schedule's steps), got {num_steps}")
    return np.unique(np.round(np.linspace(0, num_train_steps - 1, num_steps)).astype(np.int32))


def _strided(schedule: DiffusionSchedule, num_steps: int):
    """(t, abar_t, abar_prev) for each strided step, where abar_prev is abar at the previous kept step
    (1 before the first)."""
    ts = ddim_timesteps(schedule.num_steps, num_steps)
    abar = schedule.alphas_cumprod[ts]
    abar_prev = jnp.concatenate([jnp.ones((1,), jnp.float32), abar[:-1]])
    return jnp.asarray(ts), abar, abar_prev


def ddim_sample(eps_fn, schedule: DiffusionSchedule, key, shape, num_steps: int, eta: float = 0.0,
                clip_x0: bool = False, x_T=None):
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) over ``num_steps`` strided steps.

    x_{s} = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z, with
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s): ``eta=0`` is the deterministic
    implicit model (the probability-flow ODE's discretisation), ``eta=1`` the DDPM posterior variance.

    Args: as :func:`ddpm_sample`; ``num_steps`` in [1, T]. Returns x_0 [shape].
    """
    if eta < 0:
        raise GMJaxError(f"eta must be >= 0, got {eta}")
    ts, abar, abar_prev = _strided(schedule, num_steps)
    k_init, k_steps = jax.random.split(key)
    x = jax.random.normal(k_init, shape) if x_T is None else jnp.asarray(x_T, jnp.float32)
    batch = shape[0]

    def step(x, inputs):
        t, a, a_prev, k = inputs
        tt = jnp.full((batch,), t, jnp.int32)
        eps = eps_fn(x, tt).astype(jnp.float32)
        x0 = x0_from_eps(schedule, x, tt, eps)
        if clip_x0:
            x0 = jnp.clip(x0, -1.0, 1.0)
            eps = (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a)  # keep the update consistent with the clip
        sigma = eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev))
        direction = jnp.sqrt(jnp.maximum(1.0 - a_prev - sigma**2, 0.0)) * eps
        return jnp.sqrt(a_prev) * x0 + direction + sigma * jax.random.normal(k, x.shape), None

    rev = lambda a: a[::-1]
    keys = jax.random.split(k_steps, ts.shape[0])
    x, _ = jax.lax.scan(step, x, (rev(ts), rev(abar), rev(abar_prev), keys))
    return x


def ddim_encode(eps_fn, schedule: DiffusionSchedule, x0, num_steps: int):
    """Deterministic DDIM inversion x_0 -> x_T (Song et al. 2021, sec. 5.4): the eta=0 update run forwards,
    with ε evaluated at the current point and the next step's index (exact as the step size -> 0).
    ``ddim_sample(..., eta=0, x_T=ddim_encode(...))`` reconstructs x0 up to discretisation error."""
    ts, abar, abar_prev = _strided(schedule, num_steps)
    batch = x0.shape[0]

    def step(x, inputs):
        t, a, a_prev = inputs
        tt = jnp.full((batch,), t, jnp.int32)
        eps = eps_fn(x, tt).astype(jnp.float32)
        x0_hat = (x - jnp.sqrt(1.0 - a_prev) * eps) / jnp.sqrt(a_prev)
        return jnp.sqrt(a) * x0_hat + jnp.sqrt(1.0 - a) * eps, None

    x, _ = jax.lax.scan(step, jnp.asarray(x0, jnp.float32), (ts, abar, abar_prev))
    return x


def guided_eps_fn(eps_fn, labels, null_label: int, scale: float):
    """Classifier-free guidance (Ho & Salimans 2021, eq. 6): eps~ = (1 + w) eps(x, t, c) - w eps(x, t, ∅).

    ``eps_fn(x, t, labels)`` is a conditional network trained with label dropout (labels replaced by
    ``null_label``); ``labels`` [B] int. ``scale`` w = 0 is the plain conditional model. Both passes run as
    one network call on the doubled batch. Returns ``(x, t) -> eps`` for the samplers above (a network
    returning ``(eps, var_interp)`` gets the guided eps and its conditional variance output).
    """
    labels = jnp.asarray(labels, jnp.int32)
    if isinstance(scale, (int, float)) and scale == 0:  # a traced scale takes the two-pass path
        return lambda x, t: eps_fn(x, t, labels)

    def guided(x, t):
        both = eps_fn(jnp.concatenate([x, x]), jnp.concatenate([t, t]),
                      jnp.concatenate([labels, jnp.full_like(labels, null_label)]))
        extra = None
        if isinstance(both, (tuple, list)):  # (eps, var_interp): guide eps, keep the conditional variance
            both, extra = both[0], jnp.split(both[1], 2)[0]
        cond, uncond = jnp.split(both.astype(jnp.float32), 2)
        eps = (1.0 + scale) * cond - scale * uncond
        return eps if extra is None else (eps, extra)

    return guided


__all__ = ["ddpm_sample", "ddim_sample", "ddim_encode", "ddim_timesteps", "guided_eps_fn"]
