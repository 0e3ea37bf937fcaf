"""Noise-conditional score network (Song & Ermon 2019, "Generative Modeling by Estimating Gradients of the
Data Distribution", NeurIPS), with two of the improvements of NCSNv2 (Song & Ermon 2020, "Improved
Techniques for Training Score-Based Generative Models").

A network learns the scores of the data convolved with N(0, sigma_i^2 I) at the L geometric noise levels
sigma_1 = ``sigma_max`` > ... > sigma_L = ``sigma_min`` by denoising score matching
(:func:`gm_jax.losses.dsm_loss`, eq. 6 with lambda(sigma) = sigma^2), and samples are drawn by annealed
Langevin dynamics (:func:`gm_jax.samplers.annealed_langevin_sample`, Alg. 1) with the final denoising
step. The score is parameterised as s_theta(x, sigma) = net(x, log sigma) / sigma (NCSNv2, technique 3:
the true score's magnitude scales as 1 / sigma, so the network's output stays O(1) at every level; the
network still sees the level). NCSNv2's technique 1 says ``sigma_max`` should be about the largest
distance between two training points.

The model has no likelihood (``has_log_prob = False``). Images (integers 0..K-1) are uniformly dequantized
into [-1, 1]; points are modelled as they are. Networks: :class:`gm_jax.nets.time_mlp.TimeMLP` on points,
:class:`gm_jax.nets.unet.UNet` on images, both embedding ``time_scale * log(sigma)``; or, on images,
``architecture=refinenet``: NCSN's own conditional dilated RefineNet (:class:`gm_jax.nets.refinenet.RefineNet`,
``channels`` wide), conditioned on the level's index by conditional instance norm++ and giving the score
directly, s_theta(x, sigma_i) = net(x, i), as Song & Ermon (2019) parameterise it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import data_to_model_space, model_to_data_space
from gm_jax.errors import GMJaxError
from gm_jax.losses.score_matching import dsm_loss
from gm_jax.processes.noise_levels import geometric_noise_levels
from gm_jax.models.base import check_positive, hparam
from gm_jax.models.denoiser import Denoiser, DenoiserNetConfig
from gm_jax.nets.refinenet import RefineNet
from gm_jax.samplers.langevin import annealed_langevin_sample

__all__ = ["NCSN", "NCSNConfig"]


@dataclasses.dataclass(frozen=True)
class NCSNConfig(DenoiserNetConfig):
    """NCSN hyper-parameters.

    Levels: ``num_scales`` (L >= 2) geometric from ``sigma_max`` down to ``sigma_min`` (model-space units:
    images live in [-1, 1]). Network on points: TimeMLP of widths ``hidden`` and embedding ``embed_dim``;
    on images: U-Net with ``channels``, ``channel_mult``, ``num_res_blocks``, ``attention_resolutions``,
    ``dropout``. Both embed ``time_scale * log(sigma)`` (4: the fastest embedding frequency turns 4 radians
    per e-fold of sigma, so neighbouring levels get distinct embeddings). Sampling: ``steps_per_sigma``
    Langevin steps per level with ``step_lr`` (Song & Ermon: 100 and 2e-5), then Tweedie denoising when
    ``denoise``; chains start from N(0, sigma_max^2 I), which is what the data look like at the first
    level when sigma_max dominates their spread.
    """

    architecture: Literal["unet", "refinenet"] = hparam(
        "unet", "image network: unet (score = net / sigma) or refinenet (NCSN's; score = net)")
    num_scales: int = hparam(20, "noise levels L (>= 2), geometric from sigma_max down to sigma_min")
    sigma_max: float = hparam(10.0, "largest noise std (model space: images in [-1, 1])")
    sigma_min: float = hparam(0.01, "smallest noise std")
    dropout: float = 0.0
    time_scale: float = hparam(4.0, "the network embeds time_scale * log(sigma)")
    steps_per_sigma: int = hparam(100, "annealed Langevin steps per noise level", inference=True)
    step_lr: float = hparam(2e-5, "Langevin step size at the smallest level (Song & Ermon: 2e-5)")
    denoise: bool = hparam(True, "a final Tweedie denoising step after sampling")

    def validate(self):
        self.validate_network()
        check_positive(self, "steps_per_sigma")
        if self.num_scales < 2:
            raise GMJaxError(f"num_scales must be >= 2, got {self.num_scales}")
        if not 0.0 < self.sigma_min < self.sigma_max:
            raise GMJaxError(f"need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                             f"sigma_max={self.sigma_max}")
        if self.step_lr <= 0 or self.time_scale <= 0:
            raise GMJaxError(f"step_lr and time_scale must be > 0, got {self.step_lr}, {self.time_scale}")

    def sigmas(self) -> jax.Array:
        """The noise levels [L], decreasing geometrically from sigma_max to sigma_min (float32)."""
        return geometric_noise_levels(self.sigma_max, self.sigma_min, self.num_scales)


class NCSN:
    """Noise-conditional score network on points (TimeMLP) or images (U-Net); unconditional (labels are
    ignored). ``sample`` uses the sampler ``"annealed_langevin"``."""

    has_log_prob = False
    default_train = {"steps": 20000, "lr": 1e-4, "warmup_steps": 500, "grad_clip": 1.0, "ema_decay": 0.999,
                     "checkpoint_every": 2000}

    def __init__(self, config: NCSNConfig, spec: DataSpec):
        if spec.kind not in ("image", "points"):
            raise GMJaxError(f"ncsn models images or points, and {spec.name} holds {spec.kind}")
        self.config, self.spec = config, spec
        self.sigmas = config.sigmas()
        if config.architecture == "refinenet":
            if spec.kind != "image":
                raise GMJaxError(f"architecture=refinenet is an image network, and {spec.name} holds points; use "
                                 "architecture=unet (a TimeMLP on points)")
            if config.dropout:
                raise GMJaxError("the RefineNet has no dropout; set dropout=0")
            self.refinenet = RefineNet(channels=config.channels, num_classes=config.num_scales)
        else:
            self.net = Denoiser(config, spec, time_scale=config.time_scale)

    # ------------------------------------------------------------------------------------------ score
    def score_fn(self, params, train: bool = False, key=None):
        """s_theta(x [B, ...], sigma [B]) = net(x, log sigma) / sigma (refinenet: net(x, index of sigma)): the
        callable the loss and sampler take."""

        def score(x, sigma):
            sigma = jnp.asarray(sigma, jnp.float32)
            if self.config.architecture == "refinenet":  # the index of the nearest level: the net's condition
                log_sigma = jnp.broadcast_to(jnp.log(sigma), x.shape[:1])
                level = jnp.argmin(jnp.abs(log_sigma[:, None] - jnp.log(self.sigmas)[None]), axis=1)
                return self.refinenet.apply({"params": params}, x, level)
            out = self.net.apply(params, x, jnp.log(sigma), None, train, key).reshape(x.shape)
            return out / sigma.reshape(sigma.shape + (1,) * (x.ndim - 1))

        return score

    # ------------------------------------------------------------------------------------ data <-> model
    def _to_model_space(self, x, key):
        return data_to_model_space(self.spec, x, key)[0]

    def _from_model_space(self, y):
        return model_to_data_space(self.spec, y)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        """Network params from one example; returns {"params": ..., "state": {}}."""
        k_data, k_net = jax.random.split(key)
        x = self._to_model_space(example_batch[self.spec.data_key][:1], k_data)
        if self.config.architecture == "refinenet":
            return {"params": self._refinenet_init(k_net, x), "state": {}}
        params = self.net.init(k_net, x, jnp.zeros((1,), jnp.float32))
        return {"params": params, "state": {}}

    @functools.cached_property
    def _refinenet_init(self):
        return jax.jit(lambda key, x: self.refinenet.init(key, x, jnp.zeros((1,), jnp.int32))["params"])

    def loss(self, variables, batch, key):
        """Mean over the batch of the DSM loss (1/2 ||sigma s(x~, sigma) + z||^2 summed over the event dims,
        a level drawn uniformly per example; not a likelihood); metrics dsm_loss and dsm_loss_per_dim."""
        k_data, k_loss, k_drop = jax.random.split(key, 3)
        x = self._to_model_space(batch[self.spec.data_key], k_data)
        per_example = dsm_loss(self.score_fn(variables["params"], True, k_drop), self.sigmas, x, k_loss)
        loss = jnp.mean(per_example)
        return loss, {"dsm_loss": loss, "dsm_loss_per_dim": loss / self.spec.num_dims}, variables["state"]

    def log_prob(self, variables, x, key, *, labels=None):
        raise GMJaxError("ncsn learns scores only, not a normalised density (has_log_prob is False); use "
                         "score_sde for likelihoods")

    def sample(self, variables, key, num, *, labels=None, sampler: str | None = None, steps: int | None = None):
        """``num`` samples in data space ([num, *shape]: integer images or float32 points) by annealed
        Langevin dynamics (sampler ``"annealed_langevin"``, the only one) with ``steps`` steps per level
        (default ``config.steps_per_sigma``). ``labels`` is accepted and ignored."""
        if sampler not in (None, "annealed_langevin", "langevin"):  # "langevin": the CLI's family-wide name
            raise GMJaxError(f"unknown sampler '{sampler}' for ncsn; use annealed_langevin (or langevin)")
        c = self.config
        k_init, k_chain = jax.random.split(key)
        x_init = c.sigma_max * jax.random.normal(k_init, (num,) + tuple(self.spec.shape))
        y = annealed_langevin_sample(self.score_fn(variables["params"]), self.sigmas, k_chain, x_init,
                                     steps_per_sigma=steps or c.steps_per_sigma, step_lr=c.step_lr, denoise=c.denoise)
        return self._from_model_space(y)
