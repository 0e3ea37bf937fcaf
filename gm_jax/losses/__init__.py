"""Training objectives as pure functions of callables and arrays (any network library).

The contract (DESIGN.md): the user's network comes first, then the process or schedule, then the data, then
``key``; options are keyword-only; every loss returns per-example values [B] (the caller reduces), and the
losses with named components return ``(values [B], aux dict of [B] arrays)`` when asked with
``return_aux=True``. Network outputs are shape-checked at trace time.
"""

from gm_jax.losses.adversarial import (GAN_LOSSES, GANLoss, cycle_consistency_loss, discriminator_loss,
                                       generator_loss, gradient_penalty, identity_loss, r1_penalty, r2_penalty,
                                       weight_clip)
from gm_jax.losses.elbo import elbo, iwae_bound
from gm_jax.losses.energy import contrastive_divergence_loss
from gm_jax.losses.likelihood import bits_per_dim, nll, uniform_nll_nats
from gm_jax.losses.score_matching import ddpm_loss, dsm_loss, sde_dsm_loss
from gm_jax.losses.vlb import VLBUnits, diffusion_vlb, hybrid_loss, prior_kl, stratified_timesteps, vlb_term

__all__ = [
    "elbo", "iwae_bound", "bits_per_dim", "nll", "uniform_nll_nats",
    "ddpm_loss", "dsm_loss", "sde_dsm_loss", "diffusion_vlb", "hybrid_loss", "prior_kl", "stratified_timesteps", "vlb_term", "VLBUnits",
    "contrastive_divergence_loss",
    "GAN_LOSSES", "GANLoss", "discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty", "r2_penalty",
    "weight_clip", "cycle_consistency_loss", "identity_loss",
]
