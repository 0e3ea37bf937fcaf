"""Model families bound to the loss/sampler maths; the registry maps CLI names to (config, class)."""

from gm_jax.models.autoregressive import MADEConfig, MADEModel, PixelCNN, PixelCNNConfig
from gm_jax.models.base import Model, config_from_dict, config_to_dict, num_params, override, param_groups
from gm_jax.models.charlm import CharLM, CharLMConfig
from gm_jax.models.flow import MAF, Glow, GlowConfig, MAFConfig, RealNVP, RealNVPConfig, SplineFlow, SplineFlowConfig
from gm_jax.models.vae import VAE, VAEConfig

MODELS = {"vae": (VAEConfig, VAE)}
MODELS["charlm"] = (CharLMConfig, CharLM)
MODELS["made"] = (MADEConfig, MADEModel)
MODELS["pixelcnn"] = (PixelCNNConfig, PixelCNN)
MODELS["realnvp"] = (RealNVPConfig, RealNVP)
MODELS["glow"] = (GlowConfig, Glow)
MODELS["maf"] = (MAFConfig, MAF)
MODELS["spline_flow"] = (SplineFlowConfig, SplineFlow)

__all__ = ["MODELS", "Model", "Glow", "GlowConfig", "MAF", "MAFConfig", "RealNVP", "RealNVPConfig", "SplineFlow", "SplineFlowConfig", "MADEConfig", "MADEModel", "PixelCNN", "PixelCNNConfig", "CharLM", "CharLMConfig", "VAE", "VAEConfig", "config_from_dict", "config_to_dict", "num_params",
           "override", "param_groups"]
