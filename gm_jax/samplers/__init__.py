"""Samplers: jittable loops that take the network as a callable, each beside its one-step kernel."""

from gm_jax.samplers.ancestral import ancestral_sample
from gm_jax.samplers.diffusion import (TIMESTEP_SPACINGS, TimestepSpacing, ddim_encode, ddim_sample, ddim_step,
                                       ddim_timesteps, ddpm_sample, ddpm_step, guided_eps_fn)
from gm_jax.samplers.flow import reverse_flow_sample
from gm_jax.samplers.interpolation import lerp, slerp
from gm_jax.samplers.langevin import (annealed_langevin_sample, annealed_langevin_step, langevin_sample,
                                      langevin_step, replay_buffer_init, replay_buffer_sample, replay_buffer_update,
                                      uniform_init)
from gm_jax.samplers.sde import (TRACES, langevin_corrector_step, ode_log_likelihood, pc_sample, pc_step,
                                 probability_flow_encode, probability_flow_sample, reverse_sde_sample, tsit5_evaluations,
                                 reverse_sde_step)

__all__ = [
    "ancestral_sample", "reverse_flow_sample", "lerp", "slerp",
    "ddpm_sample", "ddpm_step", "ddim_sample", "ddim_step", "ddim_encode", "ddim_timesteps", "TimestepSpacing",
    "TIMESTEP_SPACINGS", "guided_eps_fn",
    "langevin_sample", "langevin_step", "annealed_langevin_sample", "annealed_langevin_step", "uniform_init",
    "replay_buffer_init", "replay_buffer_sample", "replay_buffer_update",
    "reverse_sde_sample", "reverse_sde_step", "pc_sample", "pc_step", "langevin_corrector_step",
    "probability_flow_sample", "probability_flow_encode", "tsit5_evaluations", "ode_log_likelihood", "TRACES",
]
