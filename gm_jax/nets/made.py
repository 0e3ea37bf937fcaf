"""MADE: masked autoencoder for distribution estimation (Germain et al. 2015, "MADE: Masked Autoencoder
for Distribution Estimation").

A dense network whose weight matrices are multiplied by fixed binary masks, so that output row i depends
only on the inputs that come *before* i in a chosen ordering: one pass yields every conditional of an
autoregressive model. Order-agnostic training (Germain et al. section 4) keeps a fixed set of orderings
(each with its own hidden-unit degrees) and picks one per call; all masks are precomputed numpy
constants derived from ``order_seed``.

Orderings are given as *positions*: ``orderings[k, j]`` is the step at which input j is generated under
ordering k (ordering 0 is ``0..D-1`` when ``natural_first``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

__all__ = ["MADE", "made_orderings"]


def made_orderings(num_inputs: int, num_orderings: int = 1, seed: int = 0, natural_first: bool = True) -> np.ndarray:
    """Positions int32 [num_orderings, D]: ``out[k, j]`` is the generation step of input j under ordering k.

    Ordering 0 is the natural order when ``natural_first``; the others are random permutations drawn from
    ``numpy.random.default_rng((seed, 0))``.
    """
    return _made_structure(num_inputs, (), num_orderings, seed, natural_first)[0]


@functools.lru_cache(maxsize=64)
def _made_structure(num_inputs, hidden, num_orderings, seed, natural_first):
    """(positions [K, D], masks: tuple of [K, fan_in, fan_out] float32 arrays, one per layer incl. output).

    Degrees (0-based): input j has degree pos(j); hidden units get degrees in [0, D-2]; a unit of degree m
    sees an input iff pos(j) <= m, a hidden unit of degree m' sees one of degree m iff m <= m', and output
    i sees a hidden unit of degree m iff m < pos(i). So every path from input j to output i has
    pos(j) < pos(i).
    """
    d = num_inputs
    # Separate streams, so the orderings do not depend on the hidden widths.
    order_rng, degree_rng = np.random.default_rng((seed, 0)), np.random.default_rng((seed, 1))
    positions = np.empty((num_orderings, d), np.int32)
    layer_masks = [[] for _ in range(len(hidden) + 1)]
    for k in range(num_orderings):
        positions[k] = np.arange(d) if (k == 0 and natural_first) else order_rng.permutation(d)
        degrees = positions[k]
        for layer, width in enumerate(hidden):
            # Cycle over all admissible degrees so each conditional gets units (Germain et al. sample them;
            # a shuffled cycle keeps the variety across orderings without starving any degree).
            cycle = np.arange(width) % max(d - 1, 1)
            new = cycle if (k == 0 and natural_first) else degree_rng.permutation(cycle)
            layer_masks[layer].append(degrees[:, None] <= new[None, :])
            degrees = new
        layer_masks[-1].append(degrees[:, None] < positions[k][None, :])
    masks = tuple(np.stack(m).astype(np.float32) for m in layer_masks)
    positions.flags.writeable = False
    for m in masks:
        m.flags.writeable = False
    return positions, masks


class MADE(nn.Module):
    """Masked autoregressive network: x [B, D] (+ context [B, C]) -> [B, D, num_params].

    Output ``[:, i, :]`` depends only on inputs j with ``pos(j) < pos(i)`` under the selected ordering
    (see :func:`made_orderings`), and on the context, which feeds every hidden layer and the output unmasked.

    Attributes:
      num_params: outputs per input dimension (e.g. 2 for shift and log-scale).
      hidden: widths of the hidden layers (``()`` gives a masked linear map).
      num_orderings: size of the fixed set of orderings for order-agnostic training.
      order_seed: seed of the orderings and hidden degrees.
      natural_first: ordering 0 is 0..D-1.
      zero_init_output: zero the output layer (so a flow layer built on it starts as the identity).
      activation: nonlinearity between layers.
      dtype: compute dtype; parameters stay float32.
    """

    num_params: int
    hidden: tuple[int, ...] = (64, 64)
    num_orderings: int = 1
    order_seed: int = 0
    natural_first: bool = True
    zero_init_output: bool = False
    activation: Callable = nn.relu
    dtype: Any = jnp.float32

    def positions(self, num_inputs: int) -> np.ndarray:
        """Positions [num_orderings, D] of this network's orderings (see :func:`made_orderings`)."""
        return _made_structure(num_inputs, tuple(self.hidden), self.num_orderings, self.order_seed,
                               self.natural_first)[0]

    @nn.compact
    def __call__(self, x, context=None, ordering=0):
        """x [B, D], context [B, C] or None, ordering: int (may be traced) in [0, num_orderings)."""
        d = x.shape[-1]
        _, masks = _made_structure(d, tuple(self.hidden), self.num_orderings, self.order_seed, self.natural_first)
        h = x.astype(self.dtype)
        for layer, width in enumerate(self.hidden):
            h = _MaskedDense(width, name=f"masked_{layer}", dtype=self.dtype)(h, jnp.asarray(masks[layer])[ordering])
            if context is not None:
                h = h + nn.Dense(width, use_bias=False, dtype=self.dtype, param_dtype=jnp.float32,
                                 name=f"context_{layer}")(context.astype(self.dtype))
            h = self.activation(h)
        # Output columns are laid out (i, p) -> i * num_params + p: each input's mask column repeats P times.
        out_mask = jnp.repeat(jnp.asarray(masks[-1])[ordering], self.num_params, axis=-1)
        init = nn.initializers.zeros if self.zero_init_output else nn.initializers.lecun_normal()
        out = _MaskedDense(d * self.num_params, name="masked_out", dtype=self.dtype, kernel_init=init)(h, out_mask)
        if context is not None:  # direct path too: with D = 1 no hidden unit may reach the output
            out = out + nn.Dense(d * self.num_params, use_bias=False, dtype=self.dtype, param_dtype=jnp.float32,
                                 kernel_init=init, name="context_out")(context.astype(self.dtype))
        return out.reshape(x.shape[:-1] + (d, self.num_params))


class _MaskedDense(nn.Module):
    """Dense layer y = x (W * mask) + b; the mask [fan_in, fan_out] is a call argument (may be selected by a traced index)."""

    features: int
    dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x, mask):
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        w = (kernel * mask).astype(self.dtype)
        return x @ w + bias.astype(self.dtype)
