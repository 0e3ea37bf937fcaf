"""Energy-based model trained by contrastive divergence with short-run Langevin chains and a replay buffer
(Du & Mordatch 2019, "Implicit Generation and Generalization in Energy-Based Models", NeurIPS).

An energy network E_theta(x) -> [B] defines p_theta(x) ∝ exp(-E_theta(x)) (low energy = high density).
Each training step draws chain starts from a replay buffer of past negatives (a fraction ``reinit_prob``
re-started from uniform noise), runs ``langevin_steps`` of :func:`gm_jax.samplers.langevin_sample` on the
current energy (gradients do not flow through the chains), minimises
:func:`gm_jax.losses.contrastive_divergence_loss` (data energy down, negatives' energy up, plus the
alpha (E(x+)^2 + E(x-)^2) regulariser) and writes the chains' end points back into the buffer. The
buffer is the model state: ``variables["state"] = {"buffer": {"samples": [capacity, *shape]}}``; ``loss``
returns its update, and the trainer carries and checkpoints it.

The normaliser of exp(-E) is unknown, so the model has no likelihood (``has_log_prob = False``).
Images (integers 0..K-1) are uniformly dequantized into [-1, 1] and the chains are clamped to [-1, 1];
points are modelled as they are, with fresh chains uniform on [-init_range, init_range]^D.
Networks: :class:`gm_jax.nets.energy.EnergyMLP` on points, :class:`gm_jax.nets.energy.EnergyConvNet` on
images.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from gm_jax.data.loading import DataSpec
from gm_jax.data.preprocess import data_to_model_space, model_to_data_space
from gm_jax.errors import GMJaxError
from gm_jax.losses.energy import contrastive_divergence_loss
from gm_jax.models.base import Config, check_hidden, check_positive, hparam, rbg_key
from gm_jax.nets.energy import EnergyConvNet, EnergyMLP
from gm_jax.samplers.langevin import (langevin_sample, replay_buffer_init, replay_buffer_sample, replay_buffer_update,
                                      uniform_init)

__all__ = ["EBM", "EBMConfig"]


@dataclasses.dataclass(frozen=True)
class EBMConfig(Config):
    """EBM hyper-parameters.

    Network: ``hidden`` widths of the swish MLP (points) or ``channels`` of the conv net (images).
    Chains: ``langevin_steps`` steps of size ``step_size`` per training step with noise std ``noise_scale``
    (< 0 means sqrt(2 step_size), the value for which the chain targets exp(-E); Du & Mordatch use a much
    smaller one, e.g. step 10 with noise 0.005 on [0, 1] images, trading exactness for mode-seeking chains);
    ``grad_clip`` > 0 caps each example's energy-gradient norm per step (0: off). Replay buffer of
    ``buffer_capacity`` chains, a fraction ``reinit_prob`` restarted from noise per draw (Du & Mordatch: 5%).
    ``alpha``: weight of the energy-magnitude regulariser. Du & Mordatch use 1 with their near-noiseless
    chains; with the exact noise sqrt(2 step_size) the energy must span several nats for exp(-E) to
    concentrate on the data, and 1 held the energies to ±0.25 on toy2d (samples spread over the whole
    plane), hence the default 0.1. ``init_range``: fresh chains
    on points are uniform on [-init_range, init_range]^D (images: [-1, 1]). ``sample_steps``: Langevin steps
    of ``sample`` from fresh noise (sampling from the buffer continues its chains).
    """

    hidden: tuple[int, ...] = hparam((128, 128), "widths of the swish MLP energy (points)")
    channels: tuple[int, ...] = hparam((32, 64), "channels of the conv energy (images)")
    langevin_steps: int = hparam(60, "SGLD steps per training step")
    step_size: float = hparam(0.01, "SGLD step size")
    noise_scale: float = hparam(-1.0, "SGLD noise std (< 0: sqrt(2 step_size), the chain that targets exp(-E))")
    grad_clip: float = hparam(0.0, "> 0: cap on each example's energy-gradient norm per SGLD step")
    buffer_capacity: int = hparam(10000, "chains kept in the replay buffer")
    reinit_prob: float = hparam(0.05, "fraction of drawn buffer chains restarted from noise")
    alpha: float = hparam(0.1, "weight of the energy-magnitude regulariser")
    init_range: float = hparam(4.0, "fresh chains on points are uniform on [-init_range, init_range]^D")
    sample_steps: int = hparam(200, "Langevin steps of sample() from fresh noise", inference=True)

    def validate(self):
        check_positive(self, "langevin_steps", "buffer_capacity", "sample_steps")
        check_hidden(self)
        check_hidden(self, "channels")
        if not self.hidden or not self.channels:
            raise GMJaxError("hidden and channels need at least one width each")
        if self.step_size <= 0:
            raise GMJaxError(f"step_size must be > 0, got {self.step_size}")
        if self.grad_clip < 0:
            raise GMJaxError(f"grad_clip must be >= 0 (0 turns it off), got {self.grad_clip}")
        if not 0.0 <= self.reinit_prob <= 1.0:
            raise GMJaxError(f"reinit_prob must be in [0, 1], got {self.reinit_prob}")
        if self.alpha < 0:
            raise GMJaxError(f"alpha must be >= 0, got {self.alpha}")
        if self.init_range <= 0:
            raise GMJaxError(f"init_range must be > 0, got {self.init_range}")


class EBM:
    """Energy-based model on points (EnergyMLP) or images (EnergyConvNet); unconditional (labels ignored).
    ``sample`` uses the sampler ``"langevin"``."""

    has_log_prob = False
    default_train = {"steps": 5000, "lr": 1e-4, "warmup_steps": 100, "checkpoint_every": 1000}

    def __init__(self, config: EBMConfig, spec: DataSpec):
        if spec.kind not in ("image", "points"):
            raise GMJaxError(f"ebm models images or points, and {spec.name} holds {spec.kind}")
        self.config, self.spec = config, spec
        if spec.kind == "image":
            self.net = EnergyConvNet(channels=tuple(config.channels))
            self._range = 1.0
        else:
            self.net = EnergyMLP(hidden=tuple(config.hidden))
            self._range = config.init_range

    # ----------------------------------------------------------------------------------- pieces
    def energy_fn(self, params):
        """E_theta(x [B, *shape]) -> [B] on model-space inputs (points flattened for the MLP)."""
        if self.spec.kind == "image":
            return lambda x: self.net.apply({"params": params}, x)
        return lambda x: self.net.apply({"params": params}, x.reshape(x.shape[0], -1))

    def _init_fn(self, key, shape):
        return uniform_init(key, shape, -self._range, self._range)

    def _chain(self, params, key, x_init, steps):
        """``steps`` Langevin steps on the energy with ``params`` held fixed (no gradient to theta)."""
        c = self.config
        return langevin_sample(self.energy_fn(jax.lax.stop_gradient(params)), key, x_init, num_steps=steps,
                               step_size=c.step_size,
                               noise_scale=None if c.noise_scale < 0 else c.noise_scale,
                               grad_clip=c.grad_clip or None,
                               clip_range=(-1.0, 1.0) if self.spec.kind == "image" else None)

    def _to_model_space(self, x, key):
        return data_to_model_space(self.spec, x, key)[0]

    def _from_model_space(self, y):
        return model_to_data_space(self.spec, y)

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        """Energy-net params and a replay buffer of uniform noise: {"params": ..., "state": {"buffer": ...}}."""
        k_data, k_net, k_buf = jax.random.split(key, 3)
        x = self._to_model_space(example_batch[self.spec.data_key][:1], k_data)
        flat = x if self.spec.kind == "image" else x.reshape(1, -1)
        params = jax.jit(self.net.init)(rbg_key(k_net), flat)["params"]
        buffer = replay_buffer_init(k_buf, self.config.buffer_capacity, tuple(self.spec.shape), self._init_fn)
        return {"params": params, "state": {"buffer": buffer}}

    def loss(self, variables, batch, key):
        """Mean contrastive-divergence loss over the batch (not a likelihood); metrics e_pos, e_neg, cd_gap
        (mean energies of data and negatives and their difference). Returns the updated buffer as state."""
        c = self.config
        params, buffer = variables["params"], variables["state"]["buffer"]
        k_data, k_buf, k_chain = jax.random.split(key, 3)
        x_pos = self._to_model_space(batch[self.spec.data_key], k_data)
        x_init, indices = replay_buffer_sample(buffer, k_buf, x_pos.shape[0], c.reinit_prob, self._init_fn)
        x_neg = jax.lax.stop_gradient(self._chain(params, k_chain, x_init, c.langevin_steps))
        per_example, aux = contrastive_divergence_loss(self.energy_fn(params), x_pos, x_neg, alpha=c.alpha,
                                                       return_aux=True)
        e_pos, e_neg = aux["e_pos"].mean(), aux["e_neg"].mean()
        metrics = {"e_pos": e_pos, "e_neg": e_neg, "cd_gap": e_pos - e_neg}
        new_state = {**variables["state"], "buffer": replay_buffer_update(buffer, indices, x_neg)}
        return jnp.mean(per_example), metrics, new_state

    def log_prob(self, variables, x, key, *, labels=None):
        raise GMJaxError("ebm defines only an unnormalised density exp(-E(x)) (has_log_prob is False); "
                         "evaluate it with sample-based metrics instead")

    def sample(self, variables, key, num, *, labels=None, sampler: str | None = None, steps: int | None = None,
               from_buffer: bool = False):
        """``num`` samples in data space ([num, *shape]: integer images or float32 points).

        Langevin chains (sampler ``"langevin"``, the only one) of ``steps`` steps (default
        ``config.sample_steps``) from fresh uniform noise, or, with ``from_buffer``, continuing chains drawn
        from the replay buffer (as Du & Mordatch sample). ``labels`` is accepted and ignored.
        """
        if sampler not in (None, "langevin"):
            raise GMJaxError(f"unknown sampler '{sampler}' for ebm; use langevin")
        k_init, k_chain = jax.random.split(key)
        shape = (num,) + tuple(self.spec.shape)
        if from_buffer:
            x_init, _ = replay_buffer_sample(variables["state"]["buffer"], k_init, num, 0.0, self._init_fn)
        else:
            x_init = self._init_fn(k_init, shape)
        y = self._chain(variables["params"], k_chain, x_init, steps or self.config.sample_steps)
        return self._from_model_space(y)
