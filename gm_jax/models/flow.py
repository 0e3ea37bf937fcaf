"""Normalizing-flow models: RealNVP (Dinh et al. 2017), Glow (Kingma & Dhariwal 2018), MAF (Papamakarios
et al. 2017) and neural spline flows (Durkan et al. 2019).

Each binds a bijector from :mod:`gm_jax.flows` (forward = data -> latent) to a base distribution
(``base``: the standard normal, or the standard logistic of NICE, Dinh et al. 2015):
log p(x) = log p_base(z) + log|det dz/dx|, trained by maximum likelihood (:func:`gm_jax.losses.nll`) and
sampled with :func:`gm_jax.samplers.reverse_flow_sample`. Images are uniformly dequantized into [0, 1)
and mapped through the logit transform (RealNVP section 4.1); the log-Jacobians of both maps are added,
so ``log_prob`` is the dequantization bound on log P(x) in nats relative to the discrete data, for one
noise draw from ``key`` (Theis et al. 2016). Points are modelled directly: ``log_prob`` is exact.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax import flows as F
from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import data_to_model_space, dequantize, quantize
from gm_jax.distributions import standard_logistic_log_prob, standard_normal_log_prob
from gm_jax.errors import GMJaxError
from gm_jax.losses.likelihood import nll
from gm_jax.models.base import Config, check_hidden, check_positive, hparam, rbg_key
from gm_jax.nets.adapters import flax_conditioner
from gm_jax.nets.made import MADE
from gm_jax.samplers.flow import reverse_flow_sample

__all__ = ["RealNVPConfig", "RealNVP", "GlowConfig", "Glow", "MAFConfig", "MAF", "SplineFlowConfig", "SplineFlow"]


# base name -> (log-density summed over the event [B], sampler (key, shape) -> z)
BASES = {"normal": (standard_normal_log_prob, jax.random.normal),
         "logistic": (standard_logistic_log_prob, jax.random.logistic)}


def _check_common(config):
    if not 0.0 < config.logit_alpha < 0.5:
        raise GMJaxError(f"logit_alpha must be in (0, 0.5), got {config.logit_alpha}")
    if getattr(config, "max_log_scale", 1.0) <= 0:
        raise GMJaxError(f"max_log_scale must be > 0, got {config.max_log_scale}")


def _check_spline(config):
    if config.num_bins < 2:
        raise GMJaxError(f"num_bins must be >= 2, got {config.num_bins}")
    if config.spline_bound <= 0:
        raise GMJaxError(f"spline_bound must be > 0, got {config.spline_bound}")


class _FlowModel:
    """Shared plumbing: data <-> model space, loss, log_prob and sampling around ``self.flow``.

    Subclasses define ``_build_flow(config, spec)`` (the bijector on model space, stored as ``self.flow``)
    and ``flatten`` (whether images are flattened to vectors [B, H*W*C] before the flow, for the vector
    flows MAF and spline_flow).
    """

    has_log_prob = True
    flatten = False

    def __init__(self, config, spec: DataSpec):
        self.config, self.spec = config, spec
        self.logit = F.Logit(config.logit_alpha)
        self.flow = self._build_flow(config, spec)
        self.base_log_prob, self.base_sample = BASES[config.base]

    # ------------------------------------------------------------------------------------ data <-> model
    def _to_model_space(self, x, key):
        """Data x -> (model-space input [B, ...], log-Jacobian [B] to discrete units)."""
        if self.spec.kind == "points":
            return data_to_model_space(self.spec, x, key)
        y, log_det = dequantize(x, self.spec.num_levels, key, data_range="[0,1]")
        y, logit_log_det = self.logit.forward({}, y)
        if self.flatten:
            y = y.reshape(y.shape[0], -1)
        return y, log_det + logit_log_det

    def _from_model_space(self, y):
        if self.spec.kind == "points":
            return y
        y = y.reshape((y.shape[0],) + tuple(self.spec.shape))
        return quantize(self.logit.inverse({}, y)[0], self.spec.num_levels, data_range="[0,1]")

    def _latent_shape(self, num):
        flat = self.flatten or self.spec.kind == "image"  # the multi-scale image flows have a flat latent
        return (num, self.spec.num_dims) if flat else (num,) + tuple(self.spec.shape)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        """Data-dependent init (ActNorm) on the example batch; returns {"params": ..., "state": {}}."""
        k_data, k_flow = jax.random.split(key)
        x, _ = self._to_model_space(example_batch[self.spec.data_key], k_data)
        return {"params": jax.jit(_init_with_rbg, static_argnums=0)(self.flow, k_flow, x), "state": {}}

    def log_prob(self, variables, x, key, *, labels=None):
        """log p(x) [B] in nats per example: exact for points, the dequantization bound (one noise draw
        from ``key``) relative to the discrete data for images. ``labels`` is accepted and ignored."""
        xm, log_det = self._to_model_space(x, key)
        return F.flow_log_prob(self.flow, variables["params"], xm, base_log_prob=self.base_log_prob) + log_det

    def loss(self, variables, batch, key):
        """Mean NLL in nats per example (maximum likelihood); metrics nll_nats and bits_per_dim."""
        mean_nll, bpd = nll(self.log_prob(variables, batch[self.spec.data_key], key), self.spec.num_dims)
        return mean_nll, {"nll_nats": mean_nll, "bits_per_dim": bpd}, variables["state"]

    def sample(self, variables, key, num, *, labels=None, temperature: float = 1.0):
        """``num`` samples in data space ([num, *shape]: uint8 images or float32 points), drawn as
        temperature * z with z ~ the base distribution, through the inverse flow."""
        inverse = lambda z: self.flow.inverse(variables["params"], z)[0]
        return self._from_model_space(reverse_flow_sample(inverse, key, self._latent_shape(num),
                                                          temperature=temperature, base_sample=self.base_sample))


    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one latent code z (the base distribution's sample)."""
        return self._latent_shape(1)[1:]

    def decode_latent(self, variables, z, labels=None):
        """The inverse flow of latents z [B, *latent_shape] as continuous data [B, *shape] float32 (images
        in [0, 1], the dequantized values not rounded to levels; points as they are)."""
        y = self.flow.inverse(variables["params"], z)[0]
        if self.spec.kind == "points":
            return y
        y = y.reshape((y.shape[0],) + tuple(self.spec.shape))
        return jnp.clip(self.logit.inverse({}, y)[0], 0.0, 1.0)

    def encode_latent(self, variables, x, labels=None):
        """Data-space x -> latents z [B, *latent_shape] by the forward flow (images at their bin centres)."""
        if self.spec.kind == "points":
            y = jnp.asarray(x, jnp.float32)
        else:
            y = dequantize(x, self.spec.num_levels, None, data_range="[0,1]", noise=False)[0]
            y = self.logit.forward({}, y)[0]
            if self.flatten:
                y = y.reshape(y.shape[0], -1)
        return self.flow.forward(variables["params"], y)[0]


def _init_with_rbg(flow, key, x):
    """flow.init with an RBG key derived from ``key`` (deterministic in ``key``): a deep flow draws dozens
    of weight tensors, and XLA:CPU compiles threefry's unrolled hash for each of them, which made init
    take 5x longer to compile than with RngBitGenerator."""
    return flow.init(rbg_key(key), x)


# ---------------------------------------------------------------------------------------- image flows
def _image_levels_check(name, spec, num_levels, num_squeezes):
    if spec.kind != "image":
        raise GMJaxError(f"{name} is an image flow and {spec.name} holds points; use maf or spline_flow")
    h, w, _ = spec.shape
    factor = 2 ** num_squeezes
    if h % factor or w % factor or min(h, w) // factor < 2:
        raise GMJaxError(f"{name} with {num_levels} levels squeezes {h}x{w} images {num_squeezes} times, "
                         f"which needs height and width divisible by {factor} and at least {2 * factor}; "
                         "lower the number of levels")


@dataclasses.dataclass(frozen=True)
class RealNVPConfig(Config):
    """RealNVP (Dinh et al. 2017): at each scale but the last, ``coupling_pairs`` pairs of checkerboard
    affine couplings, a squeeze, ``coupling_pairs`` pairs of channel couplings, then half the channels
    are factored out; the last scale has checkerboard couplings only. Each pair starts with ActNorm
    (standing in for the paper's batch norm). Conditioners: small ResNets of ``channels`` width.

    On points [B, D] (toy2d, tabular): ``coupling_pairs`` pairs of affine couplings with complementary
    half masks, MLP conditioners of widths ``hidden`` (the paper's 2-D experiments, Dinh et al. 2017 fig. 1).
    """

    num_scales: int = hparam(2, "multi-scale levels (images)")
    coupling_pairs: int = hparam(2, "affine coupling pairs per scale and mask type (points: in all)")
    channels: int = hparam(32, "width of the ResNet conditioners (images)")
    num_blocks: int = hparam(1, "residual blocks per conditioner (images)")
    hidden: tuple[int, ...] = hparam((64, 64), "MLP conditioner widths (points)")
    max_log_scale: float = hparam(3.0, "bound on the couplings' log-scales")
    logit_alpha: float = hparam(0.05, "alpha in (0, 0.5) of the logit map of dequantized images")
    base: Literal["normal", "logistic"] = hparam("normal", "base distribution: standard normal or logistic")

    def validate(self):
        check_positive(self, "num_scales", "coupling_pairs", "channels")
        check_hidden(self)
        if self.num_blocks < 0:
            raise GMJaxError(f"num_blocks must be >= 0, got {self.num_blocks}")
        _check_common(self)


class RealNVP(_FlowModel):
    """Multi-scale affine-coupling flow on images (latent [B, H*W*C]), or a coupling stack on points."""

    default_train = {"steps": 3000, "schedule": "cosine", "warmup_steps": 100, "lr": 1e-3, "grad_clip": 100.0,
                     "checkpoint_every": 1000}

    def _build_flow(self, config, spec):
        if spec.kind == "points":
            cond = F.mlp_conditioner(2, hidden=config.hidden)
            pair = F.chain(F.affine_coupling(cond, "half", parity=0, max_log_scale=config.max_log_scale),
                           F.affine_coupling(cond, "half", parity=1, max_log_scale=config.max_log_scale))
            return F.repeat(pair, config.coupling_pairs)
        _image_levels_check("realnvp", spec, config.num_scales, config.num_scales - 1)
        cond = F.conv_conditioner(2, channels=config.channels, num_blocks=config.num_blocks)
        pair = lambda mask: F.repeat(F.chain(
            F.ActNorm(), F.affine_coupling(cond, mask, parity=0, max_log_scale=config.max_log_scale),
            F.affine_coupling(cond, mask, parity=1, max_log_scale=config.max_log_scale)), config.coupling_pairs)
        levels = [F.chain(pair("checkerboard"), F.Squeeze(), pair("channel")) for _ in range(config.num_scales - 1)]
        levels.append(pair("checkerboard"))
        return F.MultiScale(tuple(levels), tuple(spec.shape))


@dataclasses.dataclass(frozen=True)
class GlowConfig(Config):
    """Glow (Kingma & Dhariwal 2018): ``num_levels`` levels of squeeze + ``steps_per_level`` steps of
    (ActNorm, LU 1x1 convolution, affine or additive channel coupling), factoring out half the channels
    after every level but the last."""

    num_levels: int = hparam(2, "levels L (squeeze, K steps, factor out half)")
    steps_per_level: int = hparam(4, "flow steps K per level (ActNorm, 1x1 conv, coupling)")
    channels: int = hparam(32, "width of the coupling conditioners")
    num_blocks: int = hparam(1, "residual blocks per conditioner")
    coupling: Literal["affine", "additive"] = hparam(
        "affine", "affine or additive (volume-preserving) channel coupling")
    max_log_scale: float = hparam(3.0, "bound on the couplings' log-scales")
    logit_alpha: float = hparam(0.05, "alpha in (0, 0.5) of the logit map of dequantized images")
    base: Literal["normal", "logistic"] = hparam("normal", "base distribution: standard normal or logistic")

    def validate(self):
        check_positive(self, "num_levels", "steps_per_level", "channels")
        if self.num_blocks < 0:
            raise GMJaxError(f"num_blocks must be >= 0, got {self.num_blocks}")
        _check_common(self)


class Glow(_FlowModel):
    """Multi-scale Glow on images; latent [B, H*W*C]."""

    default_train = {"steps": 3000, "schedule": "cosine", "warmup_steps": 100, "lr": 1e-3, "grad_clip": 100.0,
                     "checkpoint_every": 1000}

    def _build_flow(self, config, spec):
        _image_levels_check("glow", spec, config.num_levels, config.num_levels)
        p = 2 if config.coupling == "affine" else 1
        cond = F.conv_conditioner(p, channels=config.channels, num_blocks=config.num_blocks)
        coupling = (F.affine_coupling(cond, "channel", max_log_scale=config.max_log_scale)
                    if config.coupling == "affine" else F.additive_coupling(cond, "channel"))
        step = F.chain(F.ActNorm(), F.Invertible1x1Conv(), coupling)
        level = F.chain(F.Squeeze(), F.repeat(step, config.steps_per_level))
        return F.MultiScale((level,) * config.num_levels, tuple(spec.shape))


# ---------------------------------------------------------------------------------------- vector flows
@dataclasses.dataclass(frozen=True)
class MAFConfig(Config):
    """MAF (Papamakarios et al. 2017): ``num_layers`` masked autoregressive layers (MADE with ``hidden``
    widths), the order reversed between layers; ``transformer`` affine (MAF) or spline (autoregressive
    neural spline flow, ``num_bins`` bins on [-spline_bound, spline_bound]). Images are flattened."""

    num_layers: int = hparam(5, "masked autoregressive layers (order reversed between layers)")
    hidden: tuple[int, ...] = hparam((64, 64), "MADE widths of each layer")
    transformer: Literal["affine", "spline"] = hparam(
        "affine", "per-dimension transform: affine (MAF) or rational-quadratic spline")
    num_bins: int = hparam(8, "spline bins (transformer=spline)")
    spline_bound: float = hparam(5.0, "splines act on [-spline_bound, spline_bound], identity outside")
    max_log_scale: float = hparam(3.0, "bound on the affine log-scales")
    logit_alpha: float = hparam(0.05, "alpha in (0, 0.5) of the logit map of dequantized images")
    base: Literal["normal", "logistic"] = hparam("normal", "base distribution: standard normal or logistic")

    def validate(self):
        check_positive(self, "num_layers")
        check_hidden(self)
        _check_spline(self)
        _check_common(self)


class MAF(_FlowModel):
    """Masked autoregressive flow on vectors (points, or flattened images)."""

    flatten = True
    default_train = {"steps": 5000, "batch_size": 256, "schedule": "cosine", "warmup_steps": 100, "lr": 1e-3,
                     "checkpoint_every": 1000}

    def _build_flow(self, config, spec):
        if config.transformer == "affine":
            made = flax_conditioner(MADE(2, tuple(config.hidden), zero_init_output=True))
            layer = F.maf_layer(made, max_log_scale=config.max_log_scale)
        else:
            made = flax_conditioner(MADE(F.spline_num_params(config.num_bins), tuple(config.hidden),
                                         zero_init_output=True))
            layer = F.autoregressive_spline_layer(made, num_bins=config.num_bins, bound=config.spline_bound)
        return F.repeat(F.chain(layer, F.Reverse()), config.num_layers)


@dataclasses.dataclass(frozen=True)
class SplineFlowConfig(Config):
    """Neural spline flow (Durkan et al. 2019): ``num_layers`` blocks of an LU linear mixing layer followed
    by either two rational-quadratic spline couplings with complementary half masks (``kind=coupling``)
    or one autoregressive spline layer (``kind=autoregressive``). Splines have ``num_bins`` bins on
    [-spline_bound, spline_bound], identity outside. Images are flattened."""

    num_layers: int = hparam(4, "blocks of an LU linear layer and spline layers")
    hidden: tuple[int, ...] = hparam((64, 64), "conditioner widths")
    kind: Literal["coupling", "autoregressive"] = hparam(
        "coupling", "two half-mask spline couplings per block, or one autoregressive spline layer")
    num_bins: int = hparam(8, "spline bins")
    spline_bound: float = hparam(5.0, "splines act on [-spline_bound, spline_bound], identity outside")
    logit_alpha: float = hparam(0.05, "alpha in (0, 0.5) of the logit map of dequantized images")
    base: Literal["normal", "logistic"] = hparam("normal", "base distribution: standard normal or logistic")

    def validate(self):
        check_positive(self, "num_layers")
        check_hidden(self)
        _check_spline(self)
        _check_common(self)


class SplineFlow(_FlowModel):
    """Rational-quadratic spline flow on vectors (points, or flattened images)."""

    flatten = True
    default_train = {"steps": 5000, "batch_size": 256, "schedule": "cosine", "warmup_steps": 100, "lr": 1e-3,
                     "checkpoint_every": 1000}

    def _build_flow(self, config, spec):
        if config.kind == "coupling" and spec.num_dims < 2:
            raise GMJaxError(f"spline_flow kind=coupling needs dimension >= 2, {spec.name} has {spec.num_dims}; "
                             "use --set kind=autoregressive")
        p = F.spline_num_params(config.num_bins)
        if config.kind == "coupling":
            def spline(parity):  # the conditioner emits parameters for the transformed half only
                n = len(F.transformed_elements("half", (spec.num_dims,), parity=parity))
                return F.spline_coupling(F.mlp_conditioner(p, hidden=config.hidden, outputs=n), "half", parity=parity,
                                         num_bins=config.num_bins, bound=config.spline_bound)
            block = F.chain(F.Invertible1x1Conv(), spline(0), spline(1))
        else:
            made = flax_conditioner(MADE(p, tuple(config.hidden), zero_init_output=True))
            block = F.chain(F.Invertible1x1Conv(),
                            F.autoregressive_spline_layer(made, num_bins=config.num_bins, bound=config.spline_bound))
        return F.repeat(block, config.num_layers)
