"""The variational bound of a discrete-time diffusion model (Ho et al. 2020, eq. 5) and the hybrid loss of
Nichol & Dhariwal (2021, "Improved Denoising Diffusion Probabilistic Models", sec. 3.1).

-log p(x_0) <= L_T + sum_{t=2}^T L_{t-1} + L_0 with
  L_T     = KL(q(x_T | x_0) || N(0, I)),
  L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),
  L_0     = -log p(x_0 | x_1), a Gaussian discretized onto the data's K levels in [-1, 1] (their eq. 13),
so the bound is in nats relative to the discrete data (DESIGN.md). With ``num_levels=None`` the decoder is
a continuous Gaussian density and the bound is on the differential entropy of continuous data.

The network is a callable ``net_fn(x_t [B, ...], t int32 [B]) -> [B, ...]`` predicting ``prediction``
(``"eps"``, ``"x0"`` or ``"v"``), or a pair ``(prediction, var_interp)`` with ``variance="learned"``;
t is the 0-based step of :mod:`gm_jax.processes.discrete`, as for :mod:`gm_jax.samplers.diffusion`.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax import distributions as D
from gm_jax.errors import GMJaxError
from gm_jax.processes.discrete import (PREDICTIONS, VARIANCES, DiffusionSchedule, call_denoiser, check_choice,
                                       p_mean_variance, q_posterior, q_sample)
from gm_jax.shapes import mean_event

__all__ = ["diffusion_vlb", "hybrid_loss", "prior_kl", "stratified_timesteps", "vlb_term", "VLBUnits"]

VLBUnits = Literal["bits", "nats"]


def prior_kl(schedule: DiffusionSchedule, x0):
    """L_T = KL(q(x_T | x_0) || N(0, I)) [B] in nats (no parameters; ~0 for a good schedule)."""
    mean = schedule.sqrt_alphas_cumprod[-1] * x0
    log_std = 0.5 * jnp.log(schedule.one_minus_alphas_cumprod[-1])
    return D.diag_gaussian_kl(mean, jnp.broadcast_to(log_std, x0.shape))


def vlb_term(schedule: DiffusionSchedule, x0, x_t, t, out, *, num_levels: int | None, prediction: str = "eps",
             variance: str = "posterior", var_interp=None):
    """The bound's term at 0-based step t [B]: L_{t-1} = KL(q || p) for t >= 1, the decoder NLL L_0 at t = 0.

    Args:
      x0: model-space data [B, ...] (bin centres in [-1, 1] for discrete data). x_t: a draw of q(x_t | x0).
      out (and var_interp): the network's output at (x_t, t), predicting ``prediction``.
      num_levels: K of the discretized decoder, or None for a continuous Gaussian decoder.
    Returns: [B] nats.
    """
    mean, log_var, _ = p_mean_variance(schedule, x_t, t, out, prediction=prediction, variance=variance,
                                       var_interp=var_interp)
    true_mean, _, true_log_var = q_posterior(schedule, x0, x_t, t)
    log_std = jnp.broadcast_to(0.5 * log_var, mean.shape)
    kl = D.diag_gaussian_kl(true_mean, jnp.broadcast_to(0.5 * true_log_var, mean.shape), mean, log_std)
    if num_levels is None:
        decoder_nll = -D.diag_gaussian_log_prob(x0, mean, log_std)
    else:
        decoder_nll = -D.discretized_gaussian_log_prob(x0, mean, log_std, num_levels)
    return jnp.where(t == 0, decoder_nll, kl)


def diffusion_vlb(net_fn, schedule: DiffusionSchedule, x0, key, *, num_levels: int | None,
                  prediction: str = "eps", variance: str = "posterior", num_timesteps: int | None = None):
    """The variational bound on -log p(x_0) [B], in nats per example.

    ``num_timesteps=None`` sums every term exactly (T network calls, one ``lax.scan``). An integer n returns
    the unbiased estimate prior + L_0 + sum_j w_j L_{t_j} from n + 1 network calls: the decoder term L_0 is
    always computed, since its scale differs from the KL terms' (a uniform draw that hits or misses it moves a
    test-set mean by about a nat on 2-D points), and t_1..t_n are stratified over 1..T-1
    (:func:`stratified_timesteps`). Each term uses its own draw x_t ~ q(x_t | x_0). Divide by D ln 2 for
    bits/dim (:func:`gm_jax.losses.bits_per_dim`).
    """
    check_choice("diffusion_vlb", "prediction", prediction, PREDICTIONS)
    check_choice("diffusion_vlb", "variance", variance, VARIANCES)
    T = schedule.num_steps
    if num_timesteps is not None and num_timesteps < 1:
        raise GMJaxError(f"diffusion_vlb: num_timesteps must be >= 1 or None (all {T} steps), got {num_timesteps}")
    batch = x0.shape[0]

    def term(t, k):
        noise = jax.random.normal(k, x0.shape)
        x_t = q_sample(schedule, x0, t, noise)
        out, interp = call_denoiser("diffusion_vlb", net_fn, x_t, t, variance)
        return vlb_term(schedule, x0, x_t, t, out, num_levels=num_levels, prediction=prediction, variance=variance,
                        var_interp=interp)

    if num_timesteps is None:
        def body(total, inputs):
            i, k = inputs
            return total + term(jnp.full((batch,), i, jnp.int32), k), None

        total, _ = jax.lax.scan(body, jnp.zeros((batch,), jnp.float32), (jnp.arange(T), jax.random.split(key, T)))
    else:
        k_t, k_0, k_noise = jax.random.split(key, 3)
        total = term(jnp.zeros((batch,), jnp.int32), k_0)
        if T > 1:
            ts, weights = stratified_timesteps(k_t, T, num_draws=num_timesteps, batch=batch)

            def body(total, inputs):
                t, w, k = inputs
                return total + w * term(t, k), None

            total, _ = jax.lax.scan(body, total, (ts, weights, jax.random.split(k_noise, len(weights))))
    return prior_kl(schedule, x0) + total


def stratified_timesteps(key, num_steps: int, *, num_draws: int, batch: int):
    """Steps t_j [n, batch] and weights w_j [n] with E[sum_j w_j f(t_j)] = sum_{t=1}^{T-1} f(t) for any f.

    1..T-1 is cut into n = min(num_draws, T - 1) contiguous strata of near-equal size; t_j is uniform in
    stratum j (independently per example) and w_j is that stratum's size. Stratifying keeps the estimate's
    variance near that of the summand's variation within strata, not across all of 1..T-1.
    """
    n = min(num_draws, num_steps - 1)
    edges = [1 + (j * (num_steps - 1)) // n for j in range(n + 1)]
    lo = jnp.asarray(edges[:-1], jnp.int32)
    sizes = jnp.asarray([b - a for a, b in zip(edges[:-1], edges[1:])], jnp.int32)
    offsets = jnp.floor(jax.random.uniform(key, (n, batch)) * sizes[:, None]).astype(jnp.int32)
    return lo[:, None] + jnp.minimum(offsets, sizes[:, None] - 1), sizes.astype(jnp.float32)


def hybrid_loss(net_fn, schedule: DiffusionSchedule, x0, key, *, num_levels: int | None, vlb_weight: float = 0.001,
                vlb_units: VLBUnits = "bits", return_aux: bool = False):
    """L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021, sec. 3.1) for a learned-variance network.

    ``net_fn(x_t, t) -> (eps, var_interp)``. One t ~ U{0..T-1} per example; L_simple is the eps-MSE
    averaged over the event axes, and L_vlb is estimated as T * L_t averaged over the event axes, with a
    stop-gradient on eps, so the bound trains only the variance and the MSE drives the mean (their
    choice, as the bound's gradient on the mean is noisy).

    ``vlb_units``: the unit lambda multiplies. ``"bits"`` (default) follows their official code, whose
    L_vlb terms are in bits per dimension (so lambda = 0.001 weighs L_t by T / 1000 / ln 2 per nat);
    ``"nats"`` uses nats per dimension, ln 2 times more weight.

    Returns: the per-example loss [B]; with ``return_aux`` also {"vlb_term": L_t [B] in nats}.
    """
    if vlb_units not in typing.get_args(VLBUnits):
        raise GMJaxError(f"hybrid_loss: unknown vlb_units '{vlb_units}'; choose one of bits, nats")
    k_t, k_noise = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, schedule.num_steps)
    noise = jax.random.normal(k_noise, x0.shape)
    x_t = q_sample(schedule, x0, t, noise)
    eps, interp = call_denoiser("hybrid_loss", net_fn, x_t, t, "learned")
    mse = mean_event(jnp.square(eps - noise))
    vlb = vlb_term(schedule, x0, x_t, t, jax.lax.stop_gradient(eps), num_levels=num_levels, variance="learned",
                   var_interp=interp)
    per_dim = vlb / x0[0].size / (math.log(2.0) if vlb_units == "bits" else 1.0)
    loss = mse + vlb_weight * schedule.num_steps * per_dim
    return (loss, {"vlb_term": vlb}) if return_aux else loss
