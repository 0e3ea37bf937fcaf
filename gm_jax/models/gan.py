"""Generative adversarial networks: one model for the objectives of :mod:`gm_jax.losses.adversarial`, the
networks of :mod:`gm_jax.nets`, and the trainer's parameter groups.

The generator G maps z ~ N(0, I) (and optional labels) to data; the discriminator (critic) D scores data.
The trainer alternates ``n_critic`` discriminator updates and one generator update inside one jitted step
(``param_groups``), each group with its own optimizer and learning rate (TTUR, Heusel et al. 2017,
through ``group_train_overrides``); its EMA of the parameters (``ema_decay``) is what ``sample`` uses, the
generator average of Karras et al. (2018) and Yazici et al. (2019). Repeated critic updates of one step
see the same real batch with fresh latents.

Objectives: ``loss`` minimax | non_saturating (Goodfellow et al. 2014), wasserstein (Arjovsky et al.
2017, with ``weight_clip``, or with the gradient penalty of Gulrajani et al. 2017), least_squares (Mao et
al. 2017), hinge (Lim & Ye 2017; Miyato et al. 2018). Penalties: ``penalty`` gp | r1 | r2 (Mescheder et
al. 2018) with weight ``penalty_weight`` (R1/R2: the gamma of gamma/2 E||grad D||^2).

Model space: images (integers 0..K-1) are uniformly dequantized into [-1, 1], the range of the
generators' tanh; points are used as they are. GANs define no likelihood (``has_log_prob = False``).

Named presets (the CLI names): ``dcgan`` (Radford et al. 2016), ``wgan_gp`` (Gulrajani et al. 2017),
``sngan`` (Miyato et al. 2018), ``stylegan_small`` (Karras et al. 2019, small). On points every preset uses
MLP networks (``hidden``).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import data_to_model_space, model_to_data_space
from gm_jax.errors import GMJaxError
from gm_jax.losses.adversarial import GANLoss, discriminator_loss, generator_loss, gradient_penalty, r1_penalty, \
    r2_penalty
from gm_jax.models.base import Config, check_group, check_hidden, check_positive, hparam, rbg_key
from gm_jax.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gm_jax.nets.gan_mlp import MLPDiscriminator, MLPGenerator
from gm_jax.nets.resnet_gan import ResNetDiscriminator, ResNetGenerator
from gm_jax.nets.stylegan import StyleGenerator
from gm_jax.samplers.interpolation import lerp, slerp

__all__ = ["GAN", "GANConfig", "DCGANConfig", "WGANGPConfig", "SNGANConfig", "StyleGANSmallConfig", "PENALTIES",
           "ARCHITECTURES", "Penalty", "Architecture"]

Penalty = Literal["none", "gp", "r1", "r2"]
Architecture = Literal["dcgan", "resnet", "style"]
PENALTIES = typing.get_args(Penalty)
ARCHITECTURES = typing.get_args(Architecture)


@dataclasses.dataclass(frozen=True)
class GANConfig(Config):
    """GAN hyper-parameters.

    Objective: ``loss`` (one of GAN_LOSSES), ``penalty`` (none | gp | r1 | r2) times ``penalty_weight``,
    ``weight_clip`` > 0 projects the critic's weights into [-c, c] after each update (WGAN).
    Training: ``n_critic`` discriminator updates per generator update; learning rates ``lr_generator`` and
    ``lr_discriminator`` (TTUR) and Adam betas ``b1``, ``b2`` for both.
    Networks: ``architecture`` dcgan | resnet | style on images (``width`` channels; ``mapping_layers``
    for style), MLPs of widths ``hidden`` on points; ``latent_dim`` the size of z; ``conditional`` uses the
    dataset's labels (a label input to G, a projection discriminator). ``compute_dtype`` bfloat16 runs
    the networks in bf16 with float32 parameters; losses and penalties stay float32.
    """

    loss: GANLoss = hparam("non_saturating", "adversarial objective (one of gm_jax.losses.GAN_LOSSES)")
    penalty: Penalty = hparam("none", "critic penalty: none, gp (gradient penalty), r1 or r2")
    penalty_weight: float = hparam(10.0, "weight of the critic penalty")
    weight_clip: float = hparam(0.0, "> 0: clip the critic's weights into [-c, c] after each update (WGAN)")
    n_critic: int = hparam(1, "discriminator updates per generator update")
    lr_generator: float = hparam(2e-4, "generator Adam learning rate")
    lr_discriminator: float = hparam(2e-4, "discriminator Adam learning rate (TTUR when it differs)")
    b1: float = hparam(0.5, "Adam beta1 of both players")
    b2: float = hparam(0.999, "Adam beta2 of both players")
    architecture: Architecture = hparam("dcgan", "image networks: dcgan, resnet (critic spectral-normed unless a penalty is set) or style")
    width: int = hparam(64, "channels of the image networks")
    mapping_layers: int = hparam(4, "mapping-network layers (architecture=style)")
    hidden: tuple[int, ...] = hparam((128, 128, 128), "MLP widths of both players (points)")
    latent_dim: int = hparam(64, "size of z")
    conditional: bool = hparam(False, "class-conditional: a label input to G, a projection discriminator")
    compute_dtype: Literal["float32", "bfloat16"] = hparam(
        "float32", "network compute precision (parameters stay float32)")

    def validate(self):
        check_positive(self, "n_critic", "width", "mapping_layers", "latent_dim")
        check_hidden(self)
        if self.lr_generator <= 0 or self.lr_discriminator <= 0:
            raise GMJaxError(f"lr_generator and lr_discriminator must be > 0, got {self.lr_generator}, "
                             f"{self.lr_discriminator}")
        if self.penalty_weight < 0 or self.weight_clip < 0:
            raise GMJaxError(f"penalty_weight and weight_clip must be >= 0, got {self.penalty_weight}, "
                             f"{self.weight_clip}")
        if not (0.0 <= self.b1 < 1.0 and 0.0 <= self.b2 < 1.0):
            raise GMJaxError(f"b1 and b2 must be in [0, 1), got {self.b1}, {self.b2}")


@dataclasses.dataclass(frozen=True)
class DCGANConfig(GANConfig):
    """DCGAN (Radford et al. 2016): non-saturating loss, Adam lr 2e-4, beta1 0.5."""


@dataclasses.dataclass(frozen=True)
class WGANGPConfig(GANConfig):
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): Wasserstein critic, penalty weight 10, 5 critic
    updates per generator update, Adam lr 1e-4, betas (0, 0.9)."""

    loss: GANLoss = "wasserstein"
    penalty: Penalty = "gp"
    n_critic: int = 5
    lr_generator: float = 1e-4
    lr_discriminator: float = 1e-4
    b1: float = 0.0
    b2: float = 0.9


@dataclasses.dataclass(frozen=True)
class SNGANConfig(GANConfig):
    """SNGAN (Miyato et al. 2018, the ResNet CIFAR setting): spectrally normalised ResNet critic, hinge
    loss, 5 critic updates, Adam lr 2e-4, betas (0, 0.9); width 128 (the paper's critic)."""

    loss: GANLoss = "hinge"
    width: int = 128
    architecture: Architecture = "resnet"
    n_critic: int = 5
    b1: float = 0.0
    b2: float = 0.9


@dataclasses.dataclass(frozen=True)
class StyleGANSmallConfig(GANConfig):
    """A small style-based generator (Karras et al. 2019): mapping network and AdaIN-modulated synthesis,
    non-saturating loss with R1 (gamma 10), Adam lr 1e-3, betas (0, 0.99)."""

    architecture: Architecture = "style"
    penalty: Penalty = "r1"
    lr_generator: float = 1e-3
    lr_discriminator: float = 1e-3
    b1: float = 0.0
    b2: float = 0.99


class GAN:
    """A GAN on images or points. Variables: ``params`` and ``state`` are dicts with the groups
    ``generator`` and ``discriminator`` (state: batch statistics, spectral-norm vectors)."""

    has_log_prob = False
    default_train = {"steps": 5000, "batch_size": 64, "ema_decay": 0.999, "checkpoint_every": 1000}

    def __init__(self, config: GANConfig, spec: DataSpec):
        if spec.kind not in ("image", "points"):
            raise GMJaxError(f"gan models images or points, and {spec.name} holds {spec.kind}")
        if config.conditional and not spec.num_classes:
            raise GMJaxError(f"conditional=true needs labels, and dataset {spec.name} has none")
        self.config, self.spec = config, spec
        self.num_classes = spec.num_classes if config.conditional else None
        self.generator, self.discriminator = _networks(config, spec, self.num_classes)
        self.param_groups = (("discriminator", config.n_critic), ("generator", 1))
        d_train = {"lr": config.lr_discriminator, "b1": config.b1, "b2": config.b2}
        if config.weight_clip > 0:
            d_train["weight_clip"] = config.weight_clip
        self.group_train_overrides = {"discriminator": d_train,
                                      "generator": {"lr": config.lr_generator, "b1": config.b1, "b2": config.b2}}

    # ------------------------------------------------------------------------------------ networks
    def _apply(self, net, variables, group, x, labels, train, key=None):
        """One network call -> (output, new state of its group). Train mode updates batch statistics,
        spectral-norm vectors and the style generator's w average (the collections the network keeps);
        ``key`` feeds the style generator's per-pixel noise (training only)."""
        params, state = variables["params"][group], variables["state"][group]
        rngs = {"noise": key} if key is not None else None
        if not train or not state:
            return net.apply({"params": params, **state}, x, labels, train=train, rngs=rngs), state
        out, new_state = net.apply({"params": params, **state}, x, labels, train=True, mutable=list(state),
                                   rngs=rngs)
        return out, {**state, **new_state}

    def generate(self, variables, z, labels=None, train: bool = False, key=None):
        """G(z [B, latent_dim], labels) -> model-space samples [B, *shape] (and the new generator state).
        ``key``: the style generator's per-pixel noise (None: zero noise)."""
        out, state = self._apply(self.generator, variables, "generator", z, labels, train, key)
        return out.reshape((z.shape[0],) + tuple(self.spec.shape)), state

    def critic(self, variables, x, labels=None, train: bool = False):
        """D(x [B, *shape] model space, labels) -> logits [B] (and the new discriminator state)."""
        flat = x.reshape(x.shape[0], -1) if self.spec.kind == "points" else x
        return self._apply(self.discriminator, variables, "discriminator", flat, labels, train)

    def _labels(self, batch):
        if self.num_classes is None:
            return None
        if "label" not in batch:
            raise GMJaxError("this GAN is conditional: batches (and sampling) need labels")
        return jnp.asarray(batch["label"], jnp.int32)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        k_data, k_g, k_d = jax.random.split(key, 3)
        x, _ = data_to_model_space(self.spec, example_batch[self.spec.data_key][:1], k_data)
        labels = self._labels({k: v[:1] for k, v in example_batch.items()})
        z = jnp.zeros((1, self.config.latent_dim), jnp.float32)
        flat = x.reshape(1, -1) if self.spec.kind == "points" else x
        g_vars = jax.jit(lambda k: self.generator.init(rbg_key(k), z, labels))(k_g)
        d_vars = jax.jit(lambda k: self.discriminator.init(rbg_key(k), flat, labels))(k_d)
        split = lambda v: (v["params"], {name: col for name, col in v.items() if name != "params"})
        (g_params, g_state), (d_params, d_state) = split(g_vars), split(d_vars)
        return {"params": {"generator": g_params, "discriminator": d_params},
                "state": {"generator": g_state, "discriminator": d_state}}

    def loss(self, variables, batch, key, *, group: str | None = None):
        """The loss of ``group`` (required: discriminator, its objective plus the penalty; generator, its
        objective), the batch mean; metrics ``d_real`` and ``d_fake`` (mean logits) and the penalty."""
        check_group(self, group)
        c = self.config
        k_data, k_z, k_pen, k_noise = jax.random.split(key, 4)
        real, _ = data_to_model_space(self.spec, batch[self.spec.data_key], k_data)
        labels = self._labels(batch)
        z = jax.random.normal(k_z, (real.shape[0], c.latent_dim), jnp.float32)
        fake, g_state = self.generate(variables, z, labels, train=True, key=k_noise)
        state = {**variables["state"], "generator": g_state}
        if group == "generator":
            d_fake, _ = self.critic({**variables, "state": state}, fake, labels, train=False)
            loss = jnp.mean(generator_loss(d_fake, kind=c.loss))
            return loss, {"d_fake": jnp.mean(d_fake)}, state
        fake = jax.lax.stop_gradient(fake)
        # One critic call on real and fake together: one spectral-norm / statistics update per step.
        logits, d_state = self.critic({**variables, "state": state}, jnp.concatenate([real, fake]),
                                      None if labels is None else jnp.concatenate([labels, labels]), train=True)
        d_real, d_fake = logits[: real.shape[0]], logits[real.shape[0]:]
        loss = jnp.mean(discriminator_loss(d_real, d_fake, kind=c.loss))
        metrics = {"d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)}
        if c.penalty != "none":
            frozen = {**variables, "state": {**state, "discriminator": d_state}}
            critic_fn = lambda x: self.critic(frozen, x, labels, train=False)[0]
            if c.penalty == "gp":
                penalty = c.penalty_weight * jnp.mean(gradient_penalty(critic_fn, real, fake, k_pen))
            elif c.penalty == "r1":
                penalty = 0.5 * c.penalty_weight * jnp.mean(r1_penalty(critic_fn, real))
            else:
                penalty = 0.5 * c.penalty_weight * jnp.mean(r2_penalty(critic_fn, fake))
            loss = loss + penalty
            metrics[c.penalty] = penalty
        return loss, metrics, {**state, "discriminator": d_state}

    def log_prob(self, variables, x, key, *, labels=None):
        raise GMJaxError("GANs define no likelihood (has_log_prob is False); evaluate samples with FID/KID or "
                         "precision/recall instead")

    def _sample_labels(self, num, labels):
        if self.num_classes is None:
            return None
        return jnp.arange(num) % self.num_classes if labels is None else jnp.asarray(labels, jnp.int32)

    def sample(self, variables, key, num, *, labels=None, temperature: float = 1.0):
        """``num`` samples in data space: G(z) with z ~ N(0, temperature^2 I) (temperature < 1 is the
        truncation of Brock et al. 2019 in its simplest form). Conditional models take ``labels`` [num]
        (default 0, 1, 2, ... cycling over the classes)."""
        k_z, k_noise = jax.random.split(key)
        z = temperature * jax.random.normal(k_z, (num, self.config.latent_dim), jnp.float32)
        x, _ = self.generate(variables, z, self._sample_labels(num, labels), key=k_noise)
        return model_to_data_space(self.spec, x)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one latent code: (latent_dim,)."""
        return (self.config.latent_dim,)

    def decode_latent(self, variables, z, labels=None):
        """G(z [B, latent_dim]) as continuous data [B, *shape] float32 (images in [0, 1], not rounded to
        levels; the style generator's per-pixel noise off): the smooth map path lengths are measured on."""
        x, _ = self.generate(variables, z, self._sample_labels(z.shape[0], labels))
        return x if self.spec.kind == "points" else jnp.clip((x + 1.0) / 2.0, 0.0, 1.0)

    def interpolate(self, variables, key, num_paths: int, num: int = 8, method: str = "slerp", labels=None):
        """Generated paths between pairs of random latents: [num, num_paths, *shape] in data space (slerp
        follows the Gaussian prior's shell; White 2016)."""
        paths = {"slerp": slerp, "linear": lerp}
        if method not in paths:
            raise GMJaxError(f"unknown interpolation '{method}'; use slerp or linear")
        z0, z1 = jax.random.normal(key, (2, num_paths, self.config.latent_dim), jnp.float32)
        z = paths[method](z0, z1, jnp.linspace(0.0, 1.0, num)).reshape(num * num_paths, -1)
        lab = self._sample_labels(num_paths, labels)
        x, _ = self.generate(variables, z, None if lab is None else jnp.tile(lab, num))
        return model_to_data_space(self.spec, x).reshape((num, num_paths) + tuple(self.spec.shape))


def _networks(config: GANConfig, spec: DataSpec, num_classes):
    """(generator, discriminator) Flax modules with calls G(z, labels, train) and D(x, labels, train)."""
    dt = jnp.bfloat16 if config.compute_dtype == "bfloat16" else jnp.float32
    if spec.kind == "points":
        return (MLPGenerator(spec.num_dims, tuple(config.hidden), num_classes, dt),
                MLPDiscriminator(tuple(config.hidden), num_classes, dt))
    shape, width = tuple(spec.shape), config.width
    if config.architecture == "dcgan":
        # No normalisation in the critic: a gradient penalty is per example, and the critic sees real and
        # fake in one batch.
        return (DCGANGenerator(shape, width, num_classes=num_classes, dtype=dt),
                DCGANDiscriminator(width, norm="none", num_classes=num_classes, dtype=dt))
    if config.architecture == "resnet":
        # Spectral norm (Miyato et al.) or a gradient penalty bounds the critic's slope, not both: WGAN-GP's
        # ResNet critic (Gulrajani et al. 2017, gan_cifar_resnet.py) has no normalisation.
        return (ResNetGenerator(shape, width, num_classes=num_classes, dtype=dt),
                ResNetDiscriminator(width, spectral_norm=config.penalty == "none", num_classes=num_classes, dtype=dt))
    # style: Karras et al. pair their generator with a residual critic under R1 (no spectral norm).
    return (StyleGenerator(shape, width, mapping_layers=config.mapping_layers, num_classes=num_classes, dtype=dt),
            ResNetDiscriminator(width, spectral_norm=False, num_classes=num_classes, dtype=dt))
