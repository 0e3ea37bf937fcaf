"""Adversarial objectives and their regularisers, as pure functions of discriminator outputs and callables.

- :func:`discriminator_loss` / :func:`generator_loss`: the two players' losses for the variants in
  :data:`GAN_LOSSES` (minimax and non-saturating, Goodfellow et al. 2014; Wasserstein, Arjovsky et al. 2017;
  least squares, Mao et al. 2017; hinge, Lim & Ye 2017 and Miyato et al. 2018). Both take the
  discriminator's **logits** (pre-sigmoid outputs, never probabilities) and return per-example values [B]
  (each example's terms averaged over any non-batch axes, e.g. PatchGAN's [B, H, W, 1]); the caller reduces.
- :func:`weight_clip`: WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1).
- :func:`gradient_penalty`: WGAN-GP (Gulrajani et al. 2017, Algorithm 1).
- :func:`r1_penalty` / :func:`r2_penalty`: zero-centred gradient penalties on real / fake data
  (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", eqs. 9-10).
- :func:`cycle_consistency_loss` / :func:`identity_loss`: CycleGAN's L1 terms (Zhu et al. 2017).

Sign convention: every loss here is *minimised* by the player it belongs to. With D(x) = sigmoid(l(x)) for
a logit l, the stable identities used throughout are -log D = softplus(-l) and -log(1 - D) = softplus(l), so
no log(0) or overflow occurs for any finite logit.
"""

from __future__ import annotations

import typing
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from gm_jax.errors import GMJaxError
from gm_jax.shapes import mean_event

GANLoss = Literal["minimax", "non_saturating", "wasserstein", "least_squares", "hinge"]
GAN_LOSSES = typing.get_args(GANLoss)

__all__ = ["GANLoss", "GAN_LOSSES", "discriminator_loss", "generator_loss", "weight_clip", "gradient_penalty", "r1_penalty",
           "r2_penalty", "cycle_consistency_loss", "identity_loss"]


def _check_kind(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise GMJaxError(f"unknown GAN loss kind '{kind}'; choose one of {', '.join(GAN_LOSSES)}")


def _float_array(x, name: str):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise GMJaxError(f"{name} must be a floating-point array (logits, not labels or indices), got dtype {x.dtype}; "
                         f"cast it with .astype(jnp.float32)")
    if x.ndim == 0:
        raise GMJaxError(f"{name} must have a batch axis, shape [B] or [B, ...], got a scalar")
    return x


def _per_example(terms):
    """[B] or [B, ...] terms -> [B]: each example's terms averaged over its non-batch axes."""
    return terms if terms.ndim == 1 else mean_event(terms)


def _logits(real_logits, fake_logits):
    """Validate a pair of logit arrays ([B] or [B, ...], same shape) and cast them to float32."""
    fake_logits = _float_array(fake_logits, "fake_logits")
    if real_logits is None:
        return None, fake_logits.astype(jnp.float32)
    real_logits = _float_array(real_logits, "real_logits")
    if real_logits.shape != fake_logits.shape:
        raise GMJaxError(f"real_logits and fake_logits must have the same shape [B] (or [B, ...]), got "
                         f"{real_logits.shape} and {fake_logits.shape}; draw as many fakes as reals")
    return real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)


def discriminator_loss(real_logits, fake_logits, *, kind: str):
    """The discriminator's (critic's) loss per example; r = real logits, f = fake logits:

    - ``minimax`` and ``non_saturating`` (Goodfellow et al. 2014, eq. 1):
      softplus(-r) + softplus(f) = -log D(x) - log(1 - D(G(z))), the binary cross-entropy of real vs fake.
    - ``wasserstein`` (Arjovsky et al. 2017, Algorithm 1): mean f - mean r (the critic output is unbounded;
      keep it Lipschitz with :func:`weight_clip` or :func:`gradient_penalty`).
    - ``least_squares`` (Mao et al. 2017, eq. 2 with a=0, b=1): ½ (r - 1)² + ½ f², on the raw output.
    - ``hinge`` (Lim & Ye 2017; Miyato et al. 2018, sec. 4): relu(1 - r) + relu(1 + f).

    Example i pairs real_i with fake_i (draw as many fakes as reals); a per-patch output [B, H, W, 1] is
    averaged over its patches.

    Args:
      real_logits: discriminator outputs on data, [B] (or [B, ...]), floating point.
      fake_logits: discriminator outputs on generated samples, same shape.
      kind: one of :data:`GAN_LOSSES`.
    Returns: [B] float32.
    """
    _check_kind(kind)
    r, f = _logits(real_logits, fake_logits)
    if kind in ("minimax", "non_saturating"):
        per_example = jax.nn.softplus(-r) + jax.nn.softplus(f)
    elif kind == "wasserstein":
        per_example = f - r
    elif kind == "least_squares":
        per_example = 0.5 * jnp.square(r - 1.0) + 0.5 * jnp.square(f)
    else:  # hinge
        per_example = jax.nn.relu(1.0 - r) + jax.nn.relu(1.0 + f)
    return _per_example(per_example)


def generator_loss(fake_logits, *, kind: str, real_logits=None):
    """The generator's loss per example; f = discriminator logits on generated samples:

    - ``minimax`` (Goodfellow et al. 2014, eq. 1, the "saturating" form): log(1 - D(G(z))) = -softplus(f).
      Its gradient vanishes when D confidently rejects the samples, early in training.
    - ``non_saturating`` (Goodfellow et al. 2014, sec. 3): -log D(G(z)) = softplus(-f).
    - ``wasserstein`` (Arjovsky et al. 2017): -f.
    - ``least_squares`` (Mao et al. 2017, eq. 2 with c=1): ½ (f - 1)².
    - ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): -f.

    Args:
      fake_logits: discriminator outputs on generated samples, [B] (or [B, ...]), floating point.
      kind: one of :data:`GAN_LOSSES`.
      real_logits: optional, same shape as ``fake_logits``. None of :data:`GAN_LOSSES` uses it; it is
        accepted (and shape-checked) so that relativistic variants can share this signature.
    Returns: [B] float32 (a per-patch output averaged over its patches).
    """
    _check_kind(kind)
    _, f = _logits(real_logits, fake_logits)
    if kind == "minimax":
        per_example = -jax.nn.softplus(f)
    elif kind == "non_saturating":
        per_example = jax.nn.softplus(-f)
    elif kind == "least_squares":
        per_example = 0.5 * jnp.square(f - 1.0)
    else:  # wasserstein, hinge
        per_example = -f
    return _per_example(per_example)


def weight_clip(params, *, clip: float):
    """WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1): every leaf of ``params`` clipped to
    [-clip, clip] (they use clip = 0.01). Apply it to the critic's parameters after each critic update.

    Args:
      params: a pytree of floating-point arrays. clip: the bound c > 0.
    Returns: a pytree of the same structure (and leaf dtypes; the bound is rounded to each leaf's dtype).
    """
    if not clip > 0:
        raise GMJaxError(f"clip must be > 0 (Arjovsky et al. use 0.01), got {clip}")
    return optax.tree.clip(params, -clip, clip)


def _critic_input_grad(critic_fn, x):
    """∇_x D(x) [B, ...] for a critic ``D(x [B, ...]) -> [B] or [B, 1]``.

    Computed as the gradient of sum_i D(x_i) with respect to the whole batch: the i-th block of that
    gradient is ∇ D(x_i) exactly when D(x_i) does not depend on the other examples, which every critic
    used with these penalties must satisfy anyway (Gulrajani et al. 2017, sec. 4: no batch normalisation in
    the critic). One forward and one backward pass, and ``critic_fn`` is called on the batch as it is
    (rather than through ``vmap`` on single examples, which would silently change the meaning of any
    batch statistic and hide the violation instead of reproducing the paper's setting).
    """
    b = x.shape[0]

    def total(x_):
        out = critic_fn(x_)
        if out.shape not in ((b,), (b, 1)):
            raise GMJaxError(f"critic_fn must return one value per example, shape ({b},) or ({b}, 1) for {b} inputs; "
                             f"got {out.shape}")
        return jnp.sum(out.astype(jnp.float32))

    return jax.grad(total)(x)


def _sq_norm(g):
    """Squared L2 norm over all but the batch axis: [B, ...] -> [B] float32."""
    return jnp.sum(jnp.square(g.reshape(g.shape[0], -1).astype(jnp.float32)), axis=-1)


def _inputs(x, name: str):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or x.ndim < 1:
        raise GMJaxError(f"{name} must be a floating-point batch [B, ...], got dtype {x.dtype} and shape {x.shape}")
    return x


def gradient_penalty(critic_fn, real, fake, key, *, target: float = 1.0):
    """WGAN-GP two-sided penalty (Gulrajani et al. 2017, eq. 3 and Algorithm 1), per example:

        x̂_i = ε_i x_i + (1 - ε_i) x̃_i,  ε_i ~ U[0, 1] (one ε per example),
        penalty_i = (||∇_x̂ D(x̂_i)||_2 - target)².

    The norm is over all non-batch axes. The caller weights and averages it (λ = 10 in the paper) and adds
    it to the critic loss; gradients flow into the critic's parameters through ``critic_fn``. At a point
    where ∇D = 0 the norm's derivative is taken as 0 (a subgradient), so the parameter gradient is finite.

    Args:
      critic_fn: ``D(x [B, ...]) -> [B] or [B, 1]`` (a closure over the critic's parameters); D(x_i) must
        not depend on the other examples (no batch norm: the input gradient is
        taken as the gradient of sum_i D(x̂_i), which equals ∇D(x̂_i) per example only for such critics).
      real: data [B, ...]. fake: generated samples, same shape. key: a ``jax.random.key`` for ε.
      target: the norm the penalty pulls towards (1 in the paper).
    Returns: per-example penalty [B], float32.
    """
    real, fake = _inputs(real, "real"), _inputs(fake, "fake")
    if real.shape != fake.shape:
        raise GMJaxError(f"real and fake must have the same shape [B, ...] to be interpolated, got {real.shape} and "
                         f"{fake.shape}")
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype)
    x_hat = eps * real + (1.0 - eps) * fake.astype(real.dtype)
    sq = _sq_norm(_critic_input_grad(critic_fn, x_hat))
    # sqrt has an infinite derivative at 0: the double where keeps the value exact and the gradient finite.
    positive = sq > 0
    norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    return jnp.square(norm - target)


def r1_penalty(critic_fn, real):
    """R1 of Mescheder et al. (2018, eq. 9), per example: ||∇_x D(x)||² on data, where D is the logit.

    The paper's regulariser is (γ/2) E_data ||∇D(x)||²: the caller multiplies the mean of this by γ/2 and
    adds it to the discriminator loss.

    Args:
      critic_fn: ``D(x [B, ...]) -> [B] or [B, 1]`` (logits); D(x_i) must not depend on other examples.
      real: data [B, ...].
    Returns: per-example squared gradient norm [B], float32.
    """
    real = _inputs(real, "real")
    return _sq_norm(_critic_input_grad(critic_fn, real))


def r2_penalty(critic_fn, fake):
    """R2 of Mescheder et al. (2018, eq. 10), per example: ||∇_x D(x)||² on generated samples.

    As for :func:`r1_penalty`, the caller multiplies the mean by γ/2.

    Args:
      critic_fn: ``D(x [B, ...]) -> [B] or [B, 1]`` (logits). fake: generated samples [B, ...] (treat them as
        constants, e.g. ``jax.lax.stop_gradient``, when only the discriminator is being updated).
    Returns: per-example squared gradient norm [B], float32.
    """
    fake = _inputs(fake, "fake")
    return _sq_norm(_critic_input_grad(critic_fn, fake))


def _l1(a, b, names: tuple):
    a, b = _inputs(a, names[0]), _inputs(b, names[1])
    if a.shape != b.shape:
        raise GMJaxError(f"{names[0]} and {names[1]} must have the same shape [B, ...], got {a.shape} and {b.shape}")
    return jnp.mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)).reshape(a.shape[0], -1), axis=-1)


def cycle_consistency_loss(x, x_reconstructed):
    """Cycle-consistency loss of CycleGAN (Zhu et al. 2017, eq. 2), per example:
    mean_j |x_j - F(G(x))_j| over all non-batch axes (the L1 norm divided by the number of elements).

    Args:
      x: a batch [B, ...]. x_reconstructed: F(G(x)), same shape.
    Returns: per-example mean absolute error [B], float32. The paper weights it by λ = 10.
    """
    return _l1(x, x_reconstructed, ("x", "x_reconstructed"))


def identity_loss(x, mapped):
    """Identity-mapping loss (Zhu et al. 2017, sec. 5.2, after Taigman et al. 2017), per example:
    mean_j |x_j - G(x)_j| for x already in G's target domain, so G preserves what needs no translation.

    Args:
      x: a batch from G's target domain [B, ...]. mapped: G(x), same shape.
    Returns: per-example mean absolute error [B], float32. The paper weights it by 0.5 λ.
    """
    return _l1(x, mapped, ("x", "mapped"))
