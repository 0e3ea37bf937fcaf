"""Model families bound to the loss/sampler maths; the registry maps CLI names to (config, class)."""

from gm_jax.models.autoregressive import MADEConfig, MADEModel, PixelCNN, PixelCNNConfig
from gm_jax.models.base import Model, config_from_dict, config_to_dict, num_params, override, param_groups
from gm_jax.models.charlm import CharLM, CharLMConfig
from gm_jax.models.describe import describe_config, format_config
from gm_jax.models.diffusion import DDPM, DDPMConfig
from gm_jax.models.cyclegan import CycleGAN, CycleGANConfig
from gm_jax.models.ebm import EBM, EBMConfig
from gm_jax.models.gan import GAN, DCGANConfig, GANConfig, SNGANConfig, StyleGANSmallConfig, WGANGPConfig
from gm_jax.models.flow import MAF, Glow, GlowConfig, MAFConfig, RealNVP, RealNVPConfig, SplineFlow, SplineFlowConfig
from gm_jax.models.ncsn import NCSN, NCSNConfig
from gm_jax.models.score_sde import ScoreSDE, ScoreSDEConfig
from gm_jax.models.vae import VAE, VAEConfig

MODELS = {
    "vae": (VAEConfig, VAE),
    "charlm": (CharLMConfig, CharLM),
    "made": (MADEConfig, MADEModel),
    "pixelcnn": (PixelCNNConfig, PixelCNN),
    "realnvp": (RealNVPConfig, RealNVP),
    "glow": (GlowConfig, Glow),
    "maf": (MAFConfig, MAF),
    "spline_flow": (SplineFlowConfig, SplineFlow),
    "ddpm": (DDPMConfig, DDPM),
    "score_sde": (ScoreSDEConfig, ScoreSDE),
    "ncsn": (NCSNConfig, NCSN),
    "ebm": (EBMConfig, EBM),
    "dcgan": (DCGANConfig, GAN),
    "wgan_gp": (WGANGPConfig, GAN),
    "sngan": (SNGANConfig, GAN),
    "stylegan_small": (StyleGANSmallConfig, GAN),
    "cyclegan": (CycleGANConfig, CycleGAN),
}

__all__ = ["MODELS", "Model", "CharLM", "CharLMConfig", "DDPM", "DDPMConfig", "EBM", "EBMConfig", "Glow",
           "GlowConfig", "MADEConfig", "MADEModel", "MAF", "MAFConfig", "NCSN", "NCSNConfig", "PixelCNN",
           "PixelCNNConfig", "RealNVP", "RealNVPConfig", "ScoreSDE", "ScoreSDEConfig", "SplineFlow",
           "SplineFlowConfig", "VAE", "VAEConfig", "config_from_dict", "config_to_dict", "num_params", "override",
           "param_groups", "GAN", "GANConfig", "DCGANConfig", "WGANGPConfig", "SNGANConfig", "StyleGANSmallConfig",
           "CycleGAN", "CycleGANConfig", "describe_config", "format_config"]
