"""Training objectives as pure functions of callables and arrays (any network library)."""

from gm_jax.losses.elbo import elbo, iwae_bound
from gm_jax.losses.likelihood import bits_per_dim, nll, uniform_nll_nats
from gm_jax.losses.score_matching import ddpm_loss, dsm_loss, sde_dsm_loss
from gm_jax.losses.vlb import diffusion_vlb, hybrid_loss, prior_kl, vlb_term

__all__ = ["elbo", "iwae_bound", "bits_per_dim", "nll", "uniform_nll_nats", "ddpm_loss", "dsm_loss", "sde_dsm_loss",
           "diffusion_vlb", "hybrid_loss", "prior_kl", "vlb_term"]
from gm_jax.losses.energy import contrastive_divergence_loss  # noqa: E402
__all__ += ["contrastive_divergence_loss"]
from gm_jax.losses.adversarial import (GAN_LOSSES, cycle_consistency_loss, discriminator_loss,  # noqa: E402
                                       generator_loss, gradient_penalty, identity_loss, r1_penalty, r2_penalty,
                                       weight_clip)
__all__ += ["GAN_LOSSES", "cycle_consistency_loss", "discriminator_loss", "generator_loss", "gradient_penalty",
            "identity_loss", "r1_penalty", "r2_penalty", "weight_clip"]
