"""Noise processes of diffusion models: discrete-time beta schedules (DDPM) and their Gaussian marginals
and posteriors. SDEs (VE, VP, sub-VP) arrive with the score-based models (issue 4)."""

from gm_jax.processes.discrete import (
    DiffusionSchedule, cosine_beta_schedule, eps_from_v, eps_from_x0, linear_beta_schedule, make_schedule,
    q_posterior, q_sample, v_from_eps, x0_from_eps, x0_from_v,
)

__all__ = [
    "DiffusionSchedule", "make_schedule", "linear_beta_schedule", "cosine_beta_schedule", "q_sample",
    "q_posterior", "x0_from_eps", "eps_from_x0", "v_from_eps", "x0_from_v", "eps_from_v",
]
