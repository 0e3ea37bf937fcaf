"""Variational autoencoder (Kingma & Welling 2014), beta-VAE (Higgins et al. 2017), conditional VAE
(Sohn et al. 2015), evaluated with the IWAE bound (Burda et al. 2016).

The maths is :func:`gm_jax.losses.elbo` / :func:`gm_jax.losses.iwae_bound`; this module binds Flax
encoders/decoders and a decoder likelihood to it, and maps dataset integers to model space.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax import distributions as D
from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import binarize, dequantize, from_centres, quantize, to_centres
from gm_jax.errors import GMJaxError
from gm_jax.losses.elbo import elbo, iwae_bound
from gm_jax.losses.likelihood import bits_per_dim
from gm_jax.models.base import Config, check_hidden, check_positive, hparam
from gm_jax.nets.vae_nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from gm_jax.samplers.interpolation import lerp, slerp

__all__ = ["VAEConfig", "VAE"]

_MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on the logistic log-scale; keeps bins' log-mass finite


@dataclasses.dataclass(frozen=True)
class VAEConfig(Config):
    """VAE hyper-parameters.

    likelihood: ``discretized_logistic`` (integer images, exact discrete mass), ``bernoulli`` (dynamically
    binarized images; likelihoods refer to the binarized data), ``gaussian`` (dequantized images or
    continuous points; likelihoods are the dequantization bound in discrete units).
    """

    latent_dim: int = hparam(16, "size of the latent code z")
    architecture: Literal["mlp", "conv"] = hparam(
        "mlp", "encoder and decoder: MLPs of widths hidden, or conv nets of conv_channels")
    hidden: tuple[int, ...] = hparam(
        (256, 256), "encoder MLP widths (the decoder mirrors them); conv: hidden[0] is the dense width")
    conv_channels: int = hparam(32, "channels of the conv encoder and decoder (architecture=conv)")
    likelihood: Literal["discretized_logistic", "bernoulli", "gaussian"] = hparam(
        "discretized_logistic", "decoder p(x|z): exact discrete mass, binarized images, or a Gaussian bound")
    activation: Literal["silu", "tanh", "relu"] = hparam(
        "silu", "activation of the MLP encoder and decoder (Burda et al. 2016 use tanh)")
    beta: float = hparam(1.0, "weight of the KL term (beta-VAE; 1 gives the ELBO)")
    train_importance_samples: int = hparam(
        1, "k of the training bound: 1 the ELBO (with beta), k > 1 the IWAE bound L_k (Burda et al. 2016)")
    conditional: bool = hparam(False, "condition the encoder and decoder on the dataset's labels")
    eval_importance_samples: int = hparam(
        1000, "importance samples k of the IWAE bound reported as the test NLL", inference=True)
    eval_chunk_size: int = hparam(100, "importance samples evaluated at once (memory against speed)", inference=True)
    compute_dtype: Literal["float32", "bfloat16"] = hparam(
        "float32", "network compute precision (parameters stay float32)")

    def validate(self):
        check_positive(self, "latent_dim", "conv_channels", "eval_importance_samples", "eval_chunk_size",
                       "train_importance_samples")
        if self.train_importance_samples > 1 and self.beta != 1.0:
            raise GMJaxError(f"train_importance_samples={self.train_importance_samples} trains the IWAE bound, "
                             f"which has no KL weight: drop beta={self.beta} or train with train_importance_samples=1")
        check_hidden(self)
        if self.architecture == "conv" and not self.hidden:
            raise GMJaxError("architecture=conv needs one hidden width (its dense layer), e.g. hidden=256")
        if self.beta < 0:
            raise GMJaxError(f"beta must be >= 0, got {self.beta}")


_NUM_PARAMS = {"discretized_logistic": 2, "bernoulli": 1, "gaussian": 2}


class VAE:
    """A VAE on a dataset. Batches are dicts: {"image": uint8 [B, H, W, C]} or {"point": float [B, D]},
    plus "label" [B] int for conditional models. ``variables = {"params": ..., "state": {}}``."""

    has_log_prob = True
    # The main job's schedule: on the 1,437 digits, longer runs overfit (test NLL rises after ~2k steps).
    default_train = {"steps": 2000, "schedule": "cosine", "warmup_steps": 100, "checkpoint_every": 500}

    def __init__(self, config: VAEConfig, spec: DataSpec):
        if spec.kind == "points" and config.likelihood != "gaussian":
            raise GMJaxError(f"{spec.name} holds continuous points: use --set likelihood=gaussian "
                             f"(got {config.likelihood})")
        if config.conditional and not spec.num_classes:
            raise GMJaxError(f"conditional=true needs labels, and dataset {spec.name} has none")
        if config.architecture == "conv":
            if spec.kind != "image" or spec.shape[0] % 4 or spec.shape[1] % 4:
                raise GMJaxError(f"architecture=conv needs images with height and width divisible by 4, "
                                 f"got {spec.name} with shape {spec.shape}; use architecture=mlp")
        self.config, self.spec = config, spec
        dtype = jnp.bfloat16 if config.compute_dtype == "bfloat16" else jnp.float32
        n = _NUM_PARAMS[config.likelihood]
        if config.architecture == "conv":
            self.encoder = ConvEncoder(config.latent_dim, config.conv_channels, config.hidden[0], dtype=dtype)
            self.decoder = ConvDecoder(spec.shape, n, config.conv_channels, config.hidden[0], dtype=dtype)
        else:
            act = {"silu": nn.silu, "tanh": nn.tanh, "relu": nn.relu}[config.activation]
            self.encoder = MLPEncoder(config.latent_dim, config.hidden, dtype=dtype, activation=act)
            self.decoder = MLPDecoder(spec.shape, n, tuple(reversed(config.hidden)), dtype=dtype, activation=act)

    # ------------------------------------------------------------------------------------ data <-> model
    def _labels(self, batch):
        if not self.config.conditional:
            return None
        if "label" not in batch:
            raise GMJaxError("this VAE is conditional: batches (and sampling) need labels")
        return jax.nn.one_hot(batch["label"], self.spec.num_classes)

    def _to_model_space(self, x, key):
        """Data-space x -> (model-space input, log-Jacobian [B] to discrete units).

        ``key`` draws the dequantization noise or the dynamic binarization; with ``key=None`` the map is
        deterministic (mid-bin values, binarization at half intensity).
        """
        zero = jnp.zeros(x.shape[:1], jnp.float32)
        if self.spec.kind == "points":
            return jnp.asarray(x, jnp.float32), zero
        k = self.spec.num_levels
        if self.config.likelihood == "discretized_logistic":
            return to_centres(x, k), zero
        if self.config.likelihood == "bernoulli":
            return binarize(x, k, key), zero
        return dequantize(x, k, key, noise=key is not None)

    def _log_likelihood(self, params, labels):
        """log p(x | z) [B] for model-space x; the decoder output's last axis holds the parameters."""
        cfg = self.config

        def log_likelihood(x, z):
            out = self.decoder.apply({"params": params["decoder"]}, z, labels)
            if cfg.likelihood == "bernoulli":
                return D.bernoulli_log_prob(x, out[..., 0])
            mean, log_scale = out[..., 0], out[..., 1]
            if cfg.likelihood == "gaussian":
                return D.diag_gaussian_log_prob(x, mean, log_scale)
            return D.discretized_logistic_log_prob(x, mean, jnp.maximum(log_scale, _MIN_LOG_SCALE),
                                                   self.spec.num_levels)

        return log_likelihood

    def _encode(self, params, labels):
        return lambda x: self.encoder.apply({"params": params["encoder"]}, x, labels)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        x = example_batch[self.spec.data_key][:1]
        labels = self._labels({k: v[:1] for k, v in example_batch.items()})
        k_enc, k_dec = jax.random.split(key)
        xm, _ = self._to_model_space(x, k_enc)
        z = jnp.zeros((1, self.config.latent_dim), jnp.float32)
        return {
            "params": {
                "encoder": self.encoder.init(k_enc, xm, labels)["params"],
                "decoder": self.decoder.init(k_dec, z, labels)["params"],
            },
            "state": {},
        }

    def loss(self, variables, batch, key):
        """-mean ELBO_beta over the batch, or with ``train_importance_samples`` k > 1 -mean IWAE bound L_k
        (Burda et al. 2016, eq. 8: the gradient weights the k samples by their normalised importance weights);
        metrics in nats and bits/dim (of the beta=1 bound that is trained, or of the ELBO)."""
        params = variables["params"]
        labels = self._labels(batch)
        k_data, k_z = jax.random.split(key)
        x, log_det = self._to_model_space(batch[self.spec.data_key], k_data)
        k = self.config.train_importance_samples
        if k > 1:
            bound = iwae_bound(self._encode(params, labels), self._log_likelihood(params, labels), x, k_z, k=k)
            nll_bound = -(bound + log_det)
            metrics = {"nll_bound_nats": nll_bound.mean(),
                       "bits_per_dim": bits_per_dim(nll_bound.mean(), self.spec.num_dims)}
            return -bound.mean(), metrics, variables["state"]
        objective, aux = elbo(self._encode(params, labels), self._log_likelihood(params, labels), x, k_z,
                              beta=self.config.beta, return_aux=True)
        nll_bound = -(aux["reconstruction"] - aux["kl"] + log_det)
        metrics = {
            "kl": aux["kl"].mean(),
            "reconstruction": aux["reconstruction"].mean(),
            "nll_bound_nats": nll_bound.mean(),
            "bits_per_dim": bits_per_dim(nll_bound.mean(), self.spec.num_dims),
        }
        return -objective.mean(), metrics, variables["state"]

    def log_prob(self, variables, x, key, *, labels=None):
        """IWAE estimate of log P(x) [B] in nats relative to the discrete data (a lower bound)."""
        params = variables["params"]
        oh = self._labels({"label": labels} if labels is not None else {})
        k_data, k_z = jax.random.split(key)
        xm, log_det = self._to_model_space(x, k_data)
        bound = iwae_bound(self._encode(params, oh), self._log_likelihood(params, oh), xm, k_z,
                           k=self.config.eval_importance_samples, chunk_size=self.config.eval_chunk_size)
        return bound + log_det

    def decode(self, variables, z, key=None, labels=None):
        """Latents z [B, Z] -> data space: the decoder's mean (key None) or a sample from p(x | z)."""
        oh = self._labels({"label": labels} if labels is not None else {})
        out = self.decoder.apply({"params": variables["params"]["decoder"]}, z, oh)
        cfg, k = self.config, self.spec.num_levels
        if cfg.likelihood == "bernoulli":
            on = jax.nn.sigmoid(out[..., 0]) > 0.5 if key is None else jax.random.bernoulli(key, jax.nn.sigmoid(out[..., 0]))
            return (on * (k - 1)).astype(jnp.uint8)
        mean, log_scale = out[..., 0], out[..., 1]
        if cfg.likelihood == "gaussian":
            y = mean if key is None else mean + jnp.exp(log_scale) * jax.random.normal(key, mean.shape)
            return y if self.spec.kind == "points" else quantize(y, k)
        # Rounding a continuous logistic draw to the nearest level samples the discretized logistic exactly.
        log_scale = jnp.maximum(log_scale, _MIN_LOG_SCALE)
        y = mean if key is None else mean + jnp.exp(log_scale) * jax.random.logistic(key, mean.shape)
        return from_centres(y, k)

    def sample(self, variables, key, num, *, labels=None, mode: str = "mean"):
        """Ancestral sampling: z ~ N(0, I), then the decoder mean (``mode="mean"``) or a draw from p(x|z).

        Conditional models take ``labels`` [num] (default: 0, 1, 2, ... cycling over the classes).
        Returns [num, *data_shape] in data space.
        """
        if mode not in ("mean", "sample"):
            raise GMJaxError(f"unknown sampling mode '{mode}'; use mean or sample")
        k_z, k_x = jax.random.split(key)
        z = jax.random.normal(k_z, (num, self.config.latent_dim))
        if self.config.conditional and labels is None:
            labels = jnp.arange(num) % self.spec.num_classes
        return self.decode(variables, z, None if mode == "mean" else k_x, labels)

    def encode(self, variables, x, labels=None):
        """Posterior means [B, Z] of data-space x (bin centres / mid-bin values, no noise)."""
        oh = self._labels({"label": labels} if labels is not None else {})
        xm, _ = self._to_model_space(x, None)
        return self._encode(variables["params"], oh)(xm)[0]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one latent code: (latent_dim,)."""
        return (self.config.latent_dim,)

    def decode_latent(self, variables, z, labels=None):
        """Latents z [B, Z] -> the decoder's mean as continuous data [B, *shape] float32 (images in [0, 1],
        not rounded to levels; points as they are): the smooth map path lengths are measured on."""
        oh = self._labels({"label": labels} if labels is not None else {})
        out = self.decoder.apply({"params": variables["params"]["decoder"]}, z, oh)
        if self.config.likelihood == "bernoulli":
            return jax.nn.sigmoid(out[..., 0])
        mean = out[..., 0]
        return mean if self.spec.kind == "points" else jnp.clip((mean + 1.0) / 2.0, 0.0, 1.0)

    def encode_latent(self, variables, x, labels=None):
        """Data-space x -> latent codes [B, Z]: the posterior means (:meth:`encode`)."""
        return self.encode(variables, x, labels)

    def interpolate(self, variables, x0, x1, num: int = 8, method: str = "slerp", labels=None):
        """Decoded path between the posterior means of x0 and x1 (each [B, ...]): [num, B, ...]."""
        paths = {"slerp": slerp, "linear": lerp}
        if method not in paths:
            raise GMJaxError(f"unknown interpolation '{method}'; use slerp or linear")
        z = paths[method](self.encode(variables, x0, labels), self.encode(variables, x1, labels),
                          jnp.linspace(0.0, 1.0, num))
        flat = z.reshape(-1, z.shape[-1])
        lab = None if labels is None else jnp.tile(labels, num)
        out = self.decode(variables, flat, None, lab)
        return out.reshape((num, -1) + out.shape[1:])
