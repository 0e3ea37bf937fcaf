"""Perceptual path length against independent oracles: linear generators, whose path derivative is known in closed
form (the chord for lerp, the derivative of slerp), and a sort-based reimplementation of the percentile filter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.metrics.path_length import perceptual_path_length


def _linear(a):
    """G(z) = A z on the flattened code, at full float32 matmul precision."""
    a = jnp.asarray(a, jnp.float32)
    return lambda z: jnp.matmul(z.reshape(z.shape[0], -1), a.T, precision=jax.lax.Precision.HIGHEST)


def _identity(x):
    return x


def _redraw(key, n, shape):
    """z0, z1 [n, Z] and t [n] as documented, in float64 numpy."""
    k0, k1, kt = jax.random.split(key, 3)
    z0 = np.asarray(jax.random.normal(k0, (n, *shape)), np.float64).reshape(n, -1)
    z1 = np.asarray(jax.random.normal(k1, (n, *shape)), np.float64).reshape(n, -1)
    t = np.asarray(jax.random.uniform(kt, (n,)), np.float64)
    return z0, z1, t


def test_lerp_through_linear_generator_is_the_squared_chord():
    # G(z) = A z and lerp: (G(b) - G(a)) / eps = A (z1 - z0) for every t and eps, so d_i = ||A (z1 - z0)||^2.
    rng = np.random.default_rng(0)
    shape = (2, 3)
    a = rng.normal(size=(5, 6))
    key = jax.random.key(1)
    z0, z1, _ = _redraw(key, 40, shape)
    want = (((z1 - z0) @ a.T) ** 2).sum(1)
    big = perceptual_path_length(_linear(a), _identity, key, num_paths=40, latent_shape=shape, epsilon=0.5,
                                 interpolation="lerp", batch_size=7)
    np.testing.assert_allclose(big["distances"], want, rtol=2e-5)   # float32 generator, no cancellation
    # Karras' step 1e-4: the float32 generator's rounding divided by eps (~1e-3 relative, see the module notes).
    small = perceptual_path_length(_linear(a), _identity, key, num_paths=40, latent_shape=shape,
                                   interpolation="lerp", batch_size=7)
    np.testing.assert_allclose(small["distances"], want, rtol=1e-2)
    assert big["distances"].dtype == np.float64 and big["distances"].shape == (40,)
    assert big["num_kept"] == 40   # 40 paths: the 1st/99th percentiles with lower/higher are the min and max
    assert big["ppl"] == pytest.approx(want.mean(), rel=2e-5)


def test_slerp_through_linear_generator_matches_the_slerp_derivative():
    # d/dt slerp(z0, z1, t) = w (-cos((1 - t) w) z0 + cos(t w) z1) / sin(w), w the angle between z0 and z1;
    # a forward difference of step eps is within O(eps w) relative of ||A slerp'(t)||^2.
    rng = np.random.default_rng(1)
    shape = (2, 4)
    a = rng.normal(size=(3, 8))
    key = jax.random.key(2)
    z0, z1, t = _redraw(key, 60, shape)
    w = np.arccos(np.sum(z0 * z1, 1) / (np.linalg.norm(z0, axis=1) * np.linalg.norm(z1, axis=1)))[:, None]
    dz = w * (-np.cos((1 - t[:, None]) * w) * z0 + np.cos(t[:, None] * w) * z1) / np.sin(w)
    want = ((dz @ a.T) ** 2).sum(1)
    got = perceptual_path_length(_linear(a), _identity, key, num_paths=60, latent_shape=shape, epsilon=1e-3,
                                 interpolation="slerp", batch_size=16)
    np.testing.assert_allclose(got["distances"], want, rtol=1e-2)
    # slerp is not lerp: the chord would be far off for these codes.
    chord = (((z1 - z0) @ a.T) ** 2).sum(1)
    assert np.max(np.abs(got["distances"] / chord - 1)) > 0.1


def _percentile_oracle(d, lo, hi):
    """Karras' filter without np.percentile: the 'lower' q-th percentile of n values is the floor(q/100 (n-1))-th
    smallest, the 'higher' one the ceil(q/100 (n-1))-th; both bounds are kept."""
    s = np.sort(d)
    n = len(d)
    low, high = s[int(np.floor(lo / 100 * (n - 1)))], s[int(np.ceil(hi / 100 * (n - 1)))]
    kept = d[(d >= low) & (d <= high)]
    return kept.mean(), kept.size


@pytest.mark.parametrize("percentiles", [(1.0, 99.0), (10.0, 75.0), (0.0, 100.0)])
def test_percentile_filter_matches_a_sort_based_reimplementation(percentiles):
    # A nonlinear generator with heavy-tailed path lengths, so the filter matters.
    gen = lambda z: jnp.tanh(z) * jnp.exp(z[:, :1])
    got = perceptual_path_length(gen, _identity, jax.random.key(3), num_paths=203, latent_shape=(4,),
                                 epsilon=1e-3, batch_size=64, percentiles=percentiles)
    mean, size = _percentile_oracle(got["distances"], *percentiles)
    assert got["num_kept"] == size
    assert got["ppl"] == pytest.approx(mean, rel=1e-12)
    if percentiles == (1.0, 99.0):
        assert size == 199   # keeps sorted[2] (floor(0.01 * 202)) to sorted[200] (ceil(0.99 * 202))
        assert got["ppl"] != pytest.approx(got["distances"].mean(), rel=1e-3)
    if percentiles == (0.0, 100.0):
        assert size == 203


def test_results_do_not_depend_on_batch_size():
    gen = lambda z: jnp.sin(z) * 2.0
    kw = dict(num_paths=23, latent_shape=(3,), epsilon=1e-2)
    ref = perceptual_path_length(gen, _identity, jax.random.key(4), batch_size=100, **kw)["distances"]
    for b in (1, 5):
        got = perceptual_path_length(gen, _identity, jax.random.key(4), batch_size=b, **kw)["distances"]
        np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_constant_generator_has_zero_path_length():
    gen = lambda z: jnp.ones((z.shape[0], 3, 2)) * 0.7
    feats = lambda x: x.reshape(x.shape[0], -1)
    got = perceptual_path_length(gen, feats, jax.random.key(5), num_paths=12, latent_shape=(5,), batch_size=5)
    assert got["ppl"] == 0.0 and np.all(got["distances"] == 0.0) and got["num_kept"] == 12


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(num_paths=0), "num_paths must be a positive integer"),
    (dict(num_paths=2.5), "num_paths must be a positive integer"),
    (dict(num_paths="4"), "num_paths must be a positive integer"),
    (dict(epsilon=0.0), "epsilon must be a positive finite step"),
    (dict(epsilon=-1e-4), "epsilon must be a positive finite step"),
    (dict(epsilon=float("nan")), "epsilon must be a positive finite step"),
    (dict(interpolation="nlerp"), "interpolation must be 'slerp' or 'lerp'"),
    (dict(percentiles=(99.0, 1.0)), "percentiles must satisfy 0 <= lo < hi <= 100"),
    (dict(percentiles=(-1.0, 99.0)), "percentiles must satisfy 0 <= lo < hi <= 100"),
    (dict(percentiles=(1.0, 101.0)), "percentiles must satisfy 0 <= lo < hi <= 100"),
    (dict(percentiles=(5.0, 5.0)), "percentiles must satisfy 0 <= lo < hi <= 100"),
    (dict(percentiles=5.0), r"percentiles must be a pair"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(latent_shape=(0,)), "latent_shape must be a non-empty tuple"),
    (dict(latent_shape=None), "latent_shape must be a non-empty tuple"),
    (dict(latent_shape=(2.5,)), "latent_shape must be a non-empty tuple"),
])
def test_bad_arguments_give_one_clear_error(kwargs, pattern):
    args = dict(num_paths=4, latent_shape=(3,))
    args.update(kwargs)
    with pytest.raises(GMJaxError, match=r"^perceptual_path_length: " + pattern) as e:
        perceptual_path_length(lambda z: z, _identity, jax.random.key(0), **args)
    _one_line(e)


def test_bad_functions_and_outputs_give_one_clear_error():
    key = jax.random.key(0)
    with pytest.raises(GMJaxError, match="must be a JAX PRNG key") as e:
        perceptual_path_length(lambda z: z, _identity, 0, num_paths=4, latent_shape=(3,))
    _one_line(e)
    with pytest.raises(GMJaxError, match=r"features_fn must return \[B, D\].*got shape \(8, 3, 1\)") as e:
        perceptual_path_length(lambda z: z[..., None], _identity, key, num_paths=4, latent_shape=(3,))
    _one_line(e)
    with pytest.raises(GMJaxError, match="4 of 4 path distances are NaN or inf") as e:
        perceptual_path_length(lambda z: jnp.log(-jnp.abs(z) - 1), _identity, key, num_paths=4, latent_shape=(3,))
    _one_line(e)
