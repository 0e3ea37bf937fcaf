"""Samplers: jittable loops that take the network as a callable."""

from gm_jax.samplers.ancestral import ancestral_sample
from gm_jax.samplers.diffusion import ddim_encode, ddim_sample, ddim_timesteps, ddpm_sample, guided_eps_fn
from gm_jax.samplers.flow import reverse_flow_sample
from gm_jax.samplers.interpolation import lerp, slerp

__all__ = ["ancestral_sample", "ddpm_sample", "ddim_sample", "ddim_encode", "ddim_timesteps", "guided_eps_fn", "lerp", "reverse_flow_sample", "slerp"]
from gm_jax.samplers.langevin import (annealed_langevin_sample, langevin_sample, replay_buffer_init,  # noqa: E402
                                        replay_buffer_sample, replay_buffer_update, uniform_init)
__all__ += ["langevin_sample", "annealed_langevin_sample", "uniform_init", "replay_buffer_init", "replay_buffer_sample", "replay_buffer_update"]
from gm_jax.samplers.sde import ode_log_likelihood, pc_sample, probability_flow_sample, reverse_sde_sample  # noqa: E402
__all__ += ["reverse_sde_sample", "pc_sample", "probability_flow_sample", "ode_log_likelihood"]
