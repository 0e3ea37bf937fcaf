"""Noise processes of diffusion and score models, as pytrees: discrete-time beta schedules (DDPM) with
their Gaussian marginals and posteriors, the continuous-time SDEs (VE, VP, sub-VP), and the geometric noise
levels of noise-conditional score networks."""

from gm_jax.processes.discrete import (
    PREDICTIONS, VARIANCES, DiffusionSchedule, Prediction, Variance, cosine_beta_schedule, eps_from_prediction,
    eps_from_v, eps_from_x0, linear_beta_schedule, make_schedule, p_mean_variance, predict_x0_eps, q_posterior,
    q_sample, split_network_output, v_from_eps, x0_from_eps, x0_from_v,
)
from gm_jax.processes.noise_levels import geometric_noise_levels
from gm_jax.processes.sde import SDES, Perturbation, SubVPSDE, VESDE, VPSDE

__all__ = [
    "DiffusionSchedule", "make_schedule", "linear_beta_schedule", "cosine_beta_schedule", "Prediction",
    "PREDICTIONS", "Variance", "VARIANCES", "q_sample", "q_posterior", "p_mean_variance", "predict_x0_eps",
    "eps_from_prediction", "split_network_output", "x0_from_eps", "eps_from_x0", "v_from_eps", "x0_from_v",
    "eps_from_v", "geometric_noise_levels", "SDES", "Perturbation", "VESDE", "VPSDE", "SubVPSDE",
]
