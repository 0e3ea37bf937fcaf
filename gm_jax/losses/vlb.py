"""The variational bound of a discrete-time diffusion model (Ho et al. 2020, eq. 5) and the hybrid loss of
Nichol & Dhariwal (2021, "Improved Denoising Diffusion Probabilistic Models", sec. 3.1).

-log p(x_0) <= L_T + sum_{t=2}^T L_{t-1} + L_0 with
  L_T     = KL(q(x_T | x_0) || N(0, I)),
  L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),
  L_0     = -log p(x_0 | x_1), a Gaussian discretized onto the data's K levels in [-1, 1] (their eq. 13),
so the bound is in nats relative to the discrete data (DESIGN.md). With ``num_levels=None`` the decoder is
a continuous Gaussian density and the bound is on the differential entropy of continuous data.

The network is a callable ``eps_fn(x_t, t) -> eps`` (or ``(eps, var_interp)`` with ``variance="learned"``)
with 0-based t, as for the samplers in :mod:`gm_jax.samplers.diffusion`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gm_jax import distributions as D
from gm_jax.errors import GMJaxError
from gm_jax.processes.discrete import DiffusionSchedule, p_mean_variance, q_posterior, q_sample, split_network_output


def _gaussian_kl(mean1, log_var1, mean2, log_var2):
    """KL(N(mean1, e^log_var1) || N(mean2, e^log_var2)) per element."""
    return 0.5 * (log_var2 - log_var1 + jnp.exp(log_var1 - log_var2) + (mean1 - mean2) ** 2 * jnp.exp(-log_var2) - 1.0)


def _sum_event(x):
    return x.reshape(x.shape[0], -1).sum(axis=-1)


def prior_kl(schedule: DiffusionSchedule, x0):
    """L_T = KL(q(x_T | x_0) || N(0, I)) [B] in nats (no parameters; ~0 for a good schedule)."""
    abar = schedule.alphas_cumprod[-1]
    return _sum_event(_gaussian_kl(jnp.sqrt(abar) * x0, jnp.log1p(-abar), 0.0, 0.0))


def vlb_term(schedule: DiffusionSchedule, x0, x_t, t, eps, num_levels: int | None, variance: str = "posterior",
             var_interp=None):
    """The bound's term at 0-based step t [B]: L_{t-1} = KL(q || p) for t >= 1, the decoder NLL L_0 at t = 0.

    Args:
      x0: model-space data [B, ...] (bin centres in [-1, 1] for discrete data). x_t: a draw of q(x_t | x0).
      eps (and var_interp): the network's output at (x_t, t).
      num_levels: K of the discretized decoder, or None for a continuous Gaussian decoder.
    Returns: [B] nats.
    """
    mean, log_var, _ = p_mean_variance(schedule, x_t, t, eps, variance, var_interp)
    true_mean, _, true_log_var = q_posterior(schedule, x0, x_t, t)
    kl = _sum_event(_gaussian_kl(true_mean, true_log_var, mean, log_var))
    log_std = jnp.broadcast_to(0.5 * log_var, mean.shape)
    if num_levels is None:
        decoder_nll = -D.diag_gaussian_log_prob(x0, mean, log_std)
    else:
        decoder_nll = -D.discretized_gaussian_log_prob(x0, mean, log_std, num_levels)
    return jnp.where(t == 0, decoder_nll, kl)


def diffusion_vlb(eps_fn, schedule: DiffusionSchedule, x0, key, num_levels: int | None, variance: str = "posterior",
                  num_timesteps: int | None = None):
    """The variational bound on -log p(x_0) [B], in nats per example.

    ``num_timesteps=None`` sums every term exactly (T network calls, one ``lax.scan``); an integer n draws
    n steps uniformly per example and returns the unbiased estimate prior + (T / n) sum of the drawn terms.
    Each term uses its own draw x_t ~ q(x_t | x_0). Divide by D ln 2 for bits/dim
    (:func:`gm_jax.losses.bits_per_dim`).
    """
    T = schedule.num_steps
    if num_timesteps is not None and num_timesteps < 1:
        raise GMJaxError(f"num_timesteps must be >= 1 or None (all {T} steps), got {num_timesteps}")
    batch = x0.shape[0]

    def term(t, k):
        noise = jax.random.normal(k, x0.shape)
        x_t = q_sample(schedule, x0, t, noise)
        eps, interp = split_network_output(eps_fn(x_t, t), variance)
        return vlb_term(schedule, x0, x_t, t, eps, num_levels, variance, interp)

    if num_timesteps is None:
        def body(total, inputs):
            i, k = inputs
            return total + term(jnp.full((batch,), i, jnp.int32), k), None

        total, _ = jax.lax.scan(body, jnp.zeros((batch,), jnp.float32), (jnp.arange(T), jax.random.split(key, T)))
    else:
        k_t, k_noise = jax.random.split(key)
        ts = jax.random.randint(k_t, (num_timesteps, batch), 0, T)

        def body(total, inputs):
            t, k = inputs
            return total + term(t, k), None

        total, _ = jax.lax.scan(body, jnp.zeros((batch,), jnp.float32), (ts, jax.random.split(k_noise, num_timesteps)))
        total = total * (T / num_timesteps)
    return prior_kl(schedule, x0) + total


def hybrid_loss(eps_fn, schedule: DiffusionSchedule, x0, key, num_levels: int | None, vlb_weight: float = 0.001):
    """L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021, sec. 3.1) for a learned-variance network.

    ``eps_fn(x_t, t) -> (eps, var_interp)``. One t ~ U{0..T-1} per example; L_simple is the eps-MSE
    averaged over the event axes, L_vlb = T * L_t averaged over the event axes (nats/dim) with a
    stop-gradient on eps, so the bound trains only the variance and the MSE drives the mean (their
    choice, as the bound's gradient on the mean is noisy). Returns per-example (loss [B], vlb [B] in nats).
    """
    k_t, k_noise = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, schedule.num_steps)
    noise = jax.random.normal(k_noise, x0.shape)
    x_t = q_sample(schedule, x0, t, noise)
    eps, interp = split_network_output(eps_fn(x_t, t), "learned")
    dims = x0[0].size
    mse = jnp.mean(jnp.square(eps - noise).reshape(x0.shape[0], -1), axis=-1)
    vlb = vlb_term(schedule, x0, x_t, t, jax.lax.stop_gradient(eps), num_levels, "learned", interp)
    return mse + vlb_weight * schedule.num_steps * vlb / dims, vlb


__all__ = ["diffusion_vlb", "hybrid_loss", "prior_kl", "vlb_term"]
