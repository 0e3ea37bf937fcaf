"""The DDPM U-Net (Ho et al. 2020), its sinusoidal time embedding, and the time-conditioned MLP.

One tiny class-conditional U-Net is compiled once (init, apply in float32 and bf16, train-mode apply) and
shared; its zero-initialised layers are perturbed wherever a test needs every input to reach the output.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.nets import TimeMLP, UNet, timestep_embedding


# ------------------------------------------------------------------------------------- time embedding


def test_timestep_embedding_is_the_sinusoid_and_its_inner_product_depends_only_on_time_differences():
    t = jnp.array([0.0, 1.0, 17.0, 999.0, 3.25])
    dim, half = 10, 5
    emb = np.asarray(timestep_embedding(t, dim), np.float64)
    w = 10000.0 ** (-np.arange(half) / (half - 1))  # 1 .. 1/10000
    np.testing.assert_allclose(emb, np.concatenate([np.sin(np.outer(t, w)), np.cos(np.outer(t, w))], 1), atol=2e-4)
    # <e(t), e(s)> = sum_k cos(w_k (t - s)) (sin a sin b + cos a cos b = cos(a - b)): the relative-position
    # property of Transformer embeddings; checked on large times where float32 phases still agree.
    s = jnp.array([5.0, 1.0, 900.0, 0.0, 3.0])
    gram = (emb * np.asarray(timestep_embedding(s, dim))).sum(1)
    np.testing.assert_allclose(gram, np.cos(np.outer(np.asarray(t - s), w)).sum(1), atol=2e-3)
    odd = timestep_embedding(jnp.arange(3), 7)
    assert odd.shape == (3, 7) and bool((odd[:, -1] == 0).all()) and odd.dtype == jnp.float32
    with pytest.raises(GMJaxError, match="shape \\[B\\]"):
        timestep_embedding(jnp.zeros((2, 1)), 8)


# ------------------------------------------------------------------------------------------------ UNet


def test_cifar10_configuration_has_the_reported_35_7M_parameters():
    x, t = jnp.zeros((1, 32, 32, 3)), jnp.zeros((1,), jnp.int32)
    count = lambda m: sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(
        jax.eval_shape(m.init, jax.random.key(0), x, t)))
    n = count(UNet())
    assert round(n / 1e6, 1) == 35.7 and n == 35_746_307  # Ho et al. 2020, appendix B: 35.7M
    # A learned variance doubles only the output conv: 3 more filters of 3x3x128 (+ bias).
    assert count(UNet(out_channels=6)) - n == 3 * (9 * 128 + 1)
    # bf16 compute keeps float32 parameters.
    shapes = jax.eval_shape(UNet(dtype=jnp.bfloat16).init, jax.random.key(0), x, t)
    assert {p.dtype for p in jax.tree_util.tree_leaves(shapes)} == {jnp.dtype(jnp.float32)}


TINY = dict(channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(4,), dropout=0.1,
            num_classes=3, num_groups=32)  # 32 groups clamp to 4 and 8 (4 channels each)


@pytest.fixture(scope="module")
def tiny():
    """Jitted init / apply (float32 and bf16 compute) / train-mode apply of a tiny class-conditional net."""
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
    net, net16 = UNet(**TINY), UNet(**TINY, dtype=jnp.bfloat16)
    init = jax.jit(lambda k: net.init(k, x, jnp.zeros(2), jnp.zeros(2, jnp.int32)))
    # Times are cast to float32 outside so int and float times share one compilation.
    apply = jax.jit(lambda p, x, t, y: net.apply(p, x, t.astype(jnp.float32), y))
    apply16 = jax.jit(lambda p, x, t, y: net16.apply(p, x, t.astype(jnp.float32), y))
    train = jax.jit(lambda p, x, t, y, k: net.apply(p, x, t, y, train=True, rngs={"dropout": k}))
    params = init(jax.random.key(0))
    # Every parameter perturbed, so the zero-initialised layers pass the inputs' influence through.
    rng = np.random.default_rng(0)
    perturbed = jax.tree_util.tree_map(lambda w: w + rng.normal(0, 0.2, w.shape).astype(np.float32), params)
    return dict(x=x, init=init, params=params, perturbed=perturbed, apply=apply, apply16=apply16, train=train)


def test_unet_real_init_starts_at_zero_output_with_glorot_weights(tiny):
    x, params, init, apply = tiny["x"], tiny["params"], tiny["init"], tiny["apply"]
    t, y = jnp.array([3, 700]), jnp.array([0, 3])
    assert bool((apply(params, x, t, y) == 0).all())  # zero-initialised output conv
    # Weights are U(-l, l) with variance 1 / fan_avg (Glorot, as Ho et al.), reproducible from the key.
    p = params["params"]
    # up_0_block_0 sees the upsampled level-1 features (32) concatenated with down_0_block_0's skip (16).
    assert p["up_0_block_0"]["conv1"]["kernel"].shape == (3, 3, 48, 16)
    for w, fan_avg in [(p["temb_dense1"]["kernel"], 64), (p["up_0_block_0"]["conv1"]["kernel"], 9 * (48 + 16) / 2)]:
        w = np.asarray(w).ravel()
        assert abs(w.var() * fan_avg - 1) < 5 * np.sqrt(0.8 / w.size) and np.abs(w).max() <= np.sqrt(3 / fan_avg)
    assert float(jnp.abs(p["up_0_block_0"]["conv2"]["kernel"]).max()) == 0  # residual branches start at 0
    emb = np.asarray(p["label_emb"]["embedding"])
    assert emb.shape == (4, 64) and abs(emb.var() - 1) < 0.2  # num_classes + 1 rows (null label), unit variance
    other = init(jax.random.key(1))["params"]["temb_dense1"]["kernel"]
    assert abs(np.corrcoef(np.ravel(other), np.ravel(p["temb_dense1"]["kernel"]))[0, 1]) < 0.1
    np.testing.assert_array_equal(init(jax.random.key(0))["params"]["temb_dense1"]["kernel"],
                                  p["temb_dense1"]["kernel"])


def test_unet_shapes_dtypes_and_bf16_compute_agrees_with_float32(tiny):
    params, x = tiny["perturbed"], tiny["x"]
    t, y = jnp.array([3, 700]), jnp.array([0, 2])
    out, out16 = tiny["apply"](params, x, t, y), tiny["apply16"](params, x, t, y)
    assert out.shape == out16.shape == x.shape and out.dtype == out16.dtype == jnp.float32
    assert bool(jnp.isfinite(out).all()) and float(jnp.std(out)) > 0.1
    rel = float(jnp.linalg.norm(out16 - out) / jnp.linalg.norm(out))
    assert rel < 0.05, rel  # bf16 keeps ~3 significant digits per op


def test_unet_output_depends_on_time_label_and_dropout_but_each_example_only_on_its_own_inputs(tiny):
    params, x, apply, train = tiny["perturbed"], tiny["x"], tiny["apply"], tiny["train"]
    t, y = jnp.array([10, 10]), jnp.array([1, 1])
    base = apply(params, x, t, y)
    differs = lambda a, b: float(jnp.max(jnp.abs(a - b))) > 1e-3
    # Time and label change example 0 only (no mixing across the batch, e.g. through normalisation).
    for out in (apply(params, x, jnp.array([500, 10]), y), apply(params, x, t, jnp.array([3, 1]))):  # 3 = null
        assert differs(out[0], base[0]) and not differs(out[1], base[1])
    # Float times are embedded as given: t = 10.0 is t = 10, a fractional time differs.
    np.testing.assert_allclose(apply(params, x, t.astype(jnp.float32), y), base, atol=1e-5)
    assert differs(apply(params, x, jnp.array([10.5, 10.5]), y), base)
    # Dropout is active only in training, and draws from the 'dropout' rng.
    a, b = train(params, x, t, y, jax.random.key(0)), train(params, x, t, y, jax.random.key(1))
    assert differs(a, b) and differs(a, base)
    np.testing.assert_array_equal(a, train(params, x, t, y, jax.random.key(0)))


def test_unet_rejects_bad_inputs(tiny):
    net, x, t, y = UNet(**TINY), tiny["x"], jnp.array([0, 1]), jnp.array([0, 1])
    for args, match in [((jnp.ones((2, 5, 4, 1)), t, y), "divisible by 2"), ((x[..., 0], t, y), "\\[B, H, W, C\\]"),
                        ((x, t), "pass labels"), ((x, jnp.zeros(3), y), "t must have shape"),
                        ((x, t, y[:1]), "labels must have shape")]:
        with pytest.raises(GMJaxError, match=match):
            net.apply(tiny["params"], *args)
    with pytest.raises(GMJaxError, match="unconditional"):
        UNet(channels=8).init(jax.random.key(0), x, t, y)


# --------------------------------------------------------------------------------------------- TimeMLP


def test_time_mlp_shapes_zero_init_and_conditioning():
    net = TimeMLP(hidden=(32, 32), out_dim=3, num_classes=2, embed_dim=16)
    x, t, y = jax.random.normal(jax.random.key(0), (4, 2)), jnp.array([0.0, 0.5, 1.0, 2.0]), jnp.array([0, 1, 2, 0])
    params = jax.jit(net.init)(jax.random.key(0), x, t, y)
    out = jax.jit(net.apply)(params, x, t, y)
    assert out.shape == (4, 3) and out.dtype == jnp.float32 and bool((out == 0).all())
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(lambda w: w + rng.normal(0, 0.2, w.shape).astype(np.float32), params)
    apply = jax.jit(net.apply)
    base = apply(params, x, t, y)
    for out in (apply(params, x, t.at[0].set(9.0), y), apply(params, x, t, y.at[0].set(2))):
        assert float(jnp.abs(out[0] - base[0]).max()) > 1e-3 and bool((out[1:] == base[1:]).all())
    out16 = jax.jit(TimeMLP(hidden=(32, 32), out_dim=3, num_classes=2, embed_dim=16, dtype=jnp.bfloat16).apply)(
        params, x, t, y)
    assert out16.dtype == jnp.float32
    np.testing.assert_allclose(out16, base, atol=0.05 * float(jnp.abs(base).max()))
    assert jax.eval_shape(TimeMLP(hidden=(8,)).init_with_output, jax.random.key(0), x, t)[0].shape == (4, 2)
    with pytest.raises(GMJaxError, match="pass labels"):
        net.apply(params, x, t)
