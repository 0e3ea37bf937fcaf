"""Langevin samplers for energy-based and score-based models, and the replay buffer of persistent chains.

- :func:`langevin_sample`: the unadjusted Langevin algorithm / stochastic-gradient Langevin dynamics
  (Welling & Teh 2011, "Bayesian Learning via Stochastic Gradient Langevin Dynamics") on an energy
  E(x), target p(x) ∝ exp(-E(x)), with the optional decoupled noise scale, gradient clipping and
  box clamping used to train EBMs by short-run MCMC (Du & Mordatch 2019, "Implicit Generation and
  Generalization in Energy-Based Models").
- :func:`annealed_langevin_sample`: annealed Langevin dynamics over decreasing noise levels (Song &
  Ermon 2019, "Generative Modeling by Estimating Gradients of the Data Distribution", Alg. 1), with the
  final denoising step of Jolicoeur-Martineau et al. (2021) / Song & Ermon (2020, NCSNv2).
- :func:`replay_buffer_init`, :func:`replay_buffer_sample`, :func:`replay_buffer_update`: a fixed-size
  buffer of past negative samples (Du & Mordatch 2019, section 3.1), as a pure pytree
  ``{"samples": [capacity, ...]}`` that a model carries as its state.

Every loop is one ``lax.scan`` with a fixed-shape state, jittable end to end; the energy / score is a
plain callable.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.shapes import check_batch_values, check_output
from gm_jax.shapes import per_example as _per_example

__all__ = ["langevin_sample", "langevin_step", "annealed_langevin_sample", "annealed_langevin_step", "uniform_init",
           "replay_buffer_init", "replay_buffer_sample", "replay_buffer_update"]


def _check_count(name, value):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise GMJaxError(f"{name} must be a positive int, got {value!r}")


def _check_nonneg(name, value, strict=False):
    """Checks a concrete number (traced values pass: they are only known at run time)."""
    if isinstance(value, numbers.Number) and (value <= 0 if strict else value < 0):
        raise GMJaxError(f"{name} must be {'> 0' if strict else '>= 0'}, got {value}")


def _clip_by_norm(g, max_norm):
    """Scales each example's gradient g [B, ...] so that its L2 norm (over the event axes) is <= max_norm."""
    norm = jnp.sqrt(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=-1))
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
    return g * _per_example(scale, g)


def langevin_step(energy_fn, x, key, *, step_size, noise_scale=None, grad_clip=None, clip_range=None):
    """One step x <- x - step_size ∇E(x) + noise_scale z (then the optional clipping and clamping of
    :func:`langevin_sample`, whose kernel this is; options as there). Returns x [B, ...]."""
    noise = jnp.sqrt(2.0 * jnp.asarray(step_size, jnp.float32)) if noise_scale is None else noise_scale
    g = jax.grad(lambda y: jnp.sum(check_batch_values("langevin_step", "energy_fn(x)", energy_fn(y), y.shape[0])))(x)
    if grad_clip is not None:
        g = _clip_by_norm(g, grad_clip)
    x = x - step_size * g + noise * jax.random.normal(key, x.shape)
    if clip_range is not None:
        x = jnp.clip(x, clip_range[0], clip_range[1])
    return x


def langevin_sample(energy_fn, key, x_init, *, num_steps: int, step_size, noise_scale=None, grad_clip=None,
                    clip_range=None):
    """Unadjusted Langevin dynamics on an energy: x <- x - step_size * ∇E(x) + noise_scale * N(0, I).

    With the default ``noise_scale = sqrt(2 step_size)`` this is the Euler-Maruyama discretisation of the
    Langevin diffusion dx = -∇E(x) dt + sqrt(2) dW, whose stationary law is p(x) ∝ exp(-E(x)) (low energy
    = high density), up to an O(step_size) discretisation bias (no Metropolis correction; Welling & Teh
    2011). Du & Mordatch (2019) decouple the two: a smaller ``noise_scale`` trades exactness for faster
    mixing into low-energy modes during EBM training (e.g. step size 10 and noise 0.005 on images in
    [0, 1]); any ``noise_scale >= 0`` is accepted here.

    Args:
      energy_fn: ``E(x [B, ...]) -> [B]``; the chain follows the gradient of ``E(x).sum()``, i.e. each
        example's own energy gradient (examples must not interact).
      key: PRNG key for the noise.
      x_init: starting points [B, ...] (float).
      num_steps: number of Langevin steps (static int >= 1).
      step_size: step size (the drift coefficient; float > 0, may be traced).
      noise_scale: std of the Gaussian noise added per step (default sqrt(2 step_size)).
      grad_clip: if given, each example's energy gradient is rescaled to L2 norm (over its event axes)
        <= grad_clip before the step. Norm clipping keeps the drift's direction; it bounds the jump of a
        chain that lands where the energy is steep, which otherwise can throw it far out of the data
        region early in EBM training (our choice; Du & Mordatch 2019 stabilise the chain in the same spirit).
      clip_range: ``(lo, hi)``: clamp x into the box after every step (e.g. (-1, 1) for images in model
        space, as Du & Mordatch clamp to the image range).

    Returns:
      x [B, ...] after ``num_steps`` steps (float32).
    """
    _check_count("num_steps", num_steps)
    _check_nonneg("step_size", step_size, strict=True)
    if noise_scale is not None:
        _check_nonneg("noise_scale", noise_scale)
    if grad_clip is not None:
        _check_nonneg("grad_clip", grad_clip, strict=True)
    if clip_range is not None:
        if len(clip_range) != 2 or (isinstance(clip_range[0], numbers.Number)
                                    and isinstance(clip_range[1], numbers.Number) and clip_range[0] >= clip_range[1]):
            raise GMJaxError(f"clip_range must be a pair (lo, hi) with lo < hi, got {clip_range}")
    x_init = jnp.asarray(x_init, jnp.float32)
    if x_init.ndim < 1:
        raise GMJaxError(f"x_init must be a batch [B, ...], got shape {x_init.shape}")
    check_batch_values("langevin_sample", "energy_fn(x)", jax.eval_shape(energy_fn, x_init), x_init.shape[0])

    def step(x, k):
        return langevin_step(energy_fn, x, k, step_size=step_size, noise_scale=noise_scale, grad_clip=grad_clip,
                             clip_range=clip_range), None

    x, _ = jax.lax.scan(step, x_init, jax.random.split(key, num_steps))
    return x


def annealed_langevin_step(score_fn, x, sigma, key, *, step_size):
    """One step x <- x + step_size / 2 s(x, sigma) + sqrt(step_size) z at the noise level ``sigma`` [B]:
    the kernel of :func:`annealed_langevin_sample` (there step_size = step_lr sigma^2 / sigma_L^2)."""
    score = check_output("annealed_langevin_sample", "score_fn(x, sigma)", score_fn(x, sigma), x.shape)
    return x + 0.5 * step_size * score + jnp.sqrt(step_size) * jax.random.normal(key, x.shape)


def annealed_langevin_sample(score_fn, sigmas, key, x_init, *, steps_per_sigma: int = 100, step_lr=2e-5,
                             denoise: bool = True):
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1).

    For each level sigma_i of the decreasing sequence ``sigmas`` and T = ``steps_per_sigma`` steps:
    x <- x + alpha_i / 2 * s(x, sigma_i) + sqrt(alpha_i) z, with alpha_i = step_lr * sigma_i^2 / sigma_L^2
    (so the signal-to-noise ratio of each step is the same at every level). With ``denoise`` a last
    step x <- x + sigma_L^2 s(x, sigma_L) replaces x by Tweedie's estimate E[x_0 | x] of the clean data,
    removing the sigma_L-sized noise the chain still carries (Jolicoeur-Martineau et al. 2021, "Adversarial
    score matching and improved sampling for image generation"; Song & Ermon 2020, NCSNv2).

    Args:
      score_fn: ``s(x [B, ...], sigma float32 [B]) -> [B, ...]``, the score of the data convolved with
        N(0, sigma^2 I).
      sigmas: noise levels [L], decreasing (sigma_1 > ... > sigma_L > 0).
      key: PRNG key.
      x_init: starting points [B, ...] (Song & Ermon: uniform noise).
      steps_per_sigma: T >= 1 (static).
      step_lr: epsilon of Alg. 1 (> 0).
      denoise: apply the final denoising step.

    Returns:
      x [B, ...] float32.
    """
    _check_count("steps_per_sigma", steps_per_sigma)
    _check_nonneg("step_lr", step_lr, strict=True)
    try:
        s = np.asarray(sigmas, np.float64)
    except jax.errors.TracerArrayConversionError:  # traced levels: only checkable at run time
        s = None
    if s is not None:
        if s.ndim != 1 or s.size < 1:
            raise GMJaxError(f"sigmas must be a non-empty 1-D array of noise levels, got shape {s.shape}")
        if np.any(s <= 0) or np.any(np.diff(s) >= 0):
            raise GMJaxError("sigmas must be positive and strictly decreasing (largest level first), "
                             f"got {s.tolist()}")
    sigmas = jnp.asarray(sigmas, jnp.float32)
    x_init = jnp.asarray(x_init, jnp.float32)
    batch = x_init.shape[0]
    sigma_last = sigmas[-1]

    def level(x, inputs):
        sigma, k = inputs
        alpha = step_lr * jnp.square(sigma / sigma_last)
        sig = jnp.full((batch,), sigma, jnp.float32)

        def step(x, kk):
            return annealed_langevin_step(score_fn, x, sig, kk, step_size=alpha), None

        x, _ = jax.lax.scan(step, x, jax.random.split(k, steps_per_sigma))
        return x, None

    x, _ = jax.lax.scan(level, x_init, (sigmas, jax.random.split(key, sigmas.shape[0])))
    if denoise:
        score = check_output("annealed_langevin_sample", "score_fn(x, sigma)",
                             score_fn(x, jnp.full((batch,), sigma_last, jnp.float32)), x.shape)
        x = x + jnp.square(sigma_last) * score
    return x


# --------------------------------------------------------------------------------------------- buffer
def uniform_init(key, shape, minval: float = -1.0, maxval: float = 1.0):
    """Fresh chain starts: uniform noise on [minval, maxval] (Du & Mordatch 2019), float32 of ``shape``."""
    return jax.random.uniform(key, shape, jnp.float32, minval, maxval)


def replay_buffer_init(key, capacity: int, shape, init_fn=uniform_init):
    """A replay buffer of ``capacity`` persistent chains, each of example shape ``shape``, filled with
    ``init_fn(key, (capacity, *shape))``. Returns the pytree ``{"samples": [capacity, *shape] float32}``."""
    _check_count("capacity", capacity)
    samples = jnp.asarray(init_fn(key, (capacity,) + tuple(shape)), jnp.float32)
    if samples.shape != (capacity,) + tuple(shape):
        raise GMJaxError(f"init_fn(key, shape) must return an array of that shape, {(capacity,) + tuple(shape)}; "
                         f"got {samples.shape}")
    return {"samples": samples}


def replay_buffer_sample(buffer, key, batch_size: int, reinit_prob=0.05, init_fn=uniform_init):
    """Draws chain starts for a batch (Du & Mordatch 2019, section 3.1).

    ``batch_size`` slots are drawn uniformly with replacement; each start is, independently with
    probability ``reinit_prob``, replaced by fresh noise ``init_fn`` (so the buffer keeps exploring
    instead of collapsing onto a few old chains; Du & Mordatch use 5%).

    Returns:
      (x_init [batch_size, *shape] float32, indices int32 [batch_size]): write the chains' end points
      back to ``indices`` with :func:`replay_buffer_update`. Writing back to the drawn slots keeps the
      buffer's shape fixed (a persistent-chain buffer, as in Grathwohl et al. 2020's JEM), where Du &
      Mordatch append to a first-in-first-out buffer.
    """
    _check_count("batch_size", batch_size)
    if isinstance(reinit_prob, numbers.Number) and not 0.0 <= reinit_prob <= 1.0:
        raise GMJaxError(f"reinit_prob must be in [0, 1], got {reinit_prob}")
    samples = buffer["samples"]
    k_idx, k_mask, k_init = jax.random.split(key, 3)
    indices = jax.random.randint(k_idx, (batch_size,), 0, samples.shape[0], jnp.int32)
    old = samples[indices]
    fresh = jnp.asarray(init_fn(k_init, old.shape), jnp.float32)
    reinit = jax.random.bernoulli(k_mask, reinit_prob, (batch_size,))
    return jnp.where(_per_example(reinit, old), fresh, old), indices


def replay_buffer_update(buffer, indices, x_new):
    """Writes x_new [B, *shape] into rows ``indices`` [B] of the buffer; returns the new buffer. When an
    index repeats, one of its rows is kept (which one is unspecified)."""
    samples = buffer["samples"]
    if x_new.shape[1:] != samples.shape[1:] or jnp.shape(indices) != x_new.shape[:1]:
        raise GMJaxError(f"replay_buffer_update needs x_new [B, *{samples.shape[1:]}] and indices [B]; got "
                         f"x_new {x_new.shape} and indices {jnp.shape(indices)}")
    new = samples.at[indices].set(jax.lax.stop_gradient(x_new).astype(samples.dtype))
    return {**buffer, "samples": new}
