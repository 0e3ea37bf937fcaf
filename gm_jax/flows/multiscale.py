"""Squeeze and the multi-scale architecture with factor-out (RealNVP, Dinh et al. 2017, section 3.6; Glow)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.flows.base import zero_log_det


@dataclasses.dataclass(frozen=True)
class Squeeze:
    """Space-to-depth: [B, H, W, C] -> [B, H/2, W/2, 4C]; channel (2 dy + dx) * C + c holds pixel
    (2i + dy, 2j + dx, c). A permutation, so log_det = 0. No params."""

    def init(self, key, x):
        return {}

    def forward(self, params, x):
        b, h, w, c = x.shape
        if h % 2 or w % 2:
            raise GMJaxError(f"squeeze needs even height and width, got {h}x{w}")
        z = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
        return z.reshape(b, h // 2, w // 2, 4 * c), zero_log_det(x)

    def inverse(self, params, z):
        b, h, w, c4 = z.shape
        c = c4 // 4
        x = z.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
        return x.reshape(b, 2 * h, 2 * w, c), zero_log_det(z)


@dataclasses.dataclass(frozen=True)
class MultiScale:
    """Images [B, H, W, C] -> a flat latent [B, H * W * C].

    Level l applies ``levels[l]`` (a shape-changing bijector, typically containing a :class:`Squeeze`),
    then, except at the last level, factors out the first half of the channels straight to the latent
    and passes the rest on; the last level's whole output joins the latent. The latent is the
    concatenation of the flattened factored-out parts in level order. ``event_shape`` = (H, W, C) fixes
    the shapes the inverse unflattens. Params: {"level_i": params_i}.
    """

    levels: tuple
    event_shape: tuple[int, int, int]

    def init(self, key, x):
        params = {}
        for i, (level, k) in enumerate(zip(self.levels, jax.random.split(key, len(self.levels)))):
            params[f"level_{i}"] = level.init(k, x)
            x, _ = level.forward(params[f"level_{i}"], x)
            x = x[..., x.shape[-1] // 2:]
        return params

    def forward(self, params, x):
        latents, log_det = [], zero_log_det(x)
        last = len(self.levels) - 1
        for i, level in enumerate(self.levels):
            x, ld = level.forward(params[f"level_{i}"], x)
            log_det = log_det + ld
            factored = x.shape[-1] if i == last else x.shape[-1] // 2
            latents.append(x[..., :factored].reshape(x.shape[0], -1))
            x = x[..., factored:]
        return jnp.concatenate(latents, axis=-1), log_det

    def _shapes(self, params, batch):
        """Per level: (its output shape, the number of latent entries it factors out)."""
        shape, out = (batch,) + tuple(self.event_shape), []
        for i, level in enumerate(self.levels):
            y = jax.eval_shape(level.forward, params[f"level_{i}"], jax.ShapeDtypeStruct(shape, jnp.float32))[0]
            factored = y.shape[-1] // 2 if i < len(self.levels) - 1 else y.shape[-1]
            out.append((y.shape, factored))
            shape = y.shape[:-1] + (y.shape[-1] - factored,)
        return out

    def inverse(self, params, z):
        b = z.shape[0]
        shapes = self._shapes(params, b)
        pieces, offset = [], 0
        for shape, factored in shapes:
            n = shape[1] * shape[2] * factored
            pieces.append(z[:, offset:offset + n].reshape(shape[:-1] + (factored,)))
            offset += n
        log_det = zero_log_det(z)
        x = None
        for i in reversed(range(len(self.levels))):
            h = pieces[i] if x is None else jnp.concatenate([pieces[i], x], axis=-1)
            x, ld = self.levels[i].inverse(params[f"level_{i}"], h)
            log_det = log_det + ld
        return x, log_det
