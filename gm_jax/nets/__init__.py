"""Flax (linen) networks. They know nothing of losses; models bind them to the maths."""

from gm_jax.nets.made import MADE, made_orderings
from gm_jax.nets.mlp import MLP
from gm_jax.nets.pixelcnn import GatedPixelCNN
from gm_jax.nets.time_mlp import TimeMLP
from gm_jax.nets.unet import UNet, timestep_embedding
from gm_jax.nets.transformer import CausalTransformer
from gm_jax.nets.vae_nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

__all__ = ["MADE", "made_orderings", "MLP", "GatedPixelCNN", "CausalTransformer", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder"]
__all__ += ["TimeMLP", "UNet", "timestep_embedding"]
from gm_jax.nets.energy import EnergyConvNet, EnergyMLP  # noqa: E402
__all__ += ["EnergyConvNet", "EnergyMLP"]
from gm_jax.nets.gan import (DCGANDiscriminator, DCGANGenerator, ProjectionHead, ResNetDiscriminator,  # noqa: E402
                             ResNetGenerator, StyleGenerator, StyleMapping, StyleSynthesis, pixel_norm)
__all__ += ["DCGANDiscriminator", "DCGANGenerator", "ProjectionHead", "ResNetDiscriminator", "ResNetGenerator",
            "StyleGenerator", "StyleMapping", "StyleSynthesis", "pixel_norm"]
from gm_jax.nets.gan_mlp import MLPDiscriminator, MLPGenerator  # noqa: E402
__all__ += ["MLPDiscriminator", "MLPGenerator"]
from gm_jax.nets.cyclegan import PatchDiscriminator, ResNetTranslator  # noqa: E402
__all__ += ["PatchDiscriminator", "ResNetTranslator"]
from gm_jax.nets.inception import FIDInceptionV3  # noqa: E402
__all__ += ["FIDInceptionV3"]
from gm_jax.nets.classifier import ConvClassifier  # noqa: E402
__all__ += ["ConvClassifier"]
