"""Flax (linen) networks. They know nothing of losses; models bind them to the maths.

One module per architecture: ``mlp``, ``made``, ``pixelcnn``, ``unet``, ``time_mlp``, ``transformer``,
``vae_nets``, ``energy``; the adversarial nets ``dcgan``, ``resnet_gan`` (SNGAN), ``stylegan``,
``projection`` (the projection-discriminator head), ``gan_mlp`` (toy 2-D) and ``cyclegan``; the feature
networks ``inception`` (FID) and ``classifier`` (domain features). ``adapters.flax_conditioner`` turns a
Flax module into the plain-function conditioner of :mod:`gm_jax.flows` (which never imports Flax).
"""

from gm_jax.nets.adapters import flax_conditioner
from gm_jax.nets.classifier import ConvClassifier
from gm_jax.nets.cyclegan import PatchDiscriminator, ResNetTranslator
from gm_jax.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gm_jax.nets.energy import EnergyConvNet, EnergyMLP
from gm_jax.nets.gan_mlp import MLPDiscriminator, MLPGenerator
from gm_jax.nets.inception import FIDInceptionV3
from gm_jax.nets.made import MADE, made_orderings
from gm_jax.nets.mlp import MLP
from gm_jax.nets.pixelcnn import GatedPixelCNN
from gm_jax.nets.projection import ProjectionHead
from gm_jax.nets.resnet_gan import ResNetDiscriminator, ResNetGenerator
from gm_jax.nets.stylegan import StyleGenerator, StyleMapping, StyleSynthesis, pixel_norm
from gm_jax.nets.time_mlp import TimeMLP
from gm_jax.nets.transformer import CausalTransformer
from gm_jax.nets.unet import UNet, timestep_embedding
from gm_jax.nets.vae_nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

__all__ = [
    "MLP", "MADE", "made_orderings", "GatedPixelCNN", "CausalTransformer", "TimeMLP", "UNet", "timestep_embedding",
    "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "EnergyConvNet", "EnergyMLP",
    "DCGANDiscriminator", "DCGANGenerator", "ResNetDiscriminator", "ResNetGenerator", "ProjectionHead",
    "StyleGenerator", "StyleMapping", "StyleSynthesis", "pixel_norm", "MLPDiscriminator", "MLPGenerator",
    "PatchDiscriminator", "ResNetTranslator", "FIDInceptionV3", "ConvClassifier", "flax_conditioner",
]
