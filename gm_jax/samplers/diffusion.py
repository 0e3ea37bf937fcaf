"""Samplers of discrete-time diffusion models: DDPM ancestral sampling (Ho et al. 2020, Alg. 2), DDIM
(Song, Meng & Ermon 2021) with its deterministic inversion, and classifier-free guidance (Ho & Salimans
2021).

Each is one ``lax.scan`` over the (possibly strided) steps with a fixed-shape state, so the whole loop
compiles to one XLA program. The network is a plain callable ``net_fn(x_t [B, ...], t int32 [B])``
returning its prediction [B, ...] of ``prediction`` = ε, x_0 or v (or ``(prediction, var_interp)`` with
``variance="learned"``, Nichol & Dhariwal 2021); t is the 0-based step index of
:mod:`gm_jax.processes.discrete`. Each sampler's one-step kernel (:func:`ddpm_step`, :func:`ddim_step`) is
public, for loops of one's own that read or steer the trajectory.
"""

from __future__ import annotations

import typing
import warnings
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError, NumericsWarning
from gm_jax.processes.discrete import (PREDICTIONS, VARIANCES, DiffusionSchedule, call_denoiser, check_choice,
                                       check_clip_range, p_mean_variance, predict_x0_eps)
from gm_jax.shapes import check_output

TimestepSpacing = Literal["uniform", "quad", "linspace", "trailing"]
TIMESTEP_SPACINGS = typing.get_args(TimestepSpacing)

# Above this factor sqrt(1 / abar - 1) the eps -> x_0 map turns a 0.1% error of the network into a unit error
# (the linear schedule peaks at 150, the cosine one at 2e4).
_AMPLIFICATION_WARN = 1000.0


def _initial_noise(function: str, key, shape, x_T):
    if x_T is None:
        return jax.random.normal(key, tuple(shape), jnp.float32)
    x_T = jnp.asarray(x_T, jnp.float32)
    if x_T.shape != tuple(shape):
        raise GMJaxError(f"{function}: x_T must have the shape {tuple(shape)}, got {x_T.shape}")
    return x_T


def ddpm_step(net_fn, schedule: DiffusionSchedule, x_t, t, key, *, prediction: str = "eps", variance: str = "beta",
              clip_x0=None):
    """One ancestral step x_t -> x_{t-1} ~ p(x_{t-1} | x_t) at the 0-based step ``t`` (an int scalar, may
    be traced); the step at t = 0 adds no noise. The kernel :func:`ddpm_sample` scans; call it in your own
    loop to read the trajectory. Returns (x_{t-1} [B, ...], x0_hat [B, ...])."""
    t_batch = jnp.full((x_t.shape[0],), t, jnp.int32)
    out, interp = call_denoiser("ddpm_sample", net_fn, x_t, t_batch, variance)
    mean, log_var, x0_hat = p_mean_variance(schedule, x_t, t_batch, out, prediction=prediction, variance=variance,
                                            var_interp=interp, clip_x0=clip_x0)
    noise = jax.random.normal(key, x_t.shape)
    return mean + jnp.where(t > 0, jnp.exp(0.5 * log_var), 0.0) * noise, x0_hat


def ddpm_sample(net_fn, schedule: DiffusionSchedule, key, shape, *, prediction: str = "eps", variance: str = "beta",
                clip_x0=None, x_T=None):
    """Ancestral sampling x_T ~ N(0, I), x_{t-1} ~ p(x_{t-1} | x_t) for t = T..1 (Ho et al. 2020, Alg. 2).

    Args:
      net_fn: ``(x_t [B, ...], t int32 [B]) -> [B, ...]`` predicting ``prediction`` (``"eps"``, ``"x0"`` or
        ``"v"``), or ``(prediction, var_interp)`` with ``variance="learned"``; checked at trace time.
      shape: the batch shape [B, ...] to draw. ``variance``: ``"beta"`` (sigma_t^2 = beta_t, Ho et al.'s
        choice for CIFAR-10), ``"posterior"`` (beta~_t) or ``"learned"``; see
        :func:`gm_jax.processes.p_mean_variance`.
      clip_x0: None, or the model-space range (low, high) the predicted x_0 is clipped to at every step
        (Ho et al. clip images to (-1, 1)).
      x_T: optional starting noise of ``shape`` (else drawn from ``key``).
    Returns: x_0 [shape] (the last step adds no noise).
    """
    check_choice("ddpm_sample", "prediction", prediction, PREDICTIONS)
    check_choice("ddpm_sample", "variance", variance, VARIANCES)
    clip_x0 = check_clip_range("ddpm_sample", clip_x0)
    k_init, k_steps = jax.random.split(key)
    x = _initial_noise("ddpm_sample", k_init, shape, x_T)

    def step(x, inputs):
        i, k = inputs
        x, _ = ddpm_step(net_fn, schedule, x, i, k, prediction=prediction, variance=variance, clip_x0=clip_x0)
        return x, None

    steps = jnp.arange(schedule.num_steps - 1, -1, -1)
    x, _ = jax.lax.scan(step, x, (steps, jax.random.split(k_steps, schedule.num_steps)))
    return x


def ddim_timesteps(num_train_steps: int, num_steps: int, *, spacing: str = "uniform") -> np.ndarray:
    """The increasing, distinct 0-based steps (S of them, fewer where rounding repeats one) a strided
    sampler visits (the last one is where it starts).

    ``spacing``:
    - ``"uniform"`` (default): 0, k, 2k, ..., (S-1) k with k = T // S, the "uniform" skip of Song et al.'s
      official DDIM code (for T divisible by S exactly their sequence). It starts below T - 1 and so
      avoids abar_T ~ 0, where the cosine schedule's eps -> x_0 map amplifies errors ~10^4-fold.
    - ``"quad"``: floor(linspace(0, sqrt(0.8 T), S)^2), their "quad" skip (denser at small t).
    - ``"linspace"``: round(linspace(0, T - 1, S)), anchored at the last step.
    - ``"trailing"``: round(T - j T / S) - 1 for j = S-1..0, anchored at the last step (Lin et al. 2024,
      "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2).
    """
    check_choice("ddim_timesteps", "spacing", spacing, TIMESTEP_SPACINGS)
    if not 1 <= num_steps <= num_train_steps:
        raise GMJaxError(f"ddim_timesteps: num_steps must be in [1, {num_train_steps}] (the schedule's steps), "
                         f"got {num_steps}")
    T, S = num_train_steps, num_steps
    if spacing == "uniform":
        ts = np.arange(S) * (T // S)
    elif spacing == "quad":
        ts = np.floor(np.linspace(0.0, np.sqrt(0.8 * T), S) ** 2)
    elif spacing == "linspace":
        ts = np.round(np.linspace(0, T - 1, S))
    else:
        ts = np.round(np.arange(T, 0, -T / S))[::-1] - 1
    # Rounding can repeat a step ("quad" at S = 50 of T = 1000 gives 49). A step from t to the same t is the
    # identity in DDIM's update (sigma = 0 and x_prev = x_t, for any eta), so the official sampler's
    # repeats cost a network call and change nothing: they are dropped, and fewer than S steps run.
    return np.unique(ts.astype(np.int32))


def _abar_pair(schedule: DiffusionSchedule, t_prev):
    """(sqrt(abar), 1 - abar) at the 0-based step t_prev, or (1, 0) at t_prev = -1 (x_0 itself)."""
    idx = jnp.maximum(t_prev, 0)
    first = t_prev < 0
    return (jnp.where(first, 1.0, schedule.sqrt_alphas_cumprod[idx]),
            jnp.where(first, 0.0, schedule.one_minus_alphas_cumprod[idx]))


def ddim_step(net_fn, schedule: DiffusionSchedule, x_t, t, t_prev, key, *, eta: float = 0.0,
              prediction: str = "eps", clip_x0=None):
    """One DDIM update x_t -> x_{t_prev} (Song, Meng & Ermon 2021, eq. 12) between the 0-based steps ``t``
    and ``t_prev`` < t (-1 for x_0 itself); int scalars, may be traced. Kernel of :func:`ddim_sample`.

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z with
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s). Differences of abar are formed
    from the schedule's 1 - abar, which keeps their digits at small t.
    Returns (x_{t_prev} [B, ...], x0_hat [B, ...]).
    """
    t_batch = jnp.full((x_t.shape[0],), t, jnp.int32)
    out, _ = call_denoiser("ddim_sample", net_fn, x_t, t_batch, "posterior")
    x0, eps = predict_x0_eps(schedule, x_t, t_batch, out, prediction=prediction, clip_x0=clip_x0)
    one_minus_a = schedule.one_minus_alphas_cumprod[t]
    sqrt_a_prev, one_minus_a_prev = _abar_pair(schedule, t_prev)
    a_prev = 1.0 - one_minus_a_prev
    # 1 - abar_t / abar_s = ((1 - abar_t) - (1 - abar_s)) / abar_s
    sigma = eta * jnp.sqrt(one_minus_a_prev / one_minus_a * (one_minus_a - one_minus_a_prev) / a_prev)
    direction = jnp.sqrt(jnp.maximum(one_minus_a_prev - sigma**2, 0.0)) * eps
    return sqrt_a_prev * x0 + direction + sigma * jax.random.normal(key, x_t.shape), x0


def _warn_amplification(schedule: DiffusionSchedule, t_first: int, prediction: str, clip_x0):
    """Warn when the first DDIM step divides by a tiny sqrt(abar): inherent to eps-prediction where
    abar_T ~ 0 (the cosine schedule), not a bug, and worth a remedy. Skipped for traced schedules."""
    if prediction != "eps" or clip_x0 is not None:
        return
    try:
        factor = float(schedule.sqrt_recipm1_alphas_cumprod[t_first])
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return
    if factor > _AMPLIFICATION_WARN:
        warnings.warn(
            f"ddim_sample: the first step t={t_first} has abar={1.0 / (1.0 + factor ** 2):.2e}, so predicting x_0 "
            f"from eps multiplies the network's error by {factor:.0f}; pass clip_x0=(low, high), train with "
            f"prediction='v', or use spacing='uniform' (which starts below the last step)",
            NumericsWarning, stacklevel=3)


def ddim_sample(net_fn, schedule: DiffusionSchedule, key, shape, *, num_steps: int, eta: float = 0.0,
                spacing: str = "uniform", prediction: str = "eps", clip_x0=None, x_T=None):
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) over ``num_steps`` strided steps.

    ``eta=0`` is the deterministic implicit model (the probability-flow ODE's discretisation), ``eta=1``
    the DDPM posterior variance. ``spacing`` picks the steps (:func:`ddim_timesteps`; default Song et al.'s
    "uniform"). With eps-prediction a step where abar ~ 0 amplifies the network's error by
    sqrt(1 / abar - 1) (2e4 at the cosine schedule's last step): a :class:`~gm_jax.errors.NumericsWarning`
    names the remedies (``clip_x0``, v-prediction, the spacing).

    Args: as :func:`ddpm_sample` (``net_fn`` returns one array here); ``num_steps`` in [1, T].
    Returns x_0 [shape].
    """
    if eta < 0:
        raise GMJaxError(f"ddim_sample: eta must be >= 0, got {eta}")
    check_choice("ddim_sample", "prediction", prediction, PREDICTIONS)
    clip_x0 = check_clip_range("ddim_sample", clip_x0)
    ts = ddim_timesteps(schedule.num_steps, num_steps, spacing=spacing)
    _warn_amplification(schedule, int(ts[-1]), prediction, clip_x0)
    k_init, k_steps = jax.random.split(key)
    x = _initial_noise("ddim_sample", k_init, shape, x_T)

    def step(x, inputs):
        t, t_prev, k = inputs
        x, _ = ddim_step(net_fn, schedule, x, t, t_prev, k, eta=eta, prediction=prediction, clip_x0=clip_x0)
        return x, None

    t_prev = np.concatenate([[-1], ts[:-1]]).astype(np.int32)
    keys = jax.random.split(k_steps, ts.shape[0])
    x, _ = jax.lax.scan(step, x, (jnp.asarray(ts[::-1]), jnp.asarray(t_prev[::-1]), keys))
    return x


def ddim_encode(eps_fn, schedule: DiffusionSchedule, x0, *, num_steps: int, spacing: str = "uniform"):
    """Deterministic DDIM inversion x_0 -> x_T (Song et al. 2021, sec. 5.4): the eta=0 update run forwards,
    with ε evaluated at the current point and the next step's index (exact as the step size -> 0).
    ``eps_fn(x, t) -> eps`` predicts the noise. ``ddim_sample(..., eta=0, x_T=ddim_encode(...))`` with the
    same ``num_steps`` and ``spacing`` reconstructs x0 up to discretisation error."""
    ts = ddim_timesteps(schedule.num_steps, num_steps, spacing=spacing)
    t_prev = np.concatenate([[-1], ts[:-1]]).astype(np.int32)
    batch = x0.shape[0]

    def step(x, inputs):
        t, tp = inputs
        tt = jnp.full((batch,), t, jnp.int32)
        eps = check_output("ddim_encode", "eps_fn(x_t, t)", eps_fn(x, tt), x.shape).astype(jnp.float32)
        sqrt_a_prev, one_minus_a_prev = _abar_pair(schedule, tp)
        x0_hat = (x - jnp.sqrt(one_minus_a_prev) * eps) / sqrt_a_prev
        return schedule.sqrt_alphas_cumprod[t] * x0_hat + schedule.sqrt_one_minus_alphas_cumprod[t] * eps, None

    x, _ = jax.lax.scan(step, jnp.asarray(x0, jnp.float32), (jnp.asarray(ts), jnp.asarray(t_prev)))
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


__all__ = ["ddpm_sample", "ddpm_step", "ddim_sample", "ddim_step", "ddim_encode", "ddim_timesteps", "TimestepSpacing",
           "TIMESTEP_SPACINGS", "guided_eps_fn"]
