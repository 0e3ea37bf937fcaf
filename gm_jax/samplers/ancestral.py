"""Ancestral sampling of autoregressive models: fill the positions one at a time in a given order.

An autoregressive model p(x) = prod_t p(x_{o_t} | x_{o_<t}) (Larochelle & Murray 2011; MADE, Germain et
al. 2015; PixelCNN, van den Oord et al. 2016) is sampled exactly by drawing position o_1, writing it into
the canvas, recomputing the conditionals, drawing o_2, and so on. The network is a callable argument, so
any network (MADE, PixelCNN, a hand-written table) drives the same loop.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from gm_jax.distributions import categorical_sample


def ancestral_sample(conditional_fn: Callable[[jax.Array], Any], key, canvas, order=None, *,
                     draw_fn: Callable = categorical_sample, temperature=1.0):
    """Draws every position of ``canvas`` in ``order`` from the model's conditionals (one lax.fori_loop).

    Args:
      conditional_fn: canvas [B, N, *E] -> the conditional parameters of every position given the canvas:
        a pytree whose leaves are [B, N, ...] (e.g. logits [B, N, K]). Only the entries of positions
        earlier in ``order`` may matter for position i's parameters (the autoregressive property);
        entries not yet drawn hold the initial canvas values.
      key: PRNG key; step t uses ``fold_in(key, t)``.
      canvas: the initial state [B, N, *E] (e.g. zeros): N positions, each holding a value of shape E
        (E = () for a scalar per position, (C,) for a pixel's channels). Its dtype is kept.
      order: int [T] positions to fill, in order (default 0..N-1). Positions not listed keep their
        initial values (so a partly given canvas can be completed).
      draw_fn: (key, params of one position with leaves [B, ...], temperature) -> values [B, *E].
        The default draws categorical values from logits [B, K] (temperature 0: argmax).
      temperature: passed to ``draw_fn``; may be a traced scalar.

    Returns:
      The filled canvas [B, N, *E].
    """
    canvas = jnp.asarray(canvas)
    order = jnp.arange(canvas.shape[1]) if order is None else jnp.asarray(order, jnp.int32)

    def step(t, canvas):
        i = order[t]
        params = jax.tree_util.tree_map(lambda p: jnp.take(p, i, axis=1), conditional_fn(canvas))
        value = draw_fn(jax.random.fold_in(key, t), params, temperature)
        return canvas.at[:, i].set(jnp.asarray(value).astype(canvas.dtype))

    return jax.lax.fori_loop(0, order.shape[0], step, canvas)
