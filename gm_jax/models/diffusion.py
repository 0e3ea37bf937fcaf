"""Denoising diffusion probabilistic models (Ho et al. 2020, "Denoising Diffusion Probabilistic Models"),
with the improvements of Nichol & Dhariwal (2021: cosine schedule, learned variances, hybrid loss),
DDIM sampling (Song, Meng & Ermon 2021) and classifier-free guidance (Ho & Salimans 2021).

Images (integers 0..K-1) live at the bin centres in [-1, 1] (:func:`gm_jax.data.preprocess.to_centres`)
and the decoder p(x_0 | x_1) is the discretized Gaussian of Ho et al., so ``log_prob`` (minus the
variational bound of :func:`gm_jax.losses.diffusion_vlb`) is a lower bound on log P(x) in nats relative
to the discrete data, with no dequantization term. Points (toy2d) use a continuous Gaussian decoder:
``log_prob`` bounds their log-density. Networks: the DDPM U-Net on images, TimeMLP on points; the network
sees the 0-based step index t.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import from_centres, to_centres
from gm_jax.errors import GMJaxError
from gm_jax.losses.likelihood import bits_per_dim
from gm_jax.losses.score_matching import ddpm_loss
from gm_jax.processes.discrete import Prediction
from gm_jax.losses.vlb import diffusion_vlb, hybrid_loss
from gm_jax.models.base import check_positive, hparam
from gm_jax.models.denoiser import Denoiser, DenoiserNetConfig
from gm_jax.processes.discrete import cosine_beta_schedule, eps_from_prediction, linear_beta_schedule, make_schedule
from gm_jax.losses.vlb import VLBUnits
from gm_jax.samplers.diffusion import TimestepSpacing, ddim_encode, ddim_sample, ddpm_sample, guided_eps_fn

Sampler = Literal["ddpm", "ddim"]
SAMPLERS = typing.get_args(Sampler)


@dataclasses.dataclass(frozen=True)
class DDPMConfig(DenoiserNetConfig):
    """DDPM hyper-parameters.

    Process: ``schedule`` linear (Ho et al.) | cosine (Nichol & Dhariwal) over ``num_steps`` steps.
    Network output: ``prediction`` eps | x0 | v; ``learn_variance`` adds the variance head trained by the
    hybrid loss (weight ``vlb_weight`` on L_vlb in ``vlb_units``, bits/dim as in Nichol & Dhariwal's code;
    needs prediction=eps), else the fixed ``variance`` beta | posterior.
    Network on points: TimeMLP ``hidden``/``embed_dim``; on images: U-Net ``channels``, ``channel_mult``,
    ``num_res_blocks``, ``attention_resolutions``, ``dropout`` (the CIFAR-10 net of Ho et al. is
    channels=128, channel_mult=(1,2,2,2), num_res_blocks=2, attention_resolutions=(16,), dropout=0.1).
    Conditioning: ``conditional`` uses the dataset's labels, dropped to the null label with probability
    ``label_dropout`` for classifier-free guidance at scale ``guidance``.
    Sampling: ``sampler`` ddpm | ddim with ``sample_steps`` (ddim; 0 = all), ``eta`` and
    ``timestep_spacing`` (ddim; see :func:`gm_jax.samplers.ddim_timesteps`); images clip the predicted x_0
    to [-1, 1]. Evaluation: an unbiased estimate of the bound from ``eval_timesteps`` stratified steps and the
    exact decoder term (default 50: the digits test set in ~25 s on 2 CPU cores;
    :func:`gm_jax.losses.diffusion_vlb`), or the bound summed over all steps with
    ``eval_timesteps=0`` (Ho et al.'s number; 20x slower at T = 1000).
    """

    schedule: Literal["linear", "cosine"] = hparam(
        "linear", "beta schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal)")
    num_steps: int = hparam(1000, "diffusion steps T")
    prediction: Prediction = hparam("eps", "what the network predicts: eps, x0 or v")
    learn_variance: bool = hparam(False, "learn the reverse variances with the hybrid loss (needs prediction=eps)")
    variance: Literal["beta", "posterior"] = hparam(
        "beta", "fixed reverse variance when not learned: beta or the posterior's")
    vlb_weight: float = hparam(0.001, "weight of L_vlb in the hybrid loss (learn_variance)")
    vlb_units: VLBUnits = hparam("bits", "units of L_vlb in the hybrid loss (bits: Nichol & Dhariwal's code)")
    conditional: bool = hparam(False, "condition on the dataset's labels (classifier-free guidance)")
    label_dropout: float = hparam(0.1, "probability of replacing a label by the null label in training (conditional)")
    guidance: float = hparam(0.0, "classifier-free guidance scale w when sampling (conditional)", inference=True)
    sampler: Sampler = hparam("ddpm", "ddpm (ancestral) or ddim", inference=True)
    sample_steps: int = hparam(0, "ddim steps (0: all num_steps)", inference=True)
    eta: float = hparam(0.0, "ddim noise (0: deterministic)", inference=True)
    timestep_spacing: TimestepSpacing = hparam(
        "uniform", "ddim timestep selection (gm_jax.samplers.ddim_timesteps)", inference=True)
    eval_timesteps: int = hparam(
        50, "test bound from this many stratified steps plus L_0 (unbiased), or over all steps (0)", inference=True)

    def validate(self):
        self.validate_network()
        check_positive(self, "num_steps")
        if self.learn_variance and self.prediction != "eps":
            raise GMJaxError("learn_variance=true trains with the hybrid loss, which needs prediction=eps")
        if not 0.0 <= self.label_dropout < 1.0:
            raise GMJaxError(f"label_dropout must be in [0, 1), got {self.label_dropout}")
        if not 0 <= self.sample_steps <= self.num_steps:
            raise GMJaxError(f"sample_steps must be in [0, num_steps={self.num_steps}], got {self.sample_steps}")
        if self.eta < 0 or self.vlb_weight < 0 or self.eval_timesteps < 0:
            raise GMJaxError("eta, vlb_weight and eval_timesteps must be >= 0")
        self.make_schedule()

    def make_schedule(self):
        if self.schedule == "linear":
            return make_schedule(linear_beta_schedule(self.num_steps))
        if self.schedule == "cosine":
            return make_schedule(cosine_beta_schedule(self.num_steps))
        raise GMJaxError(f"unknown schedule '{self.schedule}'; choose one of linear, cosine")


class DDPM:
    """A diffusion model on images (U-Net) or points (TimeMLP), optionally class-conditional."""

    has_log_prob = True
    default_train = {"steps": 20000, "lr": 2e-4, "warmup_steps": 500, "grad_clip": 1.0, "ema_decay": 0.999,
                     "checkpoint_every": 2000}

    def __init__(self, config: DDPMConfig, spec: DataSpec):
        if spec.kind not in ("image", "points"):
            raise GMJaxError(f"ddpm models images or points, and {spec.name} holds {spec.kind}")
        if config.conditional and not spec.num_classes:
            raise GMJaxError(f"conditional=true needs labels, and dataset {spec.name} has none")
        if config.guidance and not config.conditional:
            raise GMJaxError("guidance needs a conditional model: set conditional=true (and train with label_dropout)")
        self.config, self.spec = config, spec
        self.schedule = config.make_schedule()
        classes = spec.num_classes if config.conditional else None
        channels = spec.shape[-1] if spec.kind == "image" else spec.num_dims
        self.net = Denoiser(config, spec, out_channels=channels * (2 if config.learn_variance else 1),
                            num_classes=classes)
        # The discretized decoder for integer images; a continuous Gaussian decoder for points.
        self.num_levels = spec.num_levels if spec.kind == "image" else None

    # --------------------------------------------------------------------------------------- network
    def output_fn(self, params, train: bool = False, key=None):
        """``(x_t, t[, labels]) -> raw output``: the configured prediction (eps, x0 or v), or
        ``(eps, var_interp)`` with learned variances; shapes like x_t. The callable the samplers of
        :mod:`gm_jax.samplers` and the bound of :mod:`gm_jax.losses` take, with ``prediction=config.prediction``."""
        c = self.config

        def fn(x, t, labels=None):
            out = self.net.apply(params, x, t, labels, train, key)
            if c.learn_variance:
                eps, interp = jnp.split(out, 2, axis=-1)
                return eps.reshape(x.shape), interp.reshape(x.shape)
            return out.reshape(x.shape)

        return fn

    def _labels(self, batch):
        if not self.config.conditional:
            return None
        if "label" not in batch:
            raise GMJaxError("this DDPM is conditional: batches (and sampling) need labels")
        return jnp.asarray(batch["label"], jnp.int32)

    # ------------------------------------------------------------------------------------ data <-> model
    def _to_model_space(self, x):
        if self.spec.kind == "points":
            return jnp.asarray(x, jnp.float32)
        return to_centres(x, self.spec.num_levels)

    def _from_model_space(self, y):
        if self.spec.kind == "points":
            return y
        return from_centres(jnp.clip(y, -1.0, 1.0), self.spec.num_levels)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        x = self._to_model_space(example_batch[self.spec.data_key][:1])
        labels = self._labels({k: v[:1] for k, v in example_batch.items()})
        return {"params": self.net.init(key, x, jnp.zeros((1,), jnp.int32), labels), "state": {}}

    def loss(self, variables, batch, key):
        """Mean L_simple (or L_hybrid with learned variances) over the batch. Metrics: the loss, and with
        learned variances the single-step VLB estimate in bits/dim."""
        c = self.config
        k_drop_label, k_drop, k_loss = jax.random.split(key, 3)
        x = self._to_model_space(batch[self.spec.data_key])
        labels = self._labels(batch)
        if labels is not None:  # label dropout trains the unconditional model for guidance
            dropped = jax.random.bernoulli(k_drop_label, c.label_dropout, labels.shape)
            labels = jnp.where(dropped, self.spec.num_classes, labels)
        fn = self.output_fn(variables["params"], train=True, key=k_drop)
        net = lambda x_t, t: fn(x_t, t, labels)
        if c.learn_variance:
            per_example, aux = hybrid_loss(net, self.schedule, x, k_loss, num_levels=self.num_levels,
                                           vlb_weight=c.vlb_weight, vlb_units=c.vlb_units, return_aux=True)
            vlb_t = aux["vlb_term"]
            loss = per_example.mean()
            metrics = {"hybrid_loss": loss, "vlb_term_bits_per_dim": bits_per_dim(vlb_t.mean(), self.spec.num_dims)}
            return loss, metrics, variables["state"]
        loss = ddpm_loss(net, self.schedule, x, k_loss, prediction=c.prediction).mean()
        return loss, {"mse": loss}, variables["state"]

    def _variance(self):
        return "learned" if self.config.learn_variance else self.config.variance

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one latent code x_T: the data's."""
        return tuple(self.spec.shape)

    def _eps_fn(self, variables):
        """(x_t, t) -> predicted noise, whatever the network predicts (unconditional use only)."""
        if self.config.conditional:
            raise GMJaxError("the deterministic latent map of a conditional ddpm needs labels; it is defined for "
                             "unconditional models")
        fn, c = self.output_fn(variables["params"]), self.config

        def eps(x_t, t):
            out = fn(x_t, t)
            out = out[0] if c.learn_variance else out
            return eps_from_prediction(self.schedule, x_t, t, out, c.prediction)
        return eps

    def decode_latent(self, variables, z, labels=None, *, steps: int = 50):
        """Deterministic DDIM (eta = 0, Song, Meng & Ermon 2021) from x_T = z [B, *shape] in ``steps`` steps,
        as continuous data (images in [0, 1], not rounded to levels; points as they are)."""
        del labels
        y = ddim_sample(self._eps_fn(variables), self.schedule, jax.random.key(0), tuple(z.shape), num_steps=steps,
                        spacing=self.config.timestep_spacing, x_T=z,
                        clip_x0=(-1.0, 1.0) if self.spec.kind == "image" else None)
        return y if self.spec.kind == "points" else jnp.clip((y + 1.0) / 2.0, 0.0, 1.0)

    def encode_latent(self, variables, x, labels=None, *, steps: int = 50):
        """Data-space x -> x_T by DDIM inversion in ``steps`` steps (:func:`gm_jax.samplers.ddim_encode`)."""
        del labels
        return ddim_encode(self._eps_fn(variables), self.schedule, self._to_model_space(x), num_steps=steps,
                           spacing=self.config.timestep_spacing)

    def log_prob(self, variables, x, key, *, labels=None):
        """-VLB [B]: a lower bound on log P(x) in nats (discrete images) or on log p(x) (points)."""
        c = self.config
        xm = self._to_model_space(x)
        labels = self._labels({"label": labels} if labels is not None else {})
        fn = self.output_fn(variables["params"])
        vlb = diffusion_vlb(lambda x_t, t: fn(x_t, t, labels), self.schedule, xm, key, num_levels=self.num_levels,
                            prediction=c.prediction, variance=self._variance(), num_timesteps=c.eval_timesteps or None)
        return -vlb

    def sample(self, variables, key, num, *, labels=None, sampler: str | None = None, steps: int | None = None,
               guidance: float | None = None):
        """``num`` samples in data space. ``sampler`` ddpm | ddim (default ``config.sampler``); ``steps``: the
        DDIM step count (default ``config.sample_steps``, 0 = all; DDPM always runs every step);
        ``guidance`` the classifier-free guidance scale (conditional models; default ``config.guidance``);
        ``labels`` [num] (default 0, 1, 2, ... cycling over the classes)."""
        c = self.config
        sampler = sampler or c.sampler
        if sampler not in SAMPLERS:
            raise GMJaxError(f"ddpm samples with {' or '.join(SAMPLERS)}, not '{sampler}'")
        guidance = c.guidance if guidance is None else guidance  # may be traced: one compile for every scale
        if not c.conditional and not (isinstance(guidance, (int, float)) and guidance == 0):
            raise GMJaxError("--guidance needs a conditional model (conditional=true)")
        fn = self.output_fn(variables["params"])
        if c.conditional:
            if labels is None:
                labels = jnp.arange(num) % self.spec.num_classes
            net = guided_eps_fn(fn, labels, self.spec.num_classes, guidance)
        else:
            net = lambda x_t, t: fn(x_t, t)
        shape = (num,) + tuple(self.spec.shape)
        clip = (-1.0, 1.0) if self.spec.kind == "image" else None
        if sampler == "ddpm":
            if steps not in (None, 0, c.num_steps):
                raise GMJaxError(f"the ddpm sampler runs all {c.num_steps} steps; use --sampler ddim for {steps}")
            y = ddpm_sample(net, self.schedule, key, shape, prediction=c.prediction, variance=self._variance(),
                            clip_x0=clip)
        else:
            net_pred = (lambda x_t, t: net(x_t, t)[0]) if c.learn_variance else net
            n = steps or c.sample_steps or c.num_steps
            y = ddim_sample(net_pred, self.schedule, key, shape, num_steps=n, eta=c.eta, spacing=c.timestep_spacing,
                            prediction=c.prediction, clip_x0=clip)
        return self._from_model_space(y)


__all__ = ["SAMPLERS", "Sampler", "DDPM", "DDPMConfig"]
