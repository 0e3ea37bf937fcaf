"""Discrete-time Gaussian diffusion (Ho et al. 2020, "Denoising Diffusion Probabilistic Models").

The forward process q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), t = 1..T, has the marginal
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with abar_t = prod_{s<=t} (1 - beta_s), and the
posterior q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) with

    mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
    beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.

Time indices here are 0-based: entry i of every array is step t = i + 1, and ``alphas_cumprod_prev[0]``
is abar_0 = 1. Functions take ``t`` as int [B] indices and broadcast per-example coefficients over the
event axes of x [B, ...].
"""

from __future__ import annotations

import typing
from typing import Literal, NamedTuple

import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.shapes import check_output, per_example


class DiffusionSchedule(NamedTuple):
    """Every per-step coefficient [T] the process uses, computed once in float64 by :func:`make_schedule` and
    stored as float32 (as Nichol & Dhariwal's reference code does). Differences such as 1 - abar_t are never
    formed from float32 values at run time: at small t they would lose most of their digits (1 - abar_1 =
    beta_1 = 1e-4 keeps 3 of float32's 7). A NamedTuple, so a schedule is a pytree: it passes through
    ``jax.jit`` as an argument and can be stacked and vmapped over."""

    betas: jnp.ndarray
    alphas_cumprod: jnp.ndarray  # abar_t
    alphas_cumprod_prev: jnp.ndarray  # abar_{t-1}, with abar_0 = 1
    sqrt_alphas_cumprod: jnp.ndarray  # sqrt(abar_t)
    sqrt_one_minus_alphas_cumprod: jnp.ndarray  # sqrt(1 - abar_t)
    one_minus_alphas_cumprod: jnp.ndarray  # 1 - abar_t
    one_minus_alphas_cumprod_prev: jnp.ndarray  # 1 - abar_{t-1} (0 at t = 1)
    sqrt_recip_alphas_cumprod: jnp.ndarray  # 1 / sqrt(abar_t)
    sqrt_recipm1_alphas_cumprod: jnp.ndarray  # sqrt(1 / abar_t - 1)
    posterior_mean_coef_x0: jnp.ndarray  # sqrt(abar_{t-1}) beta_t / (1 - abar_t)
    posterior_mean_coef_xt: jnp.ndarray  # sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t)
    posterior_variance: jnp.ndarray  # beta~_t
    posterior_log_variance: jnp.ndarray  # log beta~_t, with beta~_1 (= 0) replaced by beta~_2 (Ho et al.)
    log_betas: jnp.ndarray  # log beta_t
    beta_log_variance: jnp.ndarray  # log beta_t with beta_1 replaced by beta~_2 (Ho et al.'s "fixedlarge")

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]


def linear_beta_schedule(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020): betas linear from ``beta_start`` to ``beta_end``, rescaled by 1000 / T so other
    step counts keep the same total noise (as Nichol & Dhariwal 2021 do). float64 [T]."""
    if num_steps < 1:
        raise GMJaxError(f"num_steps must be >= 1, got {num_steps}")
    scale = 1000.0 / num_steps
    if not 0 < scale * beta_start <= scale * beta_end < 1:
        raise GMJaxError(f"linear_beta_schedule: with num_steps={num_steps} the rescaled betas run from "
                         f"{scale * beta_start:g} to {scale * beta_end:g}, outside (0, 1); use more steps or a "
                         f"smaller beta_end (at most {num_steps / 1000.0:g} here)")
    return np.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=np.float64)


def cosine_beta_schedule(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021), "Improved DDPM": abar(t) = f(t) / f(0), f(t) = cos((t/T + s)/(1 + s) pi/2)^2;
    beta_t = 1 - abar(t) / abar(t-1), clipped at ``max_beta`` to avoid the singularity at t = T. float64 [T]."""
    if num_steps < 1:
        raise GMJaxError(f"num_steps must be >= 1, got {num_steps}")
    f = lambda u: np.cos((u / num_steps + s) / (1 + s) * np.pi / 2) ** 2
    t = np.arange(num_steps + 1, dtype=np.float64)
    abar = f(t) / f(0.0)
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def make_schedule(betas) -> DiffusionSchedule:
    """The coefficients of the process with the given betas [T] in (0, 1), each computed in float64."""
    betas = np.asarray(betas, np.float64)
    if betas.ndim != 1 or not np.all((betas > 0) & (betas < 1)):
        raise GMJaxError("betas must be a 1-D array of values in (0, 1)")
    log_alphas = np.log1p(-betas)
    log_abar = np.cumsum(log_alphas)
    abar = np.exp(log_abar)
    one_minus_abar = -np.expm1(log_abar)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    one_minus_abar_prev = np.concatenate([[0.0], one_minus_abar[:-1]])
    post_var = betas * one_minus_abar_prev / one_minus_abar
    post_var_clipped = np.concatenate([post_var[1:2], post_var[1:]]) if len(betas) > 1 else betas
    beta_var = np.concatenate([post_var[1:2], betas[1:]]) if len(betas) > 1 else betas
    as32 = lambda a: jnp.asarray(a, jnp.float32)
    return DiffusionSchedule(
        betas=as32(betas), alphas_cumprod=as32(abar), alphas_cumprod_prev=as32(abar_prev),
        sqrt_alphas_cumprod=as32(np.sqrt(abar)), sqrt_one_minus_alphas_cumprod=as32(np.sqrt(one_minus_abar)),
        one_minus_alphas_cumprod=as32(one_minus_abar), one_minus_alphas_cumprod_prev=as32(one_minus_abar_prev),
        sqrt_recip_alphas_cumprod=as32(np.exp(-0.5 * log_abar)),
        sqrt_recipm1_alphas_cumprod=as32(np.sqrt(np.expm1(-log_abar))),
        posterior_mean_coef_x0=as32(np.sqrt(abar_prev) * betas / one_minus_abar),
        posterior_mean_coef_xt=as32(np.exp(0.5 * log_alphas) * one_minus_abar_prev / one_minus_abar),
        posterior_variance=as32(post_var), posterior_log_variance=as32(np.log(post_var_clipped)),
        log_betas=as32(np.log(betas)), beta_log_variance=as32(np.log(beta_var)),
    )


def _coef(coef, t, x):
    """coef[t] [B] reshaped to broadcast against x [B, ...]."""
    return per_example(jnp.take(coef, t), x)


Prediction = Literal["eps", "x0", "v"]
PREDICTIONS = typing.get_args(Prediction)
Variance = Literal["posterior", "beta", "learned"]
VARIANCES = typing.get_args(Variance)


def check_choice(function: str, name: str, value, choices) -> None:
    """One line unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise GMJaxError(f"{function}: unknown {name} '{value}'; choose one of {', '.join(map(str, choices))}")


def check_clip_range(function: str, clip_x0):
    """``None`` or a (low, high) pair with low < high: the model-space range predicted x_0 is clipped to."""
    if clip_x0 is None:
        return None
    try:
        lo, hi = (float(v) for v in clip_x0)
    except (TypeError, ValueError):
        raise GMJaxError(f"{function}: clip_x0 must be None or a (low, high) pair such as (-1.0, 1.0), got "
                         f"{clip_x0!r}") from None
    if not lo < hi:
        raise GMJaxError(f"{function}: clip_x0 must have low < high, got {clip_x0!r}")
    return lo, hi


def q_sample(schedule: DiffusionSchedule, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise: a draw from q(x_t | x_0) given standard normal noise."""
    return _coef(schedule.sqrt_alphas_cumprod, t, x0) * x0 + _coef(schedule.sqrt_one_minus_alphas_cumprod, t, x0) * noise


def q_posterior(schedule: DiffusionSchedule, x0, x_t, t):
    """Mean [B, ...], variance and clipped log-variance (broadcastable [B, 1, ...]) of q(x_{t-1} | x_t, x_0)."""
    mean = _coef(schedule.posterior_mean_coef_x0, t, x_t) * x0 + _coef(schedule.posterior_mean_coef_xt, t, x_t) * x_t
    return mean, _coef(schedule.posterior_variance, t, x_t), _coef(schedule.posterior_log_variance, t, x_t)


def x0_from_eps(schedule: DiffusionSchedule, x_t, t, eps):
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) = x_t / sqrt(abar_t) - sqrt(1 / abar_t - 1) eps."""
    return _coef(schedule.sqrt_recip_alphas_cumprod, t, x_t) * x_t - _coef(schedule.sqrt_recipm1_alphas_cumprod, t, x_t) * eps


def eps_from_x0(schedule: DiffusionSchedule, x_t, t, x0):
    """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)."""
    return (x_t - _coef(schedule.sqrt_alphas_cumprod, t, x_t) * x0) / _coef(schedule.sqrt_one_minus_alphas_cumprod, t, x_t)


def v_from_eps(schedule: DiffusionSchedule, x_t, t, eps):
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, "Progressive Distillation")."""
    return _coef(schedule.sqrt_alphas_cumprod, t, x_t) * eps - _coef(schedule.sqrt_one_minus_alphas_cumprod, t, x_t) * \
        x0_from_eps(schedule, x_t, t, eps)


def x0_from_v(schedule: DiffusionSchedule, x_t, t, v):
    """x_0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v."""
    return _coef(schedule.sqrt_alphas_cumprod, t, x_t) * x_t - _coef(schedule.sqrt_one_minus_alphas_cumprod, t, x_t) * v


def eps_from_v(schedule: DiffusionSchedule, x_t, t, v):
    """eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v."""
    return _coef(schedule.sqrt_one_minus_alphas_cumprod, t, x_t) * x_t + _coef(schedule.sqrt_alphas_cumprod, t, x_t) * v


def eps_from_prediction(schedule: DiffusionSchedule, x_t, t, out, prediction: str):
    """The ε implied by a network output that predicts ``"eps"``, ``"x0"`` or ``"v"``."""
    check_choice("eps_from_prediction", "prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return out
    if prediction == "x0":
        return eps_from_x0(schedule, x_t, t, out)
    return eps_from_v(schedule, x_t, t, out)


def predict_x0_eps(schedule: DiffusionSchedule, x_t, t, out, *, prediction: str = "eps", clip_x0=None):
    """(x0_hat, eps_hat) [B, ...] from a network output ``out`` that predicts ``prediction``.

    With ``clip_x0=(low, high)`` x0_hat is clipped to that model-space range and eps_hat recomputed from the
    clipped x0_hat, so an update that combines the two stays consistent (Ho et al. clip images to [-1, 1]).
    The eps -> x_0 map multiplies the network's error by sqrt(1 / abar_t - 1), which is large where abar_t
    is near 0 (the last steps of the cosine schedule); "x0" and "v" predictions have no such amplification.
    """
    if prediction == "eps":
        x0 = x0_from_eps(schedule, x_t, t, out)
    elif prediction == "x0":
        x0 = out
    elif prediction == "v":
        x0 = x0_from_v(schedule, x_t, t, out)
    else:
        check_choice("predict_x0_eps", "prediction", prediction, PREDICTIONS)
    if clip_x0 is not None:
        x0 = jnp.clip(x0, clip_x0[0], clip_x0[1])
    elif prediction == "eps":
        return x0, out
    return x0, eps_from_x0(schedule, x_t, t, x0)


def split_network_output(out, variance: str):
    """(out, var_interp or None) in float32 from a network output: ``(out, var_interp)`` when the variance
    is learned, else the prediction alone."""
    if variance == "learned":
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise GMJaxError("variance='learned' needs the network to return a pair (prediction, var_interp)")
        return out[0].astype(jnp.float32), out[1].astype(jnp.float32)
    return out.astype(jnp.float32), None


def call_denoiser(function: str, net_fn, x_t, t, variance: str):
    """net_fn(x_t, t) in float32, its output shape checked against x_t at trace time: the prediction, or
    (prediction, var_interp) with ``variance="learned"``. Returns (prediction, var_interp or None)."""
    raw = net_fn(x_t, t)
    name = "net_fn(x_t, t)"
    if variance == "learned":
        if not isinstance(raw, (tuple, list)) or len(raw) != 2:
            raise GMJaxError(f"{function}: with variance='learned' {name} must return a pair (prediction, "
                             f"var_interp), each of shape {tuple(x_t.shape)}")
        check_output(function, name + "[0]", raw[0], x_t.shape)
        check_output(function, name + "[1]", raw[1], x_t.shape)
    else:
        check_output(function, name, raw, x_t.shape)
    return split_network_output(raw, variance)


def p_mean_variance(schedule: DiffusionSchedule, x_t, t, out, *, prediction: str = "eps",
                    variance: str = "posterior", var_interp=None, clip_x0=None):
    """The reverse kernel p(x_{t-1} | x_t) = N(mean, exp(log_var)) implied by a network output.

    The mean is the posterior mean q(x_{t-1} | x_t, x0_hat) at the predicted x0_hat (see
    :func:`predict_x0_eps`; optionally clipped to ``clip_x0``), equal to
    (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) when unclipped. ``variance``: ``"posterior"``
    beta~_t (their sigma_t^2 = beta~_t), ``"beta"`` beta_t (with beta~_2 at t = 1, as their code does), or
    ``"learned"``: the interpolation exp(v log beta_t + (1 - v) log beta~_t) (beta~_1 clipped to beta~_2)
    with v = (var_interp + 1) / 2 (Nichol & Dhariwal 2021, eq. 15), ``var_interp`` like x_t in [-1, 1].

    Returns: mean [B, ...], log_var (broadcastable against mean), x0_hat [B, ...].
    """
    check_choice("p_mean_variance", "variance", variance, VARIANCES)
    x0_hat, _ = predict_x0_eps(schedule, x_t, t, out, prediction=prediction, clip_x0=clip_x0)
    mean, _, post_log_var = q_posterior(schedule, x0_hat, x_t, t)
    if variance == "posterior":
        log_var = post_log_var
    elif variance == "beta":
        log_var = _coef(schedule.beta_log_variance, t, x_t)
    else:
        if var_interp is None:
            raise GMJaxError("variance='learned' needs var_interp, the network's variance output")
        # The upper end is log beta_t at every t, t = 1 included (beta_1 > beta~_2 lets the decoder widen).
        frac = (var_interp + 1.0) / 2.0
        log_var = frac * _coef(schedule.log_betas, t, x_t) + (1.0 - frac) * post_log_var
    return mean, log_var, x0_hat


__all__ = [
    "DiffusionSchedule", "make_schedule", "linear_beta_schedule", "cosine_beta_schedule", "Prediction",
    "PREDICTIONS", "Variance", "VARIANCES", "q_sample", "q_posterior", "p_mean_variance", "predict_x0_eps",
    "eps_from_prediction", "split_network_output", "x0_from_eps", "eps_from_x0", "v_from_eps", "x0_from_v",
    "eps_from_v", "call_denoiser", "check_choice", "check_clip_range",
]
