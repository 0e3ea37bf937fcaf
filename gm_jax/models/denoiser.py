"""The network shared by the diffusion and score models (ddpm, score_sde, ncsn): a DDPM U-Net on images, a
time-conditioned MLP on points, with one way to build, initialise and call it.

A config provides ``hidden`` and ``embed_dim`` (points) and ``channels``, ``channel_mult``,
``num_res_blocks``, ``attention_resolutions``, ``dropout`` (images).
"""

from __future__ import annotations

import dataclasses
import functools

import jax

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.models.base import Config, check_hidden, check_positive, hparam, rbg_key
from gm_jax.nets.time_mlp import TimeMLP
from gm_jax.nets.unet import UNet

__all__ = ["Denoiser", "DenoiserNetConfig"]


@dataclasses.dataclass(frozen=True)
class DenoiserNetConfig(Config):
    """The network fields shared by the ddpm, score_sde and ncsn configs (which extend this class): a
    TimeMLP of widths ``hidden`` with an ``embed_dim`` time embedding on points; a DDPM U-Net with
    ``channels``, ``channel_mult``, ``num_res_blocks``, ``attention_resolutions`` and ``dropout`` on images."""

    hidden: tuple[int, ...] = hparam((128, 128, 128), "TimeMLP widths (points)")
    embed_dim: int = hparam(64, "time embedding size of the TimeMLP (points)")
    channels: int = hparam(32, "U-Net base channels (images)")
    channel_mult: tuple[int, ...] = hparam((1, 2), "U-Net channel multiplier per resolution (images)")
    num_res_blocks: int = hparam(1, "U-Net residual blocks per resolution (images)")
    attention_resolutions: tuple[int, ...] = hparam((4,), "resolutions with self-attention in the U-Net (images)")
    dropout: float = hparam(0.1, "U-Net dropout rate (images)")

    def validate_network(self):
        check_positive(self, "embed_dim", "channels", "num_res_blocks")
        check_hidden(self)
        check_hidden(self, "channel_mult")
        if not 0.0 <= self.dropout < 1.0:
            raise GMJaxError(f"dropout must be in [0, 1), got {self.dropout}")

    def validate(self):
        self.validate_network()


class Denoiser:
    """``apply(params, x [B, *shape], t [B], labels=None [B], train, key) -> [B, *shape[:-1], out]`` for
    images (``out`` = ``out_channels`` or C) or ``[B, out]`` for points (``out`` = ``out_channels`` or D).

    ``t`` is whatever the model embeds (a step index, a time in [0, 1] or log sigma), scaled by
    ``time_scale``. ``num_classes``: None, or the class count of a class-conditional net (the null label
    is ``num_classes``). ``key`` drives dropout when ``train`` is set.
    """

    def __init__(self, config, spec: DataSpec, out_channels: int | None = None, num_classes: int | None = None,
                 time_scale: float = 1.0):
        self.spec, self.dropout = spec, getattr(config, "dropout", 0.0)
        if spec.kind == "image":
            levels = len(config.channel_mult) - 1
            if spec.shape[0] % 2**levels or spec.shape[1] % 2**levels:
                raise GMJaxError(f"channel_mult {tuple(config.channel_mult)} halves {spec.shape[0]}x{spec.shape[1]} "
                                 f"images {levels} times, which does not divide them; use fewer levels")
            self.net = UNet(channels=config.channels, channel_mult=tuple(config.channel_mult),
                            num_res_blocks=config.num_res_blocks,
                            attention_resolutions=tuple(config.attention_resolutions), dropout=self.dropout,
                            num_classes=num_classes, out_channels=out_channels, time_scale=time_scale)
        else:
            self.net = TimeMLP(hidden=tuple(config.hidden), out_dim=out_channels, num_classes=num_classes,
                               embed_dim=config.embed_dim, time_scale=time_scale)

    def apply(self, params, x, t, labels=None, train: bool = False, key=None):
        if self.spec.kind == "image":
            drop = train and self.dropout > 0
            rngs = {"dropout": rbg_key(key)} if drop else None
            return self.net.apply({"params": params}, x, t, labels, drop, rngs=rngs)
        return self.net.apply({"params": params}, x.reshape(x.shape[0], -1), t, labels)

    def init(self, key, x, t, labels=None):
        """Parameters from one example batch ``x`` (model space) and times ``t``."""
        return self._jitted_init(key, x, t, labels)

    @functools.cached_property
    def _jitted_init(self):
        # Jitted (eager Flax init dispatches, and compiles, op by op) with an RBG key.
        def init(key, x, t, labels):
            if self.spec.kind == "image":
                return self.net.init(rbg_key(key), x, t, labels, False)["params"]
            return self.net.init(rbg_key(key), x.reshape(x.shape[0], -1), t, labels)["params"]
        return jax.jit(init)
