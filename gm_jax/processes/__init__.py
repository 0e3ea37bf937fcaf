"""Noise processes of diffusion models: discrete-time beta schedules (DDPM) and their Gaussian marginals
and posteriors. SDEs (VE, VP, sub-VP) arrive with the score-based models (issue 4)."""

from gm_jax.processes.discrete import (
    VARIANCES, DiffusionSchedule, cosine_beta_schedule, eps_from_prediction, p_mean_variance, split_network_output, eps_from_v, eps_from_x0, linear_beta_schedule, make_schedule,
    q_posterior, q_sample, v_from_eps, x0_from_eps, x0_from_v,
)

__all__ = [
    "DiffusionSchedule", "make_schedule", "linear_beta_schedule", "cosine_beta_schedule", "q_sample",
    "q_posterior", "p_mean_variance", "VARIANCES", "eps_from_prediction", "split_network_output", "x0_from_eps", "eps_from_x0", "v_from_eps", "x0_from_v", "eps_from_v",
]
from gm_jax.processes.sde import SDES, SubVPSDE, VESDE, VPSDE  # noqa: E402
__all__ += ["SDES", "VESDE", "VPSDE", "SubVPSDE"]
