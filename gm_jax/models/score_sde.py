"""Score-based generative models through SDEs (Song et al. 2021, "Score-Based Generative Modeling through
Stochastic Differential Equations", ICLR).

A network eps_theta(x, t) is trained by continuous-time denoising score matching
(:func:`gm_jax.losses.score_matching.sde_dsm_loss`, eq. 7 with lambda(t) = s(t)^2) under one of the SDEs of
:mod:`gm_jax.processes.sde`; the score is parameterised as s_theta(x, t) = -eps_theta(x, t) / s(t), so the
loss is the noise-prediction MSE 1/2 ||eps_theta(m x_0 + s z, t) - z||^2 and the network output stays O(1)
at every t (s(t) the kernel's standard deviation). Sampling: predictor–corrector (``"pc"``), reverse-SDE
Euler–Maruyama (``"sde"``) or the probability-flow ODE (``"ode"``) of :mod:`gm_jax.samplers.sde`.

``log_prob`` is the probability-flow ODE likelihood (:func:`gm_jax.samplers.sde.ode_log_likelihood`) of the
model-space point at time ``eval_eps``. Images (integers 0..K-1) are uniformly dequantized into [-1, 1]
(:func:`gm_jax.data.preprocess.dequantize`) and the Jacobian D log(2 / K) is added, so ``log_prob`` is the
dequantization bound on log P(x) in nats relative to the discrete data (Theis et al. 2016), for one draw
of the dequantization noise and of the Hutchinson probes from ``key`` (the paper reports the same
estimator, averaged over draws). Points are modelled directly: log_prob is the density of the points.
Networks: :class:`gm_jax.nets.time_mlp.TimeMLP` on points, :class:`gm_jax.nets.unet.UNet` on images.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import jax
import jax.numpy as jnp

from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import data_to_model_space, dequantize, model_to_data_space
from gm_jax.errors import GMJaxError
from gm_jax.losses.score_matching import sde_dsm_loss
from gm_jax.models.base import check_positive, hparam
from gm_jax.models.denoiser import Denoiser, DenoiserNetConfig
from gm_jax.processes.sde import SubVPSDE, VESDE, VPSDE
from gm_jax.samplers.sde import (ode_log_likelihood, pc_sample, probability_flow_encode, probability_flow_sample,
                                 reverse_sde_sample, tsit5_evaluations)

Sampler = Literal["pc", "sde", "ode"]
SAMPLERS = typing.get_args(Sampler)


@dataclasses.dataclass(frozen=True)
class ScoreSDEConfig(DenoiserNetConfig):
    """Score SDE model: the process, the network, the training objective, the sampler and the evaluation.

    SDE: ``sde`` ve (``sigma_min``, ``sigma_max``) | vp | subvp (``beta_min``, ``beta_max``); the paper's
    defaults. ``sigma_max`` should exceed the largest distance between two data points. ``ve_perturbation``:
    the VE kernel's std, sigma(t) (``"sigma"``, Song et al.'s code) or the exact sqrt(sigma(t)^2 - sigma_min^2).
    Network on points: TimeMLP of widths ``hidden`` with a sinusoidal time embedding of ``embed_dim``.
    Network on images: DDPM U-Net with ``channels``, ``channel_mult``, ``num_res_blocks``,
    ``attention_resolutions``, ``dropout``. Both embed ``time_scale * t`` (t in [0, 1]).
    Training: t ~ U(``train_eps``, 1); ``likelihood_weighting`` uses lambda(t) = g(t)^2 (Song et al.
    2021b) instead of s(t)^2.
    Sampling: ``sampler`` pc | sde | ode; ``sample_steps`` time steps (pc, sde), ``snr`` and
    ``corrector_steps`` (pc), down to ``sample_eps``, then Tweedie denoising when ``denoise``.
    ODE solves (the ode sampler and the likelihood): adaptive Tsit5 with ``ode_rtol``/``ode_atol``, or
    ``ode_steps`` > 0 fixed Tsit5 steps. Likelihood: the ODE from ``eval_eps`` with ``trace`` hutchinson
    (``num_probes`` Rademacher probes) or exact.
    """

    # the keys of gm_jax.processes.sde.SDES
    sde: Literal["ve", "vp", "subvp"] = hparam("vp", "ve (sigma_min, sigma_max), vp or subvp (beta_min, beta_max)")
    sigma_min: float = hparam(0.01, "VE: smallest noise std")
    sigma_max: float = hparam(50.0, "VE: largest noise std (above the largest distance between two data points)")
    ve_perturbation: Literal["sigma", "exact"] = hparam(
        "sigma", "VE kernel std: sigma(t) (Song et al.'s code) or the exact one")
    beta_min: float = hparam(0.1, "VP and sub-VP: beta(0)")
    beta_max: float = hparam(20.0, "VP and sub-VP: beta(1)")
    time_scale: float = hparam(999.0, "the network embeds time_scale * t (t in [0, 1])")
    train_eps: float = hparam(1e-5, "training draws t ~ U(train_eps, 1)")
    likelihood_weighting: bool = hparam(False, "weight the loss by g(t)^2 (Song et al. 2021b) instead of s(t)^2")
    sampler: Sampler = hparam(
        "pc", "pc (predictor-corrector), sde (reverse SDE) or ode (probability flow)", inference=True)
    sample_steps: int = hparam(500, "time steps of the pc and sde samplers", inference=True)
    snr: float = hparam(0.16, "signal-to-noise ratio of the Langevin corrector (pc)", inference=True)
    corrector_steps: int = hparam(1, "corrector steps per time step (pc)", inference=True)
    sample_eps: float = hparam(1e-3, "sampling stops at t = sample_eps", inference=True)
    denoise: bool = hparam(True, "a final Tweedie denoising step after sampling")
    eval_eps: float = hparam(1e-5, "the likelihood ODE starts at t = eval_eps", inference=True)
    # gm_jax.samplers.sde.TRACES
    trace: Literal["hutchinson", "exact"] = hparam(
        "hutchinson", "divergence in the likelihood ODE: Hutchinson estimate or exact", inference=True)
    num_probes: int = hparam(1, "Rademacher probes of the Hutchinson estimate", inference=True)
    ode_rtol: float = hparam(1e-5, "relative tolerance of the adaptive Tsit5 ODE solves", inference=True)
    ode_atol: float = hparam(1e-5, "absolute tolerance of the adaptive Tsit5 ODE solves", inference=True)
    ode_steps: int = hparam(0, "> 0: this many fixed Tsit5 steps instead of adaptive ones", inference=True)

    def make_sde(self):
        """The process (validates its parameters)."""
        if self.sde == "ve":
            return VESDE(self.sigma_min, self.sigma_max, perturbation=self.ve_perturbation)
        if self.sde == "vp":
            return VPSDE(self.beta_min, self.beta_max)
        if self.sde == "subvp":
            return SubVPSDE(self.beta_min, self.beta_max)
        raise GMJaxError(f"unknown sde '{self.sde}'; choose one of ve, vp, subvp")

    def validate(self):
        self.make_sde()
        self.validate_network()
        check_positive(self, "sample_steps", "num_probes")
        if not 0.0 <= self.train_eps < 1.0:
            raise GMJaxError(f"train_eps must be in [0, 1), got {self.train_eps}")
        for name in ("sample_eps", "eval_eps"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise GMJaxError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.time_scale <= 0 or self.snr <= 0 or self.ode_rtol <= 0 or self.ode_atol <= 0:
            raise GMJaxError("time_scale, snr, ode_rtol and ode_atol must be > 0")
        if self.corrector_steps < 0 or self.ode_steps < 0:
            raise GMJaxError(f"corrector_steps and ode_steps must be >= 0, got {self.corrector_steps}, "
                             f"{self.ode_steps}")


class ScoreSDE:
    """Score-based SDE model on points (TimeMLP) or images (U-Net); unconditional (labels are ignored)."""

    has_log_prob = True
    default_train = {"steps": 20000, "lr": 2e-4, "warmup_steps": 500, "grad_clip": 1.0, "ema_decay": 0.999,
                     "checkpoint_every": 2000}

    def __init__(self, config: ScoreSDEConfig, spec: DataSpec):
        if spec.kind not in ("image", "points"):
            raise GMJaxError(f"score_sde models images or points, and {spec.name} holds {spec.kind}")
        self.config, self.spec = config, spec
        self.sde = config.make_sde()
        self.net = Denoiser(config, spec, time_scale=config.time_scale)

    # ------------------------------------------------------------------------------- network and score
    def score_fn(self, params, train: bool = False, key=None):
        """s_theta(x, t) = -eps_theta(x, t) / s(t): the callable the losses and samplers take."""

        def score(x, t):
            _, std = self.sde.marginal(t)
            eps = self.net.apply(params, x, t, None, train, key).reshape(x.shape)
            return -eps / std.reshape(std.shape + (1,) * (x.ndim - 1))
        return score

    # ------------------------------------------------------------------------------------ data <-> model
    def _to_model_space(self, x, key):
        """Data -> (model-space [B, ...] float32, log-Jacobian [B] to discrete units)."""
        return data_to_model_space(self.spec, x, key)

    def _from_model_space(self, y):
        return model_to_data_space(self.spec, y)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        """Network params from one example; returns {"params": ..., "state": {}}."""
        k_data, k_net = jax.random.split(key)
        x, _ = self._to_model_space(example_batch[self.spec.data_key][:1], k_data)
        return {"params": self.net.init(k_net, x, jnp.full((1,), 0.5, jnp.float32)), "state": {}}

    def loss(self, variables, batch, key):
        """Mean over the batch of the continuous-time DSM loss (1/2 squared noise-prediction error summed
        over the event dims, not a likelihood); metrics ``dsm_loss`` and ``dsm_loss_per_dim``."""
        k_data, k_loss, k_drop = jax.random.split(key, 3)
        x, _ = self._to_model_space(batch[self.spec.data_key], k_data)
        per_example = sde_dsm_loss(self.score_fn(variables["params"], True, k_drop), self.sde, x, k_loss,
                                   eps=self.config.train_eps, likelihood_weighting=self.config.likelihood_weighting)
        loss = jnp.mean(per_example)
        return loss, {"dsm_loss": loss, "dsm_loss_per_dim": loss / self.spec.num_dims}, variables["state"]

    def log_prob(self, variables, x, key, *, labels=None):
        """log p(x) [B] in nats per example: the probability-flow ODE likelihood at ``eval_eps``, plus the
        dequantization Jacobian for images (a bound on log P(x) relative to the discrete data, for one
        dequantization and probe draw from ``key``). ``labels`` is accepted and ignored."""
        c = self.config
        k_data, k_probe = jax.random.split(key)
        y, log_det = self._to_model_space(x, k_data)
        lp = ode_log_likelihood(self.score_fn(variables["params"]), self.sde, y, k_probe, eps=c.eval_eps,
                                trace=c.trace, num_probes=c.num_probes, rtol=c.ode_rtol, atol=c.ode_atol,
                                num_steps=c.ode_steps or None)
        return lp + log_det

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one latent code x(T): the data's."""
        return tuple(self.spec.shape)

    def decode_latent(self, variables, z, labels=None):
        """The probability-flow ODE from x(T) = z [B, *shape] (the ``ode`` sampler's map, without the final
        denoising step, so that it inverts :meth:`encode_latent`), as continuous data (images in [0, 1], not
        rounded to levels; points as they are)."""
        del labels
        c = self.config
        y = probability_flow_sample(self.score_fn(variables["params"]), self.sde, None, tuple(z.shape),
                                    eps=c.sample_eps, rtol=c.ode_rtol, atol=c.ode_atol, num_steps=c.ode_steps or None,
                                    x_T=z)
        return y if self.spec.kind == "points" else jnp.clip((y + 1.0) / 2.0, 0.0, 1.0)

    def encode_latent(self, variables, x, labels=None):
        """Data-space x (images at their bin centres) -> x(T) by the probability-flow ODE run forwards."""
        del labels
        c = self.config
        y = x if self.spec.kind == "points" else dequantize(x, self.spec.num_levels, None, noise=False)[0]
        return probability_flow_encode(self.score_fn(variables["params"]), self.sde, y, eps=c.sample_eps,
                                       rtol=c.ode_rtol, atol=c.ode_atol, num_steps=c.ode_steps or None)

    def _ode_sample(self, variables, key, shape, steps):
        c = self.config
        ode_steps = c.ode_steps if steps is None else steps
        return probability_flow_sample(self.score_fn(variables["params"]), self.sde, key, shape, eps=c.sample_eps,
                                       rtol=c.ode_rtol, atol=c.ode_atol, num_steps=ode_steps or None,
                                       denoise=c.denoise, return_stats=True)

    def adaptive_network_evaluations(self, variables, key, num, *, sampler: str | None = None,
                                     steps: int | None = None):
        """Score evaluations per sample (one batch-wide pass counts once) of ``sample(variables, key, num,
        sampler=..., steps=...)`` when its ODE solver is adaptive (``ode`` with ode_steps 0): they depend on
        the model and the batch, so they are counted on this draw (:func:`tsit5_evaluations`, plus the
        denoising step). None for a fixed-step sampler, whose count the config gives."""
        c = self.config
        if (sampler or c.sampler) != "ode" or (c.ode_steps if steps is None else steps):
            return None
        count = jax.jit(lambda v, k: tsit5_evaluations(self._ode_sample(v, k, (num,) + tuple(self.spec.shape),
                                                                          steps)[1]))
        return int(count(variables, key)) + int(c.denoise)

    def sample(self, variables, key, num, *, labels=None, sampler: str | None = None, steps: int | None = None):
        """``num`` samples in data space ([num, *shape]: integer images or float32 points).

        ``sampler`` pc | sde | ode (default ``config.sampler``); ``steps`` overrides ``config.sample_steps``
        (pc, sde) or ``config.ode_steps`` (ode: 0 = adaptive). ``labels`` is accepted and ignored.
        """
        c = self.config
        sampler = sampler or c.sampler
        shape = (num,) + tuple(self.spec.shape)
        score = self.score_fn(variables["params"])
        if sampler == "pc":
            y = pc_sample(score, self.sde, key, shape, num_steps=steps or c.sample_steps, snr=c.snr,
                          corrector_steps=c.corrector_steps, eps=c.sample_eps, denoise=c.denoise)
        elif sampler == "sde":
            y = reverse_sde_sample(score, self.sde, key, shape, num_steps=steps or c.sample_steps, eps=c.sample_eps,
                                   denoise=c.denoise)
        elif sampler == "ode":
            y = self._ode_sample(variables, key, shape, steps)[0]
        else:
            raise GMJaxError(f"unknown sampler '{sampler}'; choose one of {', '.join(SAMPLERS)}")
        return self._from_model_space(y)


__all__ = ["SAMPLERS", "Sampler", "ScoreSDE", "ScoreSDEConfig"]
