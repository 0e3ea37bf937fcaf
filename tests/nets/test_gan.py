"""GAN networks: DCGAN, SNGAN ResNets with spectral normalisation, the style generator, the projection head.

XLA:CPU compilation dominates the cost, so each fixture traces its nets once inside one jitted function
(init + every apply a test needs) and the tests only read the results. Shape-only checks and input
validation use ``jax.eval_shape`` (tracing, no compilation).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.nets import (DCGANDiscriminator, DCGANGenerator, ProjectionHead, ResNetDiscriminator, ResNetGenerator,
                         StyleGenerator)

KEY = jax.random.key(0, impl="rbg")
BS = ["batch_stats"]


def _key(seed):
    return jax.random.key(seed, impl="rbg")


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _differs(a, b, tol=1e-4):
    return float(jnp.max(jnp.abs(a - b))) > tol


def _assert_per_example(out, out_p):
    """out_p is the output after perturbing example 0 only: example 0 changes, the others do not."""
    assert _differs(out_p[0], out[0])
    np.testing.assert_allclose(out_p[1:], out[1:], rtol=0, atol=1e-6)


def _perturb0(a):
    return a.at[0].add(0.5)


# ---------------------------------------------------------------------------------------- DCGAN, 8x8x1


@pytest.fixture(scope="module")
def dcgan8():
    """Class-conditional DCGAN pair at the digits shape 8x8x1 (f32 and bf16 compute), one compilation."""
    G = DCGANGenerator((8, 8, 1), width=8, num_classes=3)
    G16 = DCGANGenerator((8, 8, 1), width=8, num_classes=3, dtype=jnp.bfloat16)
    D = DCGANDiscriminator(width=8, num_classes=3)
    z = jax.random.normal(_key(1), (4, 16))
    x = jax.random.uniform(_key(2), (4, 8, 8, 1), minval=-1, maxval=1)
    y, y2 = jnp.array([0, 1, 2, 1]), jnp.array([2, 0, 1, 1])

    @jax.jit
    def run(key):
        kg, kd = jax.random.split(key)
        vg, vd = G.init(kg, z, y), D.init(kd, x, y)
        out_tr, upd = G.apply(vg, z, y, train=True, mutable=BS)
        return dict(vg=vg, vd=vd, out=G.apply(vg, z, y), out_p=G.apply(vg, _perturb0(z), y), out16=G16.apply(vg, z, y),
                    out_other_labels=G.apply(vg, z, y2), out_tr=out_tr, upd=upd,
                    logits=D.apply(vd, x, y), logits2=D.apply(vd, x, y2), logits_p=D.apply(vd, _perturb0(x), y),
                    phi=D.apply(vd, x, method="features"))

    return dict(r=run(KEY), z=z, x=x, y=y, y2=y2)


def test_dcgan_8x8_shapes_range_dtypes_and_batchnorm_modes(dcgan8):
    r = dcgan8["r"]
    assert r["out"].shape == (4, 8, 8, 1) and r["out"].dtype == jnp.float32
    assert float(jnp.abs(r["out"]).max()) <= 1.0 and float(jnp.std(r["out"])) > 1e-3
    assert r["logits"].shape == (4,) and r["logits"].dtype == jnp.float32
    # 8x8 is one stage: z -> 4x4x8 -> (stride-2 transposed conv) 8x8x1; the discriminator mirrors it.
    p = r["vg"]["params"]
    assert p["project"]["kernel"].shape == (16 + 16, 4 * 4 * 8) and p["to_image"]["kernel"].shape == (4, 4, 8, 1)
    assert r["vd"]["params"]["body"]["conv_0"]["kernel"].shape == (4, 4, 1, 8)
    assert r["phi"].shape == (4, 4 * 4 * 8)
    # All parameters float32; the label changes the image.
    assert {a.dtype for a in jax.tree_util.tree_leaves(r["vg"]["params"])} == {jnp.dtype(jnp.float32)}
    assert _differs(r["out_other_labels"][0], r["out"][0])
    # train=True normalises with batch statistics and updates the running averages (momentum 0.9).
    mean0 = r["upd"]["batch_stats"]["norm_0"]["bn"]["mean"]
    assert float(jnp.abs(mean0).max()) > 0 and bool((r["vg"]["batch_stats"]["norm_0"]["bn"]["mean"] == 0).all())
    assert _differs(r["out_tr"], r["out"])


def test_dcgan_bf16_compute_agrees_with_float32(dcgan8):
    r = dcgan8["r"]
    assert r["out16"].dtype == jnp.float32
    assert _rel(r["out16"], r["out"]) < 0.05, _rel(r["out16"], r["out"])


def test_dcgan_eval_outputs_depend_only_on_their_own_example(dcgan8):
    r = dcgan8["r"]
    _assert_per_example(r["out"], r["out_p"])
    _assert_per_example(r["logits"], r["logits_p"])


def test_projection_head_label_dependence_is_exactly_the_embedding_inner_product(dcgan8):
    r, y, y2 = dcgan8["r"], np.asarray(dcgan8["y"]), np.asarray(dcgan8["y2"])
    head = r["vd"]["params"]["head"]
    phi = np.asarray(r["phi"], np.float64)
    emb = np.asarray(head["embed"]["embedding"], np.float64)
    k, b = np.asarray(head["psi"]["kernel"], np.float64), np.asarray(head["psi"]["bias"], np.float64)
    diff = np.asarray(r["logits"], np.float64) - np.asarray(r["logits2"], np.float64)
    np.testing.assert_allclose(diff, np.sum((emb[y] - emb[y2]) * phi, -1), rtol=1e-4, atol=1e-4)
    assert abs(diff[3]) == 0  # same label, same logit
    np.testing.assert_allclose(r["logits"], phi @ k[:, 0] + b[0] + np.sum(emb[y] * phi, -1), rtol=1e-4, atol=1e-4)


def test_projection_head_alone_and_unconditional():
    phi = jax.random.normal(_key(3), (3, 5))
    head = ProjectionHead(num_classes=None)
    v = jax.jit(head.init)(KEY, phi)
    assert set(v["params"]) == {"psi"}
    psi = v["params"]["psi"]
    expected = phi @ psi["kernel"][:, 0] + psi["bias"]
    np.testing.assert_allclose(jax.jit(head.apply)(v, phi), expected, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------------------- 32x32x3 shapes


@pytest.fixture(scope="module")
def nets32():
    """Unconditional DCGAN pair and style generator at 32x32x3, with a perturbed-example rerun."""
    G = DCGANGenerator((32, 32, 3), width=4)
    D = DCGANDiscriminator(width=4)
    S = StyleGenerator((32, 32, 3), width=4, w_dim=8, mapping_layers=2)
    z = jax.random.normal(_key(4), (3, 8))
    x = jax.random.uniform(_key(5), (3, 32, 32, 3), minval=-1, maxval=1)

    @jax.jit
    def run(key):
        k1, k2, k3 = jax.random.split(key, 3)
        vg, vd, vs = G.init(k1, z), D.init(k2, x), S.init(k3, z)
        return dict(vg=vg, vs=vs, g=G.apply(vg, z), g_p=G.apply(vg, _perturb0(z)), d=D.apply(vd, x),
                    d_p=D.apply(vd, _perturb0(x)), s=S.apply(vs, z), s_p=S.apply(vs, _perturb0(z)))

    return run(KEY)


def test_32x32_dcgan_and_style_shapes_range_and_per_example(nets32):
    r = nets32
    for img in (r["g"], r["s"]):
        assert img.shape == (3, 32, 32, 3) and img.dtype == jnp.float32
        assert float(jnp.abs(img).max()) <= 1.0 and float(jnp.std(img)) > 1e-4
    assert r["d"].shape == (3,) and r["d"].dtype == jnp.float32
    # 32 = 4 * 2^3: projection to 4x4x(4 * 2^2), then 16, 8 channels and the image.
    p = r["vg"]["params"]
    assert p["project"]["kernel"].shape == (8, 4 * 4 * 16) and p["up_2"]["kernel"].shape == (4, 4, 8, 4)
    assert set(r["vs"]["params"]["synthesis_net"]) >= {"const", "res4_0", "res32_1", "to_rgb"}
    for a, b in [("g", "g_p"), ("d", "d_p"), ("s", "s_p")]:
        _assert_per_example(r[a], r[b])


def test_stage_counts_follow_the_image_size_and_the_paper_configuration():
    shapes = lambda net, *args: jax.tree_util.tree_map(jnp.shape, jax.eval_shape(net.init, KEY, *args))["params"]
    z = jnp.zeros((1, 100))
    # Radford et al.'s 64x64 generator: 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3.
    p = shapes(DCGANGenerator((64, 64, 3), width=128), z)
    assert p["project"]["kernel"] == (100, 4 * 4 * 1024)
    assert [p[f"up_{i}"]["kernel"][-1] for i in (1, 2, 3)] == [512, 256, 128] and p["to_image"]["kernel"][-1] == 3
    # 28 = 7 * 2^2 (MNIST): two stages from 7x7.
    p = shapes(DCGANGenerator((28, 28, 1), width=8), z)
    assert p["project"]["kernel"] == (100, 7 * 7 * 16) and "up_2" not in p
    d28, x28 = DCGANDiscriminator(width=8), jnp.zeros((2, 28, 28, 1))
    assert jax.eval_shape(lambda: d28.apply(d28.init(KEY, x28), x28)).shape == (2,)
    # Options: BatchNorm after every conv but the first, spectral norm on every conv and the head (train mode).
    d = DCGANDiscriminator(width=4, norm="batch", spectral_norm=True)
    x32 = jnp.zeros((2, 32, 32, 3))
    logits, upd = jax.eval_shape(lambda: d.apply(d.init(KEY, x32), x32, train=True, mutable=BS))
    assert logits.shape == (2,) and set(upd["batch_stats"]["body"]) == {"conv_0_sn", "conv_1_sn", "conv_2_sn",
                                                                        "norm_1", "norm_2"}
    # SNGAN CIFAR: generator 4 -> 8 -> 16 -> 32 with three up blocks; discriminator two down + two plain
    # blocks at width 128 and a 128-d phi.
    p = shapes(ResNetGenerator((32, 32, 3)), jnp.zeros((1, 128)))
    assert sorted(k for k in p if k.startswith("block")) == ["block_0", "block_1", "block_2"]
    assert p["project"]["kernel"] == (128, 4 * 4 * 256)
    p = shapes(ResNetDiscriminator(), jnp.zeros((1, 32, 32, 3)))
    assert sorted(p["body"]) == [f"block_{i}" for i in range(4)]
    assert "shortcut" in p["body"]["block_1"] and "shortcut" not in p["body"]["block_2"]
    assert p["head"]["psi"]["kernel"] == (128, 1)
    # The style generator at 16x16: 4x4 and 8x8 and 16x16 levels.
    p = shapes(StyleGenerator((16, 16, 1), width=4, w_dim=4, mapping_layers=1), jnp.zeros((1, 4)))
    assert {k for k in p["synthesis_net"] if k.startswith("res")} == {"res4_0", "res4_1", "res8_0", "res8_1",
                                                                      "res16_0", "res16_1"}


# ------------------------------------------------------------------------ SNGAN ResNets, spectral norm


def _l2n(a):
    return a / np.sqrt(np.sum(a * a) + 1e-12)


def _sn_effective(w, u):
    """The weight nn.SpectralNorm uses in the forward pass: one power-iteration step from the stored u, then
    w / sigma (reproduced in float64 numpy). Returns (w_eff with w's shape, sigma)."""
    mat = w.reshape(-1, w.shape[-1])
    v = _l2n(u @ mat.T)
    u1 = _l2n(v @ mat)
    sigma = float((v @ mat @ u1.T)[0, 0])
    return w / sigma, sigma


def _sn_kernels(variables):
    """[(path, kernel, u)] for every spectrally-normalised weight: batch_stats hold '<layer>/<param>/u' under
    the wrapper '<layer>_sn', params hold <layer>/<param> beside it."""
    out = []

    def walk(stats, params, path):
        for name, sub in stats.items():
            if isinstance(sub, dict):
                walk(sub, params, path + (name,))
            elif name.endswith("/u"):
                layer, param = name.split("/")[:2]
                node = params
                for p in path[:-1] + (layer,):
                    node = node[p]
                out.append(("/".join(path[:-1] + (layer, param)), np.asarray(node[param], np.float64),
                            np.asarray(sub, np.float64)))

    walk(variables["batch_stats"], variables["params"], ())
    return out


@pytest.fixture(scope="module")
def resnet8():
    """Conditional SNGAN pair at the digits shape 8x8x1 (tiny width; discriminator also in bf16); the
    discriminator's power iteration is run 200 steps."""
    G = ResNetGenerator((8, 8, 1), width=8, num_classes=3)
    D = ResNetDiscriminator(width=8, num_plain=1, num_classes=3)  # 8 -> 4, one plain block at 4x4
    D16 = ResNetDiscriminator(width=8, num_plain=1, num_classes=3, dtype=jnp.bfloat16)
    z = jax.random.normal(_key(6), (3, 8))
    x = jax.random.uniform(_key(7), (3, 8, 8, 1), minval=-1, maxval=1)
    y, y2 = jnp.array([0, 1, 2]), jnp.array([1, 1, 0])

    @jax.jit
    def run(key):
        k1, k2 = jax.random.split(key)
        vg, vd0 = G.init(k1, z, y), D.init(k2, x, y)
        logits_tr, upd = D.apply(vd0, x, y, train=True, mutable=BS)
        logits_tr_p, _ = D.apply(vd0, _perturb0(x), y, train=True, mutable=BS)

        def step(_, stats):  # one power-iteration step per train-mode call
            return D.apply({"params": vd0["params"], "batch_stats": stats}, x, y, train=True,
                           mutable=BS)[1]["batch_stats"]

        vd = {"params": vd0["params"], "batch_stats": jax.lax.fori_loop(0, 200, step, vd0["batch_stats"])}
        both = D.apply(vd, jnp.concatenate([x, x]), jnp.concatenate([y, y2]))  # the two labellings at once
        return dict(vg=vg, vd0=vd0, vd=vd, one_step=upd, g=G.apply(vg, z, y), g_p=G.apply(vg, _perturb0(z), y),
                    logits=both[:3], logits2=both[3:], logits_p=D.apply(vd, _perturb0(x), y),
                    logits16=D16.apply(vd, x, y), phi=D.apply(vd, x, method="features"), logits_tr=logits_tr,
                    logits_tr_p=logits_tr_p)

    return dict(r=run(KEY), y=y, y2=y2)


def test_resnet_8x8_shapes_bf16_and_per_example(resnet8):
    r = resnet8["r"]
    assert r["g"].shape == (3, 8, 8, 1) and r["g"].dtype == jnp.float32 and float(jnp.abs(r["g"]).max()) <= 1
    assert r["logits"].shape == (3,) and r["logits"].dtype == jnp.float32 and r["phi"].shape == (3, 8)
    # 8x8: one down block (8 -> 4) and (here) one plain block; parameters stay float32 with bf16 compute.
    assert sorted(r["vd"]["params"]["body"]) == ["block_0", "block_1"]
    assert {a.dtype for a in jax.tree_util.tree_leaves(r["vd"])} == {jnp.dtype(jnp.float32)}
    assert r["logits16"].dtype == jnp.float32 and _rel(r["logits16"], r["logits"]) < 0.05
    _assert_per_example(r["g"], r["g_p"])
    _assert_per_example(r["logits"], r["logits_p"])
    _assert_per_example(r["logits_tr"], r["logits_tr_p"])  # spectral norm does not mix the batch


def test_resnet_32x32_shapes_and_dtypes():
    G, D = ResNetGenerator((32, 32, 3), width=4, num_classes=3), ResNetDiscriminator(width=4, num_classes=3)
    z, x, y = jnp.zeros((2, 8)), jnp.zeros((2, 32, 32, 3)), jnp.zeros((2,), jnp.int32)
    img = jax.eval_shape(lambda: G.apply(G.init(KEY, z, y), z, y))
    logits, upd = jax.eval_shape(lambda: D.apply(D.init(KEY, x, y), x, y, train=True, mutable=BS))
    assert (img.shape, img.dtype, logits.shape, logits.dtype) == ((2, 32, 32, 3), jnp.float32, (2,), jnp.float32)
    assert sorted(upd["batch_stats"]["body"]) == [f"block_{i}" for i in range(4)]


def test_spectral_norm_makes_every_discriminator_weight_1_lipschitz(resnet8):
    r = resnet8["r"]
    kernels = _sn_kernels(r["vd"])
    # every conv (3 + 2 in the blocks), psi and the class embedding
    assert len(kernels) == 7 and any("embed/embedding" in p for p, _, _ in kernels)
    # At init (u random, one power step per call) the normalised weights are not yet 1-Lipschitz ...
    at_init = [_sn_effective(w, u)[0] for _, w, u in _sn_kernels(r["vd0"])]
    assert max(np.linalg.svd(w.reshape(-1, w.shape[-1]), compute_uv=False)[0] for w in at_init) > 1.05
    # ... after 200 power-iteration steps (train-mode calls) every one is, to 1e-3.
    for path, w, u in kernels:
        w_eff, sigma = _sn_effective(w, u)
        top = np.linalg.svd(w.reshape(-1, w.shape[-1]), compute_uv=False)[0]
        assert abs(sigma / top - 1) < 1e-3, (path, sigma, top)
        assert abs(np.linalg.svd(w_eff.reshape(-1, w.shape[-1]), compute_uv=False)[0] - 1) < 1e-3, path
    # The stored u moves only in train mode (update_stats): one train step changed it.
    u_init = r["vd0"]["batch_stats"]["body"]["block_0"]["conv_1_sn"]["conv_1/kernel/u"]
    assert _differs(r["one_step"]["batch_stats"]["body"]["block_0"]["conv_1_sn"]["conv_1/kernel/u"], u_init, 1e-6)


def test_resnet_logits_use_the_normalised_weights_and_the_projection(resnet8):
    """Reassemble the eval logits from phi and the params: psi and the embedding as normalised in the forward
    pass; the label enters only through <embed(y), phi>."""
    r, y, y2 = resnet8["r"], np.asarray(resnet8["y"]), np.asarray(resnet8["y2"])
    stats, head = r["vd"]["batch_stats"]["head"], r["vd"]["params"]["head"]
    k_eff, _ = _sn_effective(np.asarray(head["psi"]["kernel"], np.float64), np.asarray(stats["psi_sn"]["psi/kernel/u"]))
    e_eff, _ = _sn_effective(np.asarray(head["embed"]["embedding"], np.float64),
                             np.asarray(stats["embed_sn"]["embed/embedding/u"]))
    phi = np.asarray(r["phi"], np.float64)
    expected = phi @ k_eff[:, 0] + float(head["psi"]["bias"][0]) + np.sum(e_eff[y] * phi, -1)
    np.testing.assert_allclose(r["logits"], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(r["logits"], np.float64) - np.asarray(r["logits2"], np.float64),
                               np.sum((e_eff[y] - e_eff[y2]) * phi, -1), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------ style generator


@pytest.fixture(scope="module")
def style8():
    kw = dict(out_shape=(8, 8, 1), width=8, w_dim=8, mapping_layers=2)
    S, S16, S_nn = StyleGenerator(**kw), StyleGenerator(**kw, dtype=jnp.bfloat16), StyleGenerator(**kw, noise=False)
    z = jax.random.normal(_key(10), (4, 6))
    w_avg = jax.random.normal(_key(11), (8,))

    @jax.jit
    def run(key):
        k1, kn1, kn2 = jax.random.split(key, 3)
        v = S.init(k1, z)
        # Noise strengths start at zero (Karras et al.); make them matter, and give w_avg a value.
        params = jax.tree_util.tree_map_with_path(
            lambda p, a: a + 0.5 if "noise_scale" in jax.tree_util.keystr(p) else a, v["params"])
        v = {"params": params, "batch_stats": {"w_avg": w_avg}}
        w = S.apply(v, z, method="mapping")
        syn = lambda w: S.apply(v, w, method="synthesis")
        out_tr, upd = S.apply(v, z, train=True, mutable=BS)
        return dict(
            v=v, w=w, out=S.apply(v, z), out_p=S.apply(v, _perturb0(z)), syn_w=syn(w), out16=S16.apply(v, z),
            psi0=S.apply(v, z, truncation_psi=0.0), syn_avg=syn(jnp.broadcast_to(w_avg, w.shape)),
            psi_half=S.apply(v, z, truncation_psi=0.5), syn_half=syn(w_avg + 0.5 * (w - w_avg)),
            noise1=S.apply(v, z, rngs={"noise": kn1}),
            noise2=S.apply(v, z, rngs={"noise": kn2}),
            # noise=False: the same variables (the noise strengths go unused), no noise inputs
            nn1=S_nn.apply(v, z, rngs={"noise": kn1}), nn2=S_nn.apply(v, z, rngs={"noise": kn2}),
            nn0=S_nn.apply(v, z), out_tr=out_tr, upd=upd)

    return dict(r=run(KEY), z=z, w_avg=w_avg)


def test_style_mapping_and_synthesis_compose_to_the_generator(style8):
    r = style8["r"]
    assert r["w"].shape == (4, 8) and r["w"].dtype == jnp.float32
    assert _differs(r["w"][0], r["w"][1])  # two z's, two styles
    assert r["out"].shape == (4, 8, 8, 1) and r["out"].dtype == jnp.float32 and float(jnp.abs(r["out"]).max()) <= 1
    np.testing.assert_allclose(r["out"], r["syn_w"], atol=1e-6)  # psi = 1: untruncated
    _assert_per_example(r["out"], r["out_p"])
    assert _rel(r["out16"], r["out"]) < 0.05, _rel(r["out16"], r["out"])


def test_style_truncation_trick(style8):
    r = style8["r"]
    # psi = 0: every z gives the image of w_avg.
    np.testing.assert_allclose(r["psi0"], jnp.broadcast_to(r["psi0"][:1], r["psi0"].shape), atol=1e-6)
    np.testing.assert_allclose(r["psi0"], r["syn_avg"], atol=1e-6)
    assert _differs(r["psi0"][0], r["out"][0])
    np.testing.assert_allclose(r["psi_half"], r["syn_half"], atol=1e-5)
    # w_avg moves only in train mode, as an EMA of the batch mean of w (decay 0.995).
    expected = 0.995 * style8["w_avg"] + 0.005 * jnp.mean(r["w"], 0)
    np.testing.assert_allclose(r["upd"]["batch_stats"]["w_avg"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["out_tr"], r["out"], atol=1e-6)  # updated after this batch's w is used


def test_style_noise_comes_from_the_noise_rng_only_when_enabled(style8):
    r = style8["r"]
    assert _differs(r["noise1"], r["noise2"]) and _differs(r["noise1"], r["out"])  # out: no rng -> zero noise
    np.testing.assert_array_equal(r["nn1"], r["nn2"])
    np.testing.assert_array_equal(r["nn1"], r["nn0"])


def test_style_train_mode_needs_mutable_batch_stats(style8):
    S = StyleGenerator((8, 8, 1), width=8, w_dim=8, mapping_layers=2)
    with pytest.raises(GMJaxError, match="mutable"):
        jax.eval_shape(lambda v, z: S.apply(v, z, train=True), style8["r"]["v"], style8["z"])


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("build, args, match", [
    (lambda: DCGANGenerator((8, 8, 1)), (jnp.zeros((2, 4, 1)),), "z \\[B, latent_dim\\]"),
    (lambda: ResNetGenerator((8, 8, 1)), (jnp.zeros((4,)),), "z \\[B, latent_dim\\]"),
    (lambda: StyleGenerator((8, 8, 1)), (jnp.zeros((2, 4, 1)),), "z \\[B, latent_dim\\]"),
    (lambda: DCGANGenerator((6, 6, 1)), (jnp.zeros((2, 4)),), "cannot reach image size 6x6"),
    (lambda: ResNetGenerator((31, 32, 3)), (jnp.zeros((2, 4)),), "even integer >= 8"),
    (lambda: StyleGenerator((28, 28, 1)), (jnp.zeros((2, 4)),), "4 \\* 2\\^k"),
    (lambda: DCGANDiscriminator(), (jnp.zeros((2, 7, 7, 1)),), "cannot reach image size 7x7"),
    (lambda: ResNetDiscriminator(), (jnp.zeros((2, 8, 8)),), "\\[B, H, W, C\\]"),
    (lambda: DCGANGenerator((8, 8, 1), num_classes=3), (jnp.zeros((2, 4)),), "pass labels"),
    (lambda: ResNetGenerator((8, 8, 1), num_classes=3), (jnp.zeros((2, 4)),), "pass labels"),
    (lambda: StyleGenerator((8, 8, 1), num_classes=3), (jnp.zeros((2, 4)),), "pass labels"),
    (lambda: ResNetDiscriminator(num_classes=3), (jnp.zeros((2, 8, 8, 1)),), "pass labels"),
    (lambda: DCGANDiscriminator(num_classes=3), (jnp.zeros((2, 8, 8, 1)), jnp.zeros((2, 3))), "not one-hot"),
    (lambda: DCGANDiscriminator(), (jnp.zeros((2, 8, 8, 1)), jnp.zeros((2,), jnp.int32)), "unconditional"),
    (lambda: DCGANGenerator((8, 8, 1), norm="layer"), (jnp.zeros((2, 4)),), "norm must be"),
])
def test_bad_inputs_raise_gmjax_error(build, args, match):
    with pytest.raises(GMJaxError, match=match):
        jax.eval_shape(build().init, KEY, *args)
