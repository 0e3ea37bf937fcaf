"""Perceptual path length (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks", sec. 3, and their ``metrics/perceptual_path_length.py``): how fast a generator's output
changes, in a feature space, as its latent code moves along a short step of an interpolation path.

For each of ``num_paths`` paths, with z0, z1 ~ N(0, I), t ~ U(0, 1) and interp = slerp or lerp
(:mod:`gm_jax.samplers.interpolation`) on the codes flattened to vectors,

    d_i = || F(G(interp(z0, z1, t))) - F(G(interp(z0, z1, t + eps))) ||^2 / eps^2,

a finite-difference estimate of ||d/dt F(G(interp(z0, z1, t)))||^2. PPL is the mean of the d_i that lie within
the [1st, 99th] percentiles of all of them (Karras' code: ``np.percentile`` with ``'lower'`` for the low bound,
``'higher'`` for the high one, both bounds kept).

Differences from the paper. Karras use LPIPS (a learned, weighted squared distance between VGG-16 activations)
on 256x256 face crops as F; here F is any feature map ``features_fn`` and the distance is the plain squared
Euclidean one, so put any cropping, resizing or channel weighting into ``features_fn``; numbers are comparable
with published ones only for the same generator, feature map and epsilon. Karras' slerp also normalises both
end codes and the result to the unit sphere (their generator normalises z first anyway); this one uses the
library's :func:`~gm_jax.samplers.interpolation.slerp` on the raw codes.

Numerics. The generator sees float32 codes, but the path points a = interp(t), b = interp(t + eps) are computed
in float64 (under a local x64 context) and only then rounded to float32, so the step t -> t + eps itself is not
rounded (in float32 ``t + 1e-4`` carries up to 6e-4 relative error). The feature differences are summed in
float64. What remains is the generator's own float32 rounding, amplified by 1/eps in the difference: with
eps = 1e-4, outputs of size ~1 and float32 arithmetic the d_i carry ~1e-3 relative error. Matmuls at reduced
precision (TF32 or bfloat16 on GPUs/TPUs, ~1e-3 relative) swamp a 1e-4 step entirely: run the generator with
``jax.default_matmul_precision("highest")`` or use a larger epsilon.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import x64
from gm_jax.samplers.interpolation import lerp, slerp

__all__ = ["perceptual_path_length"]

_INTERPOLATIONS = {"slerp": slerp, "lerp": lerp}


@functools.partial(jax.jit, static_argnames=("batch", "interpolation", "epsilon"))
def _endpoints_x64(z0, z1, t, start, batch: int, interpolation: str, epsilon: float):
    """Rows [start, start + batch) of the paths: (a, b), each [batch, Z] float32, computed in float64."""
    interp = _INTERPOLATIONS[interpolation]
    rows = lambda v: jax.lax.dynamic_slice_in_dim(v, start, batch).astype(jnp.float64)
    z0, z1, t = rows(z0), rows(z1), rows(t)
    one = lambda a, b, s: interp(a, b, s[None])[0]   # the library's paths take t [T]; here one t per path
    pa = jax.vmap(one)(z0, z1, t)
    pb = jax.vmap(one)(z0, z1, t + epsilon)
    return pa.astype(jnp.float32), pb.astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _sq_dist_x64(diff, epsilon: float):
    d = diff.astype(jnp.float64)
    return jnp.sum(d * d, axis=-1) / (epsilon * epsilon)


def _is_count(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v) \
        and int(v) == v and v >= 1


def _check(num_paths, latent_shape, epsilon, interpolation, batch_size, percentiles, generate_fn, features_fn,
           key):
    fn = "perceptual_path_length"
    if not callable(generate_fn) or not callable(features_fn):
        raise GMJaxError(f"{fn}: generate_fn and features_fn must be functions (z -> x and x -> [B, D])")
    if isinstance(key, (int, np.integer)):
        raise GMJaxError(f"{fn}: key must be a JAX PRNG key, got the integer {key}; pass jax.random.key({key})")
    if not _is_count(num_paths):
        raise GMJaxError(f"{fn}: num_paths must be a positive integer, got {num_paths!r}")
    if not _is_count(batch_size):
        raise GMJaxError(f"{fn}: batch_size must be a positive integer, got {batch_size!r}")
    try:
        shape = (latent_shape,) if isinstance(latent_shape, (int, np.integer)) else tuple(latent_shape)
    except TypeError:
        shape = ()
    if not shape or any(not isinstance(s, (int, np.integer)) or isinstance(s, bool) or int(s) != s or s < 1 for s in shape):
        raise GMJaxError(f"{fn}: latent_shape must be a non-empty tuple of positive integers, got {latent_shape!r}")
    if not (isinstance(epsilon, (int, float, np.floating)) and math.isfinite(epsilon) and epsilon > 0):
        raise GMJaxError(f"{fn}: epsilon must be a positive finite step along the path (1e-4 in Karras et al.), "
                         f"got {epsilon!r}")
    if not isinstance(interpolation, str) or interpolation not in _INTERPOLATIONS:
        raise GMJaxError(f"{fn}: interpolation must be 'slerp' or 'lerp', got {interpolation!r}")
    try:
        lo, hi = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise GMJaxError(f"{fn}: percentiles must be a pair (lo, hi), got {percentiles!r}") from None
    if not 0.0 <= lo < hi <= 100.0:
        raise GMJaxError(f"{fn}: percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles!r}")
    return tuple(int(s) for s in shape), lo, hi


def perceptual_path_length(generate_fn, features_fn, key, *, num_paths: int, latent_shape, epsilon: float = 1e-4,
                           interpolation: str = "slerp", batch_size: int = 100,
                           percentiles=(1.0, 99.0)) -> dict:
    """Perceptual path length of a generator in the feature space of ``features_fn``.

    Args:
      generate_fn: z [B, *latent_shape] float32 -> x (any shape with leading B, float). Jittable.
      features_fn: x -> [B, D] features (LPIPS-like embeddings, a domain classifier's penultimate layer, or
        the identity for low-dimensional data). Jittable.
      key: JAX PRNG key. The paths are drawn as ``k0, k1, kt = jax.random.split(key, 3)``,
        ``z0 = jax.random.normal(k0, (num_paths, *latent_shape))``, ``z1`` likewise from ``k1`` (float32) and
        ``t = jax.random.uniform(kt, (num_paths,))`` (float32, in [0, 1)), so a caller can redraw them.
      num_paths: number of paths (100,000 in Karras et al.).
      latent_shape: shape of one code, e.g. ``(512,)``; the interpolation acts on the flattened code.
      epsilon: the step in t (Karras: 1e-4).
      interpolation: ``"slerp"`` (Karras, for z) or ``"lerp"`` (Karras, for the intermediate w).
      batch_size: paths per jitted call; each call evaluates ``generate_fn`` on 2 * batch_size codes (both ends
        of each step) and ``features_fn`` on its output. Results do not depend on it.
      percentiles: (lo, hi); the mean is over d_i with percentile(d, lo, 'lower') <= d_i <= percentile(d, hi,
        'higher'). ``(0, 100)`` keeps every path.
    Returns: dict with ``ppl`` (float, the filtered mean), ``distances`` (np.ndarray [num_paths] float64, all
      d_i, unfiltered, in the order of the drawn paths) and ``num_kept`` (int, paths inside the percentiles).
    Raises: GMJaxError on bad arguments, when ``features_fn`` does not return [B, D], or when some d_i is NaN/inf.
    """
    shape, lo, hi = _check(num_paths, latent_shape, epsilon, interpolation, batch_size, percentiles, generate_fn,
                           features_fn, key)
    n, eps = int(num_paths), float(epsilon)
    batch = int(min(batch_size, n))
    k0, k1, kt = jax.random.split(key, 3)
    z0 = jax.random.normal(k0, (n, *shape), jnp.float32).reshape(n, -1)
    z1 = jax.random.normal(k1, (n, *shape), jnp.float32).reshape(n, -1)
    t = jax.random.uniform(kt, (n,), jnp.float32)

    @jax.jit
    def feature_diff(a, b):
        x = generate_fn(jnp.concatenate([a, b]).reshape(2 * batch, *shape))
        f = features_fn(x)
        if jnp.ndim(f) != 2 or f.shape[0] != 2 * batch:
            raise GMJaxError(f"perceptual_path_length: features_fn must return [B, D] for a batch of B = "
                             f"{2 * batch} generated samples, got shape {tuple(jnp.shape(f))}")
        return f[batch:] - f[:batch]   # exact in float32 when the two are within a factor 2 (Sterbenz)

    out = np.empty(n, np.float64)
    for i in range(-(-n // batch)):
        start = min(i * batch, n - batch)   # the last batch overlaps the previous one instead of padding
        with x64():
            a, b = _endpoints_x64(z0, z1, t, start, batch, interpolation, eps)
        diff = feature_diff(a, b)
        with x64():
            out[start:start + batch] = np.asarray(_sq_dist_x64(diff, eps), np.float64)

    bad = n - int(np.count_nonzero(np.isfinite(out)))
    if bad:
        raise GMJaxError(f"perceptual_path_length: {bad} of {n} path distances are NaN or inf; check that "
                         f"generate_fn and features_fn give finite outputs")
    low = np.percentile(out, lo, method="lower")
    high = np.percentile(out, hi, method="higher")
    kept = out[(out >= low) & (out <= high)]
    return {"ppl": float(np.mean(kept)), "distances": out, "num_kept": int(kept.size)}
