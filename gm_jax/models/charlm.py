"""Character-level autoregressive language model: a causal Transformer (Vaswani et al. 2017) in the
GPT arrangement (Radford et al. 2019) over windows of character tokens, e.g. Tiny Shakespeare.

A window x = (x_1..x_T) has the exact probability p(x) = prod_t p(x_t | x_<t): the network reads
(BOS, x_1..x_{T-1}), where BOS is an extra input token that is never predicted, and its output at
position t is the categorical distribution of x_t over the V characters. So ``log_prob`` is the exact
log-probability of the window in nats, and bits/dim is bits per character. Sampling is ancestral, one
token at a time, with the network's key/value cache inside ``lax.scan``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax import distributions as D
from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.losses.likelihood import bits_per_dim
from gm_jax.models.base import Config, check_positive, hparam
from gm_jax.nets.transformer import CausalTransformer

__all__ = ["CharLMConfig", "CharLM", "top_k_logits"]


@dataclasses.dataclass(frozen=True)
class CharLMConfig(Config):
    """Transformer hyper-parameters. The context is the dataset's window (``spec.shape[0]`` tokens)."""

    num_layers: int = hparam(2, "Transformer blocks")
    num_heads: int = hparam(4, "attention heads per block")
    embed_dim: int = hparam(64, "token embedding and residual width")
    mlp_ratio: int = hparam(4, "MLP hidden width as a multiple of embed_dim")
    compute_dtype: Literal["float32", "bfloat16"] = hparam(
        "float32", "network compute precision (parameters stay float32)")

    def validate(self):
        check_positive(self, "num_layers", "num_heads", "embed_dim", "mlp_ratio")
        if self.embed_dim % self.num_heads:
            raise GMJaxError(f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")


def top_k_logits(logits, k: int):
    """logits [..., V] with all but the k largest of each row set to -inf (k = 0: unchanged; ties kept)."""
    if not k:
        return logits
    kth = jax.lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth, -jnp.inf, logits)


class CharLM:
    """An autoregressive Transformer over token windows. Batches are {"text": int [B, T]};
    ``variables = {"params": ..., "state": {}}``."""

    has_log_prob = True
    # The main job on shakespeare: 400 x 16 windows (1.6M characters), ~3.0 test bits/char in 2-3 minutes on
    # 2 CPU cores. In short runs a large lr with small batches left the bigram plateau (~3.5 bits) soonest.
    default_train = {"steps": 400, "batch_size": 16, "lr": 2e-2, "schedule": "cosine", "warmup_steps": 40,
                     "grad_clip": 1.0, "log_every": 50, "checkpoint_every": 400, "num_samples": 8}

    def __init__(self, config: CharLMConfig, spec: DataSpec):
        if spec.kind != "text" or spec.num_levels is None or len(spec.shape) != 1:
            raise GMJaxError(f"charlm models token windows, and dataset {spec.name} holds {spec.kind} data; "
                             "use --dataset shakespeare")
        self.config, self.spec = config, spec
        self.seq_len, self.vocab_size = spec.shape[0], spec.num_levels
        self.bos = self.vocab_size  # the extra input token that starts every window
        self.dtype = jnp.bfloat16 if config.compute_dtype == "bfloat16" else jnp.float32
        self.net = CausalTransformer(num_tokens=self.vocab_size + 1, vocab_size=self.vocab_size,
                                     max_len=self.seq_len, num_layers=config.num_layers,
                                     num_heads=config.num_heads, embed_dim=config.embed_dim,
                                     mlp_ratio=config.mlp_ratio, dtype=self.dtype)

    def _inputs(self, x):
        """Targets x [B, T] -> network inputs (BOS, x_1..x_{T-1}) [B, T]."""
        x = jnp.asarray(x, jnp.int32)
        return jnp.concatenate([jnp.full((x.shape[0], 1), self.bos, jnp.int32), x[:, :-1]], axis=1)

    def _check_text(self, x):
        if x.ndim != 2 or x.shape[1] != self.seq_len:
            raise GMJaxError(f"charlm expects token windows [B, {self.seq_len}], got shape {tuple(x.shape)}")

    def logits(self, variables, x):
        """Logits [B, T, V] of p(x_t | x_<t) for every position t of windows x [B, T]."""
        self._check_text(x)
        return self.net.apply({"params": variables["params"]}, self._inputs(x))

    # ----------------------------------------------------------------------------------- the interface
    def init(self, key, example_batch):
        x = jnp.asarray(example_batch[self.spec.data_key][:1])
        self._check_text(x)
        # jit: an eager Flax init dispatches (and compiles) every op of the network one by one.
        return {"params": jax.jit(self.net.init)(key, self._inputs(x))["params"], "state": {}}

    def log_prob(self, variables, x, key=None, *, labels=None):
        """Exact log p(x) [B] in nats of windows x [B, T] (key unused: the likelihood is deterministic)."""
        del key
        if labels is not None:
            raise GMJaxError("charlm is unconditional: it takes no labels")
        return D.categorical_log_prob(x, self.logits(variables, x))

    def loss(self, variables, batch, key):
        """Mean NLL per character (nats); metrics: nll_nats per window and bits_per_dim (bits/char)."""
        nll = -self.log_prob(variables, batch[self.spec.data_key], key).mean()
        metrics = {"nll_nats": nll, "bits_per_dim": bits_per_dim(nll, self.seq_len)}
        return nll / self.seq_len, metrics, variables["state"]

    def encode(self, text: str) -> np.ndarray:
        """A string -> tokens int32 [len]; characters outside the vocabulary raise GMJaxError."""
        from gm_jax.data.text import encode

        return encode(text, self._vocabulary())

    def decode(self, tokens) -> str:
        """Tokens [T] -> the string they spell."""
        from gm_jax.data.text import decode

        return decode(tokens, self._vocabulary())

    def _vocabulary(self) -> str:
        if self.spec.vocabulary is None:
            raise GMJaxError(f"dataset {self.spec.name} has no vocabulary to encode or decode text with")
        return self.spec.vocabulary

    def sample(self, variables, key, num, *, labels=None, temperature: float = 1.0, top_k: int = 0,
               prompt: str = ""):
        """Ancestral sampling of ``num`` windows [num, T] int32, token by token with the key/value cache.

        Token t is drawn with key ``jax.random.split(key, T)[t]`` from softmax(logits / temperature)
        restricted to the ``top_k`` most likely tokens (0: all; temperature 0: the most likely token).
        A ``prompt`` string fixes the first len(prompt) tokens (the model still reads them in order).
        """
        if labels is not None:
            raise GMJaxError("charlm is unconditional: it takes no labels")
        if isinstance(temperature, (int, float)) and temperature < 0:
            raise GMJaxError(f"temperature must be >= 0, got {temperature}")
        if not 0 <= top_k <= self.vocab_size:
            raise GMJaxError(f"top_k must be in [0, {self.vocab_size}], got {top_k}")
        forced = self.encode(prompt) if prompt else np.zeros(0, np.int32)
        if len(forced) > self.seq_len:
            raise GMJaxError(f"the prompt has {len(forced)} characters; at most {self.seq_len} fit a window")
        forced = jnp.asarray(np.concatenate([forced, np.full(self.seq_len - len(forced), -1, np.int32)]))
        params = {"params": variables["params"]}

        def step(carry, inputs):
            token, cache = carry  # token [num]: the input at position t (BOS at t = 0)
            t, k, forced_t = inputs
            logits, cache = self.net.apply(params, token[:, None], t, cache, method=self.net.decode)
            new = D.categorical_sample(k, top_k_logits(logits[:, 0], top_k), temperature)
            new = jnp.where(forced_t >= 0, forced_t, new)
            return (new, cache), new

        init = (jnp.full((num,), self.bos, jnp.int32), self.net.init_cache(num, self.dtype))
        xs = (jnp.arange(self.seq_len), jax.random.split(key, self.seq_len), forced)
        _, tokens = jax.lax.scan(step, init, xs)
        return tokens.T
