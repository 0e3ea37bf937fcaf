"""A small causal Transformer decoder (GPT-style) with a key/value cache for token-by-token decoding.

Architecture: the Transformer decoder of Vaswani et al. 2017 ("Attention is all you need") in the
pre-LayerNorm arrangement of GPT-2 (Radford et al. 2019): token + learned position embeddings (initialised
to Vaswani et al.'s sinusoids), then ``num_layers`` blocks ``x += Attn(LN(x)); x += MLP(LN(x))``, a final
LayerNorm and a linear head.

Two entry points share the parameters:

- ``__call__(tokens [B, T]) -> logits [B, T, V]``: the full causal forward (position t sees tokens <= t).
- ``decode(tokens [B, S], position, cache) -> (logits [B, S, V], cache)``: S new tokens at positions
  ``position .. position + S - 1`` attend to themselves and to the cached keys/values of the earlier
  positions; the cache has a fixed shape (see :meth:`CausalTransformer.init_cache`) and is updated with
  ``lax.dynamic_update_slice``, so sampling T tokens costs O(T) block evaluations, each O(T_max).

The blocks are one ``nn.scan`` over parameters stacked on a leading layer axis, so compile time does not
grow with depth.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.nets.mlp import MLP

__all__ = ["CausalTransformer", "CausalSelfAttention", "DecoderBlock", "sinusoidal_init"]

# Unit-variance token embeddings, the same scale as the sinusoidal position embeddings they are added to.
_TOKEN_INIT = nn.initializers.normal(stddev=1.0)


def sinusoidal_init(key, shape, dtype=jnp.float32):
    """The sinusoids of Vaswani et al. 2017 (section 3.5) as a [T, D] initial value (``key`` unused):
    entry (t, 2i) = sin(t / 10000^(2i/D)), (t, 2i+1) = cos(same angle).

    The learned position embeddings start here: relative offsets are then linear maps of the embeddings
    from the first step (in short runs on Tiny Shakespeare this trained slightly faster than GPT-2's
    N(0, 0.02^2) start).
    """
    del key
    t, d = shape
    angle = np.arange(t)[:, None] / 10000.0 ** (2 * np.arange((d + 1) // 2)[None, :] / d)
    table = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(t, -1)[:, :d]
    return jnp.asarray(table, dtype)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention on x [B, S, D] -> [B, S, D].

    Without a cache, query s attends to keys 0..s of x. With ``cache = {"k", "v"}`` of shape
    [B, T_max, H, D/H], the keys/values of x are written at ``position`` and query s (absolute position
    ``position + s``) attends to cache slots 0..position + s.
    """

    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, cache=None, position=0):
        b, s, d = x.shape
        head_dim = d // self.num_heads
        qkv = nn.DenseGeneral((3, self.num_heads, head_dim), dtype=self.dtype, param_dtype=jnp.float32,
                              name="qkv")(x)  # [B, S, 3, H, Dh]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        query_pos = position + jnp.arange(s)
        if cache is None:
            key_pos = jnp.arange(s)
        else:
            start = (0, position, 0, 0)
            k = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype), start)
            v = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype), start)
            cache = {"k": k, "v": v}
            key_pos = jnp.arange(k.shape[1])
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k.astype(q.dtype)).astype(jnp.float32) / np.sqrt(head_dim)
        # Masked scores get weight exactly 0 (and gradient exactly 0): causality holds bit for bit.
        visible = key_pos[None, :] <= query_pos[:, None]  # [S, K]
        scores = jnp.where(visible, scores, -jnp.inf)
        weights = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v.astype(self.dtype))
        out = nn.DenseGeneral(d, axis=(-2, -1), dtype=self.dtype, param_dtype=jnp.float32, name="out")(out)
        return out, cache


class DecoderBlock(nn.Module):
    """Pre-LN block: x + Attn(LN(x)), then + MLP(LN(x)). Scanned over layers: (x, cache) -> (x, cache)."""

    num_heads: int
    mlp_ratio: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, cache, position):
        d = x.shape[-1]
        h, cache = CausalSelfAttention(self.num_heads, self.dtype, name="attn")(
            nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="ln_attn")(x), cache, position)
        x = x + h
        h = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="ln_mlp")(x)
        x = x + MLP((self.mlp_ratio * d, d), activation=nn.gelu, dtype=self.dtype, name="mlp")(h)
        return x, cache


class CausalTransformer(nn.Module):
    """GPT-style decoder over tokens in [0, num_tokens) predicting ``vocab_size`` classes.

    ``num_tokens`` may exceed ``vocab_size`` (e.g. a begin-of-sequence token that is never predicted).
    Inputs are at most ``max_len`` long. ``dtype`` is the compute dtype (parameters and logits stay
    float32; softmaxes run in float32).
    """

    num_tokens: int
    vocab_size: int
    max_len: int
    num_layers: int = 2
    num_heads: int = 4
    embed_dim: int = 128
    mlp_ratio: int = 4
    dtype: Any = jnp.float32

    def setup(self):
        self.token_embed = nn.Embed(self.num_tokens, self.embed_dim, embedding_init=_TOKEN_INIT,
                                    param_dtype=jnp.float32)
        self.pos_embed = self.param("pos_embed", sinusoidal_init, (self.max_len, self.embed_dim), jnp.float32)
        self.blocks = nn.scan(DecoderBlock, variable_axes={"params": 0}, split_rngs={"params": True},
                              in_axes=(0, nn.broadcast), length=self.num_layers)(
            self.num_heads, self.mlp_ratio, self.dtype)
        self.ln_final = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32)
        self.head = nn.Dense(self.vocab_size, dtype=self.dtype, param_dtype=jnp.float32)

    def _trunk(self, h, position, cache):
        """Token embeddings h [B, S, D] at positions position.. -> (logits [B, S, V] float32, cache)."""
        pos = jax.lax.dynamic_slice_in_dim(self.pos_embed, position, h.shape[1], axis=0)
        x = (h + pos).astype(self.dtype)
        x, cache = self.blocks(x, cache, position)
        return self.head(self.ln_final(x)).astype(jnp.float32), cache

    def embed(self, tokens):
        """Tokens [B, T] -> token embeddings [B, T, D] (before the position embeddings)."""
        return self.token_embed(tokens)

    def __call__(self, tokens):
        """Full causal forward: tokens [B, T] (T <= max_len) -> logits [B, T, vocab_size]."""
        return self.from_embeddings(self.embed(tokens))

    def from_embeddings(self, h):
        """The causal forward from token embeddings h [B, T, D] (positions 0..T-1) -> logits [B, T, V]."""
        return self._trunk(h, 0, None)[0]

    def decode(self, tokens, position, cache):
        """Cached decoding: tokens [B, S] at positions ``position``.. -> (logits [B, S, V], new cache)."""
        return self._trunk(self.embed(tokens), position, cache)

    @nn.nowrap
    def init_cache(self, batch_size: int, dtype=jnp.float32) -> dict:
        """An empty key/value cache: {"k", "v"} each [num_layers, B, max_len, num_heads, head_dim]."""
        shape = (self.num_layers, batch_size, self.max_len, self.num_heads, self.embed_dim // self.num_heads)
        return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
