"""A time- (and optionally class-) conditioned MLP for low-dimensional data (e.g. the 2-D ``toy2d`` sets).

The ε / score network of DDPM (Ho et al. 2020), NCSN (Song & Ermon 2019) and score-SDE (Song et al. 2021)
experiments on toy data: the sinusoidal time embedding of the DDPM U-Net
(:func:`gm_jax.nets.unet.timestep_embedding`) goes through a small MLP and is added, via its own dense
projection, to the pre-activation of every hidden layer, so every layer can depend on t.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.errors import GMJaxError
from gm_jax.nets.unet import _GLOROT, timestep_embedding

__all__ = ["TimeMLP"]


class TimeMLP(nn.Module):
    """x [B, D], t [B] (int or float), labels [B] int -> [B, out_dim] float32.

    emb = swish(Dense(timestep_embedding(time_scale * t, embed_dim))) (+ a learned class embedding with
    ``num_classes + 1`` rows, the last one the null label of classifier-free guidance); then for each width
    w in ``hidden``: h = swish(Dense_w(h) + Dense_w(emb)); out = Dense(out_dim)(h) with a zero-initialised
    kernel and bias (so the network starts at 0, e.g. a zero ε / score guess). Other kernels are
    Glorot-uniform, biases zero.

    Attributes:
      hidden: hidden widths.
      out_dim: output size (default: D, the input's).
      num_classes: None, or the class count (labels in [0, num_classes]; num_classes is the null label).
      embed_dim: size of the time (and class) embedding.
      time_scale: t is multiplied by this before embedding (e.g. 999 for t in [0, 1]: the embedding's
        highest frequency is 1 rad per unit of t, so unscaled t in [0, 1] would be embedded almost linearly).
      dtype: compute dtype; parameters stay float32 and the output is float32.
    """

    hidden: Sequence[int] = (256, 256, 256)
    out_dim: Optional[int] = None
    num_classes: Optional[int] = None
    embed_dim: int = 64
    time_scale: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, t, labels=None):
        if x.ndim != 2:
            raise GMJaxError(f"TimeMLP expects x [B, D], got shape {x.shape}; flatten the event axes first")
        if jnp.shape(t) != (x.shape[0],):
            raise GMJaxError(f"t must have shape [B] = ({x.shape[0]},), got {jnp.shape(t)}")
        if any(w < 1 for w in self.hidden) or self.embed_dim < 1:
            raise GMJaxError(f"hidden widths and embed_dim must be >= 1, got {tuple(self.hidden)}, {self.embed_dim}")
        if (labels is None) != (self.num_classes is None):
            raise GMJaxError("pass labels [B] iff num_classes is set (got "
                             f"num_classes={self.num_classes}, labels={'None' if labels is None else 'given'})")
        dt = self.dtype
        dense = lambda f, name, init=_GLOROT: nn.Dense(f, dtype=dt, param_dtype=jnp.float32, name=name,
                                                       kernel_init=init)
        emb = timestep_embedding(jnp.asarray(t, jnp.float32) * self.time_scale, self.embed_dim)
        emb = nn.swish(dense(self.embed_dim, "time_dense")(emb.astype(dt)))
        if self.num_classes is not None:
            emb = emb + nn.Embed(self.num_classes + 1, self.embed_dim, dtype=dt, param_dtype=jnp.float32,
                                 embedding_init=nn.initializers.normal(1.0), name="label_emb")(labels)
        h = x.astype(dt)
        for i, w in enumerate(self.hidden):
            h = nn.swish(dense(w, f"hidden_{i}")(h) + dense(w, f"time_{i}")(emb))
        out = dense(self.out_dim or x.shape[-1], "out", nn.initializers.zeros_init())(h)
        return out.astype(jnp.float32)
