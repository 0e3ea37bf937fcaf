"""Model families bound to the loss/sampler maths; the registry maps CLI names to (config, class)."""

from gm_jax.models.base import Model, config_from_dict, config_to_dict, num_params, override, param_groups
from gm_jax.models.vae import VAE, VAEConfig

MODELS = {"vae": (VAEConfig, VAE)}

__all__ = ["MODELS", "Model", "VAE", "VAEConfig", "config_from_dict", "config_to_dict", "num_params",
           "override", "param_groups"]
