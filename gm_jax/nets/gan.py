"""Generators and discriminators for the adversarial family (images NHWC, model space float32 in [-1, 1]).

- :class:`DCGANGenerator` / :class:`DCGANDiscriminator`: Radford, Metz & Chintala 2016, "Unsupervised
  Representation Learning with Deep Convolutional GANs".
- :class:`ResNetGenerator` / :class:`ResNetDiscriminator`: the SNGAN CIFAR ResNets of Miyato, Kataoka,
  Koyama & Yoshida 2018, "Spectral Normalization for GANs" (appendix B.4), at configurable width/depth.
- :class:`StyleGenerator`: a small style-based generator after Karras, Laine & Aila 2019, "A Style-Based
  Generator Architecture for GANs" (mapping network, learned constant, per-pixel noise, AdaIN, truncation).
- :class:`ProjectionHead`: the projection discriminator output of Miyato & Koyama 2018, "cGANs with
  Projection Discriminator": logit = psi(phi(x)) + <embed(y), phi(x)>.

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

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm_jax.errors import GMJaxError

__all__ = [
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ResNetGenerator",
    "ResNetDiscriminator",
    "StyleGenerator",
    "StyleMapping",
    "StyleSynthesis",
    "ProjectionHead",
    "pixel_norm",
]

_F32 = jnp.float32


# ------------------------------------------------------------------------------------------------ helpers


def _stages(height: int, width: int, who: str):
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


def _check_z(z, who):
    if z.ndim != 2:
        raise GMJaxError(f"{who} expects latents z [B, latent_dim], got shape {z.shape}; reshape z to 2-D")


def _check_images(x, who):
    if x.ndim != 4:
        raise GMJaxError(f"{who} expects images [B, H, W, C], got shape {x.shape}; add the missing axes")


def _check_labels(labels, num_classes, batch, who):
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


def _sn(layer: nn.Module, spectral_norm: bool, train: bool, x, name: str):
    """Applies ``layer`` to x, spectrally normalising its weights with flax's ``nn.SpectralNorm`` if asked.

    One power-iteration step per call from the stored ``u`` ("batch_stats"); the stored u and sigma are
    overwritten only when ``train`` (``update_stats``).
    """
    if spectral_norm:
        return nn.SpectralNorm(layer, n_steps=1, name=f"{name}_sn")(x, update_stats=train)
    return layer(x)


def pixel_norm(x, eps: float = 1e-8):
    """x / sqrt(mean(x^2 over the last axis) + eps) (Karras et al. 2018, progressive GAN), in float32."""
    x = x.astype(_F32)
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def _upsample2(h):
    """Nearest-neighbour x2 on H and W of [B, H, W, C]."""
    return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


def _avgpool2(h):
    return nn.avg_pool(h, (2, 2), strides=(2, 2))


class _Norm(nn.Module):
    """BatchNorm (or nothing) with an optional class-conditional gain and bias (conditional BatchNorm,
    de Vries et al. 2017, as in the SNGAN/projection generators): y = (1 + g[label]) * BN(x) + b[label]."""

    norm: str = "batch"
    num_classes: Optional[int] = None
    dtype: Any = _F32

    @nn.compact
    def __call__(self, h, labels, train):
        conditional = self.num_classes is not None
        if self.norm == "batch":
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             use_scale=not conditional, use_bias=not conditional,
                             dtype=self.dtype, param_dtype=_F32, name="bn")(h)
        if conditional:
            c = h.shape[-1]
            gain = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, param_dtype=_F32,
                            name="gain")(labels)
            bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, param_dtype=_F32,
                            name="bias")(labels)
            h = (h * (1.0 + gain[:, None, None, :]) + bias[:, None, None, :]).astype(self.dtype)
        return h


def _check_norm(norm, who):
    if norm not in ("batch", "none"):
        raise GMJaxError(f"{who}: norm must be 'batch' or 'none', got {norm!r}")


# --------------------------------------------------------------------------------------- projection head


class ProjectionHead(nn.Module):
    """Discriminator output from features phi [B, F] (Miyato & Koyama 2018):

        logit = psi(phi) + <embed(y), phi>,   psi = Dense(1),  embed = Embed(num_classes, F).

    With ``num_classes=None`` only psi. With ``spectral_norm`` both psi's kernel and the embedding matrix
    are spectrally normalised (as in Miyato & Koyama's code). Returns logits [B] float32. Parameters:
    "psi" (kernel [F, 1], bias [1]) and "embed" (embedding [num_classes, F]).
    """

    num_classes: Optional[int] = None
    spectral_norm: bool = False
    dtype: Any = _F32

    @nn.compact
    def __call__(self, phi, labels=None, train: bool = False):
        if phi.ndim != 2:
            raise GMJaxError(f"ProjectionHead expects features [B, F], got shape {phi.shape}")
        labels = _check_labels(labels, self.num_classes, phi.shape[0], "ProjectionHead")
        phi = phi.astype(self.dtype)
        out = _sn(nn.Dense(1, dtype=self.dtype, param_dtype=_F32, name="psi"), self.spectral_norm, train, phi,
                  "psi")[:, 0].astype(_F32)
        if labels is not None:
            emb = _sn(nn.Embed(self.num_classes, phi.shape[-1], param_dtype=_F32, name="embed"),
                      self.spectral_norm, train, labels, "embed")
            out = out + jnp.sum(emb.astype(_F32) * phi.astype(_F32), axis=-1)
        return out


# ------------------------------------------------------------------------------------------------- DCGAN


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016): z [B, Z] -> images [B, H, W, C] float32 in [-1, 1].

    Dense projection of z to a (H/2^k, W/2^k, width * 2^(k-1)) map (k from the image size, see the module
    doc), norm + ReLU; then k - 1 stride-2 4x4 transposed convs halving the channels, each with norm + ReLU;
    a last stride-2 4x4 transposed conv to C channels and tanh. For 64x64x3 and width=128 this is the
    paper's 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3.

    Attributes:
      out_shape: (H, W, C).
      width: channels of the last hidden map (the widest is width * 2^(k-1)).
      norm: "batch" (BatchNorm: batch statistics when train=True, which needs mutable=["batch_stats"];
        running averages when train=False) or "none".
      num_classes: None, or the number of classes: a learned label embedding (size Z) is concatenated to z.
      dtype: compute dtype; params float32.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 64
    norm: str = "batch"
    num_classes: Optional[int] = None
    dtype: Any = _F32

    @nn.compact
    def __call__(self, z, labels=None, train: bool = False):
        who = "DCGANGenerator"
        _check_z(z, who)
        _check_norm(self.norm, who)
        height, width_px, channels = self.out_shape
        k, bh, bw = _stages(height, width_px, who)
        labels = _check_labels(labels, self.num_classes, z.shape[0], who)
        h = z.astype(self.dtype)
        if labels is not None:
            emb = nn.Embed(self.num_classes, z.shape[-1], param_dtype=_F32, name="label_embed")(labels)
            h = jnp.concatenate([h, emb.astype(self.dtype)], axis=-1)
        c = self.width * 2 ** (k - 1)
        h = nn.Dense(bh * bw * c, dtype=self.dtype, param_dtype=_F32, name="project")(h)
        h = h.reshape(z.shape[0], bh, bw, c)
        h = nn.relu(_Norm(self.norm, dtype=self.dtype, name="norm_0")(h, None, train))
        for i in range(1, k):
            c //= 2
            h = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype, param_dtype=_F32,
                                 name=f"up_{i}")(h)
            h = nn.relu(_Norm(self.norm, dtype=self.dtype, name=f"norm_{i}")(h, None, train))
        h = nn.ConvTranspose(channels, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                             param_dtype=_F32, name="to_image")(h)
        return jnp.tanh(h.astype(_F32))


class _DCGANFeatures(nn.Module):
    width: int
    norm: str
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x, train):
        who = "DCGANDiscriminator"
        _check_images(x, who)
        _check_norm(self.norm, who)
        k, _, _ = _stages(x.shape[1], x.shape[2], who)
        h = x.astype(self.dtype)
        for i in range(k):
            conv = nn.Conv(self.width * 2 ** i, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                           param_dtype=_F32, name=f"conv_{i}")
            h = _sn(conv, self.spectral_norm, train, h, f"conv_{i}")
            if i > 0:
                h = _Norm(self.norm, dtype=self.dtype, name=f"norm_{i}")(h, None, train)
            h = nn.leaky_relu(h, 0.2)
        return h.reshape(h.shape[0], -1)


class _ProjectionCritic(nn.Module):
    """A feature network ``body`` followed by a :class:`ProjectionHead` ``head`` (both made in setup)."""

    def features(self, x, train: bool = False):
        """phi(x) [B, F] (compute dtype): the body's output."""
        return self.body(x, train)

    def __call__(self, x, labels=None, train: bool = False):
        return self.head(self.body(x, train), labels, train)


class DCGANDiscriminator(_ProjectionCritic):
    """DCGAN discriminator (Radford et al. 2016): x [B, H, W, C] -> logits [B] float32.

    k stride-2 4x4 convs (k from the image size, as for the generator) with widths width * 2^i,
    LeakyReLU(0.2) after each; phi = the flattened last map (``features``, [B, F]); logits from a
    :class:`ProjectionHead` (a Dense(1), plus the class projection when ``num_classes`` is set).
    Submodules: "body" (the conv stack) and "head".

    Attributes:
      width: channels of the first conv.
      norm: "none" (default: each example's logit depends on it alone, as gradient penalties need) or
        "batch" (BatchNorm after every conv but the first, as in the paper).
      spectral_norm: spectrally normalise every conv/dense (Miyato et al. 2018; state in "batch_stats").
      num_classes: None or the number of classes (projection discriminator).
      dtype: compute dtype; params float32.
    """

    width: int = 64
    norm: str = "none"
    spectral_norm: bool = False
    num_classes: Optional[int] = None
    dtype: Any = _F32

    def setup(self):
        self.body = _DCGANFeatures(self.width, self.norm, self.spectral_norm, self.dtype)
        self.head = ProjectionHead(self.num_classes, self.spectral_norm, self.dtype)


# ------------------------------------------------------------------------------------------ SNGAN ResNets


class _GBlock(nn.Module):
    """Up ResBlock: h = conv3(relu(cBN(conv3(up(relu(cBN(x))))))); shortcut conv1x1(up(x))."""

    channels: int
    norm: str
    num_classes: Optional[int]
    dtype: Any

    @nn.compact
    def __call__(self, x, labels, train):
        conv = lambda c, k, name: nn.Conv(c, (k, k), padding="SAME", dtype=self.dtype, param_dtype=_F32,
                                          name=name)
        h = nn.relu(_Norm(self.norm, self.num_classes, self.dtype, name="norm_1")(x, labels, train))
        h = conv(self.channels, 3, "conv_1")(_upsample2(h))
        h = nn.relu(_Norm(self.norm, self.num_classes, self.dtype, name="norm_2")(h, labels, train))
        h = conv(self.channels, 3, "conv_2")(h)
        return h + conv(self.channels, 1, "shortcut")(_upsample2(x))


class _DBlock(nn.Module):
    """Down ResBlock (SNGAN): h = [avgpool](conv3(relu(conv3(relu(x))))); the first ("optimized") block omits
    the leading relu and pools its shortcut before the 1x1 conv. The shortcut is a 1x1 conv when the block
    downsamples or changes width, else the identity. Every conv spectrally normalised if asked."""

    channels: int
    down: bool
    first: bool
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x, train):
        def conv(h, k, name):
            layer = nn.Conv(self.channels, (k, k), padding="SAME", dtype=self.dtype, param_dtype=_F32, name=name)
            return _sn(layer, self.spectral_norm, train, h, name)

        h = x if self.first else nn.relu(x)
        h = conv(nn.relu(conv(h, 3, "conv_1")), 3, "conv_2")
        if self.down:
            h = _avgpool2(h)
        if self.first:
            s = conv(_avgpool2(x), 1, "shortcut")
        elif self.down or x.shape[-1] != self.channels:
            s = conv(x, 1, "shortcut")
            s = _avgpool2(s) if self.down else s
        else:
            s = x
        return h + s


class ResNetGenerator(nn.Module):
    """SNGAN ResNet generator (Miyato et al. 2018, CIFAR: Table 4 / appendix B.4): z -> [B, H, W, C].

    Dense projection of z to a (H/2^k, W/2^k, width) map; k up ResBlocks of width ``width``
    (BN-ReLU-nearest x2-conv3-BN-ReLU-conv3, shortcut nearest x2 + conv1x1); BN, ReLU, conv3 to C, tanh.
    32x32 gives k=3 (4 -> 8 -> 16 -> 32, the paper's generator with width=256); 8x8 gives k=1.
    With ``num_classes`` the BatchNorms are class-conditional (per-class gain and bias, as in the
    projection-discriminator paper's generator).

    Attributes: out_shape (H, W, C); width; norm "batch" (batch statistics when train=True, needs
    mutable=["batch_stats"]; running averages otherwise) or "none"; num_classes; dtype.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 256
    norm: str = "batch"
    num_classes: Optional[int] = None
    dtype: Any = _F32

    @nn.compact
    def __call__(self, z, labels=None, train: bool = False):
        who = "ResNetGenerator"
        _check_z(z, who)
        _check_norm(self.norm, who)
        height, width_px, channels = self.out_shape
        k, bh, bw = _stages(height, width_px, who)
        labels = _check_labels(labels, self.num_classes, z.shape[0], who)
        h = nn.Dense(bh * bw * self.width, dtype=self.dtype, param_dtype=_F32, name="project")(z.astype(self.dtype))
        h = h.reshape(z.shape[0], bh, bw, self.width)
        for i in range(k):
            h = _GBlock(self.width, self.norm, self.num_classes, self.dtype, name=f"block_{i}")(h, labels, train)
        h = nn.relu(_Norm(self.norm, None, self.dtype, name="norm_out")(h, None, train))
        h = nn.Conv(channels, (3, 3), padding="SAME", dtype=self.dtype, param_dtype=_F32, name="to_image")(h)
        return jnp.tanh(h.astype(_F32))


class ResNetDiscriminator(_ProjectionCritic):
    """SNGAN ResNet discriminator (Miyato et al. 2018, CIFAR): x [B, H, W, C] -> logits [B] float32.

    ``num_down`` downsampling ResBlocks (the first one "optimized"), then ``num_plain`` ResBlocks at that
    resolution, all of width ``width``; ReLU; global sum pooling gives phi [B, width] (``features``); logits from a
    :class:`ProjectionHead`. Every conv, the dense psi and the class embedding are spectrally normalised
    (``spectral_norm=True``, the default; flax ``nn.SpectralNorm``, one power-iteration step per call, state
    in "batch_stats", updated only when train=True). Submodules "body" and "head". No batch
    normalisation: each example's logit depends on that example alone, in train mode too.

    ``num_down=None`` picks max(1, k - 1) with k as for the generator: 32x32 -> 2 (32 -> 16 -> 8, then two
    plain blocks at 8x8: the paper's CIFAR discriminator with width=128); 8x8 -> 1 (8 -> 4).
    """

    width: int = 128
    num_down: Optional[int] = None
    num_plain: int = 2
    spectral_norm: bool = True
    num_classes: Optional[int] = None
    dtype: Any = _F32

    def setup(self):
        self.body = _ResNetFeatures(self.width, self.num_down, self.num_plain, self.spectral_norm, self.dtype)
        self.head = ProjectionHead(self.num_classes, self.spectral_norm, self.dtype)


class _ResNetFeatures(nn.Module):
    width: int
    num_down: Optional[int]
    num_plain: int
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x, train):
        who = "ResNetDiscriminator"
        _check_images(x, who)
        k, _, _ = _stages(x.shape[1], x.shape[2], who)
        num_down = max(1, k - 1) if self.num_down is None else self.num_down
        if num_down < 1 or num_down > k or self.num_plain < 0:
            raise GMJaxError(f"{who}: num_down must be in [1, {k}] for {x.shape[1]}x{x.shape[2]} images and "
                             f"num_plain >= 0, got num_down={num_down}, num_plain={self.num_plain}")
        h = x.astype(self.dtype)
        for i in range(num_down + self.num_plain):
            h = _DBlock(self.width, down=i < num_down, first=i == 0, spectral_norm=self.spectral_norm,
                        dtype=self.dtype, name=f"block_{i}")(h, train)
        return jnp.sum(nn.relu(h), axis=(1, 2))


# --------------------------------------------------------------------------------------------- StyleGAN


class _AdaIN(nn.Module):
    """Instance-normalise h [B, H, W, C] per example and channel (float32 statistics), then
    y = (1 + y_s) * h_norm + y_b with (y_s, y_b) = Dense(2C)(w) (the learned affine map "A")."""

    dtype: Any

    @nn.compact
    def __call__(self, h, w):
        c = h.shape[-1]
        h32 = h.astype(_F32)
        mean = jnp.mean(h32, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(h32 - mean), axis=(1, 2), keepdims=True)
        hn = (h32 - mean) * jax.lax.rsqrt(var + 1e-8)
        style = nn.Dense(2 * c, dtype=self.dtype, param_dtype=_F32, name="affine")(w.astype(self.dtype))
        ys, yb = jnp.split(style.astype(_F32), 2, axis=-1)
        return ((1.0 + ys)[:, None, None, :] * hn + yb[:, None, None, :]).astype(self.dtype)


class _NoiseConvLayer(nn.Module):
    """[conv3 ->] + per-pixel noise (scaled by a learned per-channel factor, zero at init as in Karras et
    al.) -> LeakyReLU(0.2) -> AdaIN(w)."""

    channels: int
    conv: bool
    noise: bool
    dtype: Any

    @nn.compact
    def __call__(self, h, w):
        if self.conv:
            h = nn.Conv(self.channels, (3, 3), padding="SAME", dtype=self.dtype, param_dtype=_F32, name="conv")(h)
        if self.noise:
            scale = self.param("noise_scale", nn.initializers.zeros, (h.shape[-1],), _F32)
            if self.has_rng("noise"):
                n = jax.random.normal(self.make_rng("noise"), h.shape[:3] + (1,), _F32)
            else:
                n = jnp.zeros(h.shape[:3] + (1,), _F32)
            h = (h.astype(_F32) + scale * n).astype(self.dtype)
        h = nn.leaky_relu(h, 0.2)
        return _AdaIN(self.dtype, name="adain")(h, w)


class StyleMapping(nn.Module):
    """Mapping network f: z [B, Z] (+ labels) -> w [B, w_dim] float32 (Karras et al. 2019, section 2).

    pixel_norm(z) (concatenated with pixel_norm(Embed(labels)) when ``num_classes`` is set, as in
    StyleGAN2-ADA), then ``num_layers`` Dense(w_dim) + LeakyReLU(0.2). (The paper's equalised learning rate
    and 0.01 mapping learning-rate multiplier are left to the optimiser.)
    """

    w_dim: int = 256
    num_layers: int = 8
    num_classes: Optional[int] = None
    dtype: Any = _F32

    @nn.compact
    def __call__(self, z, labels=None):
        _check_z(z, "StyleMapping")
        labels = _check_labels(labels, self.num_classes, z.shape[0], "StyleMapping")
        h = pixel_norm(z)
        if labels is not None:
            emb = nn.Embed(self.num_classes, z.shape[-1], param_dtype=_F32, name="label_embed")(labels)
            h = jnp.concatenate([h, pixel_norm(emb)], axis=-1)
        h = h.astype(self.dtype)
        for i in range(self.num_layers):
            h = nn.leaky_relu(nn.Dense(self.w_dim, dtype=self.dtype, param_dtype=_F32, name=f"dense_{i}")(h), 0.2)
        return h.astype(_F32)


class StyleSynthesis(nn.Module):
    """Synthesis network g: w [B, w_dim] -> images [B, H, W, C] float32 in [-1, 1] (Karras et al. 2019).

    A learned constant [4, 4, width]; at 4x4: noise + LeakyReLU + AdaIN, then conv3 + noise + LeakyReLU +
    AdaIN; at each further resolution (x2 nearest upsampling first): twice conv3 + noise + LeakyReLU +
    AdaIN; a 1x1 "toRGB" conv and tanh. All blocks have ``width`` channels. Every AdaIN has its own affine
    map of w. Noise comes from the "noise" rng when one is passed to apply (``rngs={"noise": key}``) and is
    zero otherwise (deterministic samples); ``noise=False`` removes the noise inputs altogether.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 128
    noise: bool = True
    dtype: Any = _F32

    @nn.compact
    def __call__(self, w):
        who = "StyleSynthesis"
        if w.ndim != 2:
            raise GMJaxError(f"{who} expects styles w [B, w_dim], got shape {w.shape}")
        num_up = _style_levels(self.out_shape, who)
        const = self.param("const", nn.initializers.normal(1.0), (1, 4, 4, self.width), _F32)
        h = jnp.broadcast_to(const, (w.shape[0], 4, 4, self.width)).astype(self.dtype)
        layer = lambda conv, name: _NoiseConvLayer(self.width, conv, self.noise, self.dtype, name=name)
        h = layer(False, "res4_0")(h, w)
        h = layer(True, "res4_1")(h, w)
        for i in range(1, num_up + 1):
            res = 4 * 2 ** i
            h = _upsample2(h)
            h = layer(True, f"res{res}_0")(h, w)
            h = layer(True, f"res{res}_1")(h, w)
        h = nn.Conv(self.out_shape[2], (1, 1), dtype=self.dtype, param_dtype=_F32, name="to_rgb")(h)
        return jnp.tanh(h.astype(_F32))


def _style_levels(out_shape, who):
    height, width_px, _ = out_shape
    k = 0
    while 4 * 2 ** k < height:
        k += 1
    if height != width_px or height != 4 * 2 ** k or k < 1:
        raise GMJaxError(f"{who} makes square images of side 4 * 2^k (8, 16, 32, 64, ...), got "
                         f"{height}x{width_px}; pad or resize the images, or use DCGANGenerator")
    return k


class StyleGenerator(nn.Module):
    """A small style-based generator (Karras et al. 2019): z [B, Z] -> images [B, H, W, C] in [-1, 1].

    w = :class:`StyleMapping` (z, labels); images = :class:`StyleSynthesis` (w'), where w' applies the
    truncation trick: w' = w_avg + psi (w - w_avg) (``truncation_psi``; 1 = untruncated, 0 = every z gives
    the image of w_avg). ``w_avg`` [w_dim] float32 lives in "batch_stats" (zeros at init) and is updated
    only when ``train=True``, which then needs ``mutable=["batch_stats"]``:
    w_avg <- decay * w_avg + (1 - decay) * mean_batch(w) (the paper's code uses decay 0.995).
    Noise: see :class:`StyleSynthesis` (``rngs={"noise": key}``; zero noise without the rng).
    Methods ``mapping(z, labels)`` and ``synthesis(w)`` expose the two halves (``apply(..., method=...)``).

    Attributes: out_shape (H, W, C) with H = W in {8, 16, 32, 64, ...}; width (synthesis channels); w_dim;
    mapping_layers; noise; w_avg_decay; num_classes; dtype. No batch normalisation: eval outputs are
    per-example.
    """

    out_shape: Sequence[int] = (32, 32, 3)
    width: int = 128
    w_dim: int = 256
    mapping_layers: int = 8
    noise: bool = True
    w_avg_decay: float = 0.995
    num_classes: Optional[int] = None
    dtype: Any = _F32

    def setup(self):
        _style_levels(self.out_shape, "StyleGenerator")
        self.mapping_net = StyleMapping(self.w_dim, self.mapping_layers, self.num_classes, self.dtype)
        self.synthesis_net = StyleSynthesis(tuple(self.out_shape), self.width, self.noise, self.dtype)
        self.w_avg = self.variable("batch_stats", "w_avg", lambda: jnp.zeros((self.w_dim,), _F32))

    def mapping(self, z, labels=None):
        """w [B, w_dim] float32."""
        return self.mapping_net(z, labels)

    def synthesis(self, w):
        """images [B, H, W, C] float32 from styles w [B, w_dim] (no truncation applied)."""
        return self.synthesis_net(w)

    def __call__(self, z, labels=None, train: bool = False, truncation_psi=1.0):
        _check_z(z, "StyleGenerator")
        w = self.mapping_net(z, labels)
        if train and not self.is_initializing():
            if not self.is_mutable_collection("batch_stats"):
                raise GMJaxError("StyleGenerator with train=True updates w_avg; call apply(..., "
                                 "mutable=['batch_stats']) (or use train=False)")
            d = self.w_avg_decay
            self.w_avg.value = d * self.w_avg.value + (1.0 - d) * jnp.mean(jax.lax.stop_gradient(w), axis=0)
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1.0):
            w_avg = self.w_avg.value
            w = w_avg + jnp.asarray(truncation_psi, _F32) * (w - w_avg)
        return self.synthesis_net(w)
