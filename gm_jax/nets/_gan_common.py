"""Shared pieces of the adversarial image nets (:mod:`~gm_jax.nets.dcgan`, :mod:`~gm_jax.nets.resnet_gan`,
:mod:`~gm_jax.nets.stylegan`, :mod:`~gm_jax.nets.projection`): input checks, the stage count, conditional
BatchNorm, optional spectral normalisation, and the contract they all follow.

Common contract.
  generators:     ``__call__(z [B, Z], labels=None [B] int, train=False) -> images [B, H, W, C] float32``
                  in [-1, 1] (tanh output); ``out_shape = (H, W, C)`` is a module attribute, Z is z's last
                  axis.
  discriminators: ``__call__(x [B, H, W, C], labels=None [B] int, train=False) -> logits [B] float32``;
                  ``features(x, train=False) -> phi [B, F]`` is the representation fed to the head.
  ``num_classes``: None for an unconditional net (labels must then be None); an int makes labels required.
  ``dtype``: compute dtype (e.g. bf16); parameters are always float32 and outputs float32.

Variable collections. Besides "params", every net here keeps its running state in **"batch_stats"** (so a
trainer handles one mutable collection for the whole family):
  - BatchNorm running means/variances (DCGAN and ResNet generators, DCGAN discriminator with norm="batch");
  - the power-iteration vectors ``u`` and estimates ``sigma`` of flax's ``nn.SpectralNorm`` (ResNet
    discriminator, and any net built with ``spectral_norm=True``);
  - the style generator's running mean ``w_avg`` of the mapping output (truncation trick).
Training: ``out, upd = net.apply(variables, z_or_x, labels, train=True, mutable=["batch_stats"])`` uses
batch statistics in BatchNorm, advances the power iteration one step per spectrally-normalised weight and
updates ``w_avg``; keep ``upd["batch_stats"]``. Eval: ``net.apply(variables, z_or_x, labels)`` (train=False)
uses the running BatchNorm averages, the stored ``u`` (so the output is deterministic) and leaves every
variable unchanged; then each example's output depends on that example alone. (In train mode BatchNorm
normalises over the batch, so examples interact; spectral normalisation does not.)

Image sizes. The generators project z to a (H / 2^k, W / 2^k) map and upsample k times by 2, k being the
largest number of halvings of both H and W that keeps each side an integer >= 4: 8 -> 4 (k=1), 28 -> 7
(k=2), 32 -> 4 (k=3), 64 -> 4 (k=4). Each side must be even and >= 8 (else GMJaxError). The style
generator needs square power-of-two sizes 4 * 2^k, k >= 1 (8, 16, 32, 64, ...).
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

F32 = jnp.float32


def stages(height: int, width: int, who: str):
    """(k, base_h, base_w): k stride-2 stages from a (base_h, base_w) map to (height, width); see module doc."""
    height, width = int(height), int(width)
    for side in (height, width):
        if side < 8 or side % 2:
            raise GMJaxError(
                f"{who} cannot reach image size {height}x{width}: each side must be an even integer >= 8 "
                "(e.g. 8, 28, 32, 64); pad or resize the images")

    def halvings(n):
        k = 0
        while n % 2 == 0 and n // 2 >= 4:
            n, k = n // 2, k + 1
        return k

    k = min(halvings(height), halvings(width))
    return k, height >> k, width >> k


def check_z(z, who):
    if z.ndim != 2:
        raise GMJaxError(f"{who} expects latents z [B, latent_dim], got shape {z.shape}; reshape z to 2-D")


def check_images(x, who):
    if x.ndim != 4:
        raise GMJaxError(f"{who} expects images [B, H, W, C], got shape {x.shape}; add the missing axes")


def check_labels(labels, num_classes, batch, who):
    """Validates labels against ``num_classes``; returns int32 labels [B] or None."""
    if num_classes is None:
        if labels is not None:
            raise GMJaxError(f"{who} is unconditional (num_classes=None) but got labels; pass labels=None "
                             "or build the net with num_classes set")
        return None
    if labels is None:
        raise GMJaxError(f"{who} is class-conditional (num_classes={num_classes}); pass labels [B] int")
    labels = jnp.asarray(labels)
    if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise GMJaxError(f"{who} expects integer labels of shape [{batch}], got {labels.dtype}{labels.shape}; "
                         "pass class indices, not one-hot vectors")
    return labels.astype(jnp.int32)


def apply_sn(layer: nn.Module, spectral_norm: bool, train: bool, x, name: str):
    """Applies ``layer`` to x, spectrally normalising its weights with flax's ``nn.SpectralNorm`` if asked.

    One power-iteration step per call from the stored ``u`` ("batch_stats"); the stored u and sigma are
    overwritten only when ``train`` (``update_stats``).
    """
    if spectral_norm:
        return nn.SpectralNorm(layer, n_steps=1, name=f"{name}_sn")(x, update_stats=train)
    return layer(x)


def upsample2(h):
    """Nearest-neighbour x2 on H and W of [B, H, W, C]."""
    return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


def avgpool2(h):
    return nn.avg_pool(h, (2, 2), strides=(2, 2))


class Norm(nn.Module):
    """BatchNorm (or nothing) with an optional class-conditional gain and bias (conditional BatchNorm,
    de Vries et al. 2017, as in the SNGAN/projection generators): y = (1 + g[label]) * BN(x) + b[label]."""

    norm: str = "batch"
    num_classes: Optional[int] = None
    dtype: Any = F32

    @nn.compact
    def __call__(self, h, labels, train):
        conditional = self.num_classes is not None
        if self.norm == "batch":
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             use_scale=not conditional, use_bias=not conditional,
                             dtype=self.dtype, param_dtype=F32, name="bn")(h)
        if conditional:
            c = h.shape[-1]
            gain = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, param_dtype=F32,
                            name="gain")(labels)
            bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, param_dtype=F32,
                            name="bias")(labels)
            h = (h * (1.0 + gain[:, None, None, :]) + bias[:, None, None, :]).astype(self.dtype)
        return h


def check_norm(norm, who):
    if norm not in ("batch", "none"):
        raise GMJaxError(f"{who}: norm must be 'batch' or 'none', got {norm!r}")


def check_generator_inputs(module, z, labels, who):
    """The checks a stage-doubling generator (DCGAN, SNGAN ResNet) runs on its inputs; returns
    (labels int32 [B] or None, k stages, base height, base width) for ``module.out_shape``."""
    check_z(z, who)
    check_norm(module.norm, who)
    k, bh, bw = stages(module.out_shape[0], module.out_shape[1], who)
    return check_labels(labels, module.num_classes, z.shape[0], who), k, bh, bw
