"""FID Inception port vs the PyTorch references (pytorch-fid 0.3.0, torch-fidelity 0.4.0), on random weights.

Needs torch + pytorch-fid + torch-fidelity (skipped otherwise); marked ``torch``. Nothing is downloaded:
pytorch-fid's ``fid_inception_v3`` is built with its weight loader patched to return a random state dict
(with randomised BN statistics), which pytorch-fid's strict ``load_state_dict`` also checks against our key
layout. Tolerances: acceptance checks A.2/A.3/B.5-7 of the metrics reference (CPU, float32).
"""

import collections

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_fid")
pytestmark = pytest.mark.torch

import pytorch_fid.inception as pfi  # noqa: E402

from gm_jax.metrics.inception import inception_apply, preprocess_for_inception, resize_bilinear  # noqa: E402
from gm_jax.metrics.inception_weights import _torch_layout, convert_state_dict, to_state_dict  # noqa: E402
from gm_jax.metrics.torch_pickle import read_torch_state_dict  # noqa: E402

BLOCKS = {"block_64": 0, "block_192": 1, "block_768": 2, "pool3": 3}
_fwd = jax.jit(inception_apply, static_argnames="resize")


def _random_state_dict(seed=0):
    """Random pytorch-fid-layout weights; BN stats/affine randomised so BN is exercised, activations O(1)."""
    rng = np.random.default_rng(seed)
    sd = collections.OrderedDict()
    for k, (_, _, shape) in _torch_layout().items():
        if k.endswith("conv.weight"):
            a = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif k.endswith("bn.weight"):
            a = rng.uniform(0.8, 1.2, shape)
        elif k.endswith("running_var"):
            a = rng.uniform(0.5, 2.0, shape)
        elif k.endswith("bn.bias") or k.endswith("running_mean"):
            a = 0.1 * rng.standard_normal(shape)
        elif k == "fc.weight":
            a = rng.standard_normal(shape) / np.sqrt(shape[1])
        else:
            a = 0.1 * rng.standard_normal(shape)
        sd[k] = torch.from_numpy(a.astype(np.float32))
    return sd


def _pytorch_fid_net(sd, **kw):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: sd)
        net = pfi.InceptionV3(output_blocks=[0, 1, 2, 3], **kw)
    return net.eval()


def _torch_blocks(net, x_nhwc):
    with torch.no_grad():
        outs = net(torch.from_numpy(np.ascontiguousarray(np.asarray(x_nhwc).transpose(0, 3, 1, 2))))
    return {name: outs[i].mean(dim=(2, 3)).numpy() for name, i in BLOCKS.items()}


def _rel_err(a, ref):
    return float(np.max(np.abs(np.asarray(a) - ref)) / np.max(np.abs(ref)))


ERRORS = {}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    sd = _random_state_dict()
    net = _pytorch_fid_net(sd, resize_input=False, normalize_input=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: sd)
        full = pfi.fid_inception_v3().state_dict()  # pytorch-fid key names, plus BN num_batches_tracked
    d = tmp_path_factory.mktemp("pth")
    paths = {"zip": str(d / "zip.pth"), "legacy": str(d / "legacy.pth")}
    torch.save(full, paths["zip"])
    torch.save(full, paths["legacy"], _use_new_zipfile_serialization=False)
    return dict(sd=sd, net=net, full=full, paths=paths)


@pytest.fixture(scope="module")
def variables(ref):
    return jax.device_put(convert_state_dict(read_torch_state_dict(ref["paths"]["legacy"])))


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_read_torch_state_dict_equals_torch_tensors(ref, fmt):
    got = read_torch_state_dict(ref["paths"][fmt])
    assert list(got) == list(ref["full"])
    for k, t in ref["full"].items():
        assert got[k].dtype == t.numpy().dtype and got[k].shape == tuple(t.shape), k
        np.testing.assert_array_equal(got[k], t.numpy(), err_msg=k)


def test_roundtrip_to_torch_layout(ref, variables):
    back = to_state_dict(jax.device_get(variables))
    assert set(back) == {k for k in ref["full"] if not k.endswith("num_batches_tracked")}
    for k, a in back.items():
        np.testing.assert_array_equal(a, ref["full"][k].numpy(), err_msg=k)


def test_blocks_and_logits_match_pytorch_fid(ref, variables):
    x = np.random.default_rng(1).uniform(-1, 1, (4, 299, 299, 3)).astype(np.float32)
    want = _torch_blocks(ref["net"], x)
    got = _fwd(variables, x, resize=None)
    for name in BLOCKS:
        ERRORS[name] = _rel_err(got[name], want[name])
        assert ERRORS[name] <= 1e-4, (name, ERRORS[name])
    w, b = ref["sd"]["fc.weight"], ref["sd"]["fc.bias"]
    pool3 = torch.from_numpy(want["pool3"])
    for name, bias in (("logits_unbiased", None), ("logits", b)):
        want_l = torch.nn.functional.linear(pool3, w, bias).numpy()
        ERRORS[name] = _rel_err(got[name], want_l)
        assert ERRORS[name] <= 1e-4, (name, ERRORS[name])
    print("\nmax|diff|/max|ref| vs pytorch-fid (299, batch 4):", {k: f"{v:.2e}" for k, v in ERRORS.items()})


def _uint8_images(n=4, size=32, seed=2):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_end_to_end_pytorch_fid_mode(ref, variables):
    u8 = _uint8_images()
    net = _pytorch_fid_net(ref["sd"], resize_input=True, normalize_input=True)
    want = _torch_blocks(net, u8.astype(np.float32) / 255.0)
    got = _fwd(variables, u8, resize="pytorch_fid")
    errs = {name: _rel_err(got[name], want[name]) for name in BLOCKS}
    print("\nuint8 32x32 -> pytorch_fid mode vs pytorch-fid(resize, normalize):",
          {k: f"{v:.2e}" for k, v in errs.items()})
    assert max(errs.values()) <= 1e-4, errs


@pytest.mark.parametrize("src,dst", [(32, 299), (512, 299), (299, 299)])
def test_pytorch_fid_resize_matches_torch_interpolate(src, dst):
    x = np.random.default_rng(3).uniform(0, 1, (2, src, src, 3)).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=(dst, dst),
                                           mode="bilinear", align_corners=False).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(resize_bilinear(x, dst, "pytorch_fid"))
    err = float(np.max(np.abs(got - want)))
    print(f"\npytorch_fid resize {src}->{dst}: max|diff| = {err:.2e} (values in [0, 1])")
    assert err <= 1e-6  # ATen rounding reproduced: ~1 ulp


def test_tf1_resize_and_features_match_torch_fidelity(ref, variables):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    # torch-fidelity's own test image: a 32x32 checkerboard of 8x8 squares, plus random uint8 images
    board = ((np.indices((32, 32)) // 8).sum(0) % 2 * 255).astype(np.uint8)
    u8 = _uint8_images()
    u8[0] = board[..., None]
    x_t = torch.from_numpy(u8.transpose(0, 3, 1, 2).astype(np.float32))
    want = tf1(x_t, size=(299, 299), align_corners=False).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(resize_bilinear(u8.astype(np.float32), 299, "tf1"))
    err = float(np.max(np.abs(got - want)))
    ERRORS["tf1_resize_0_255"] = err
    print(f"\ntf1 resize 32->299 vs torch-fidelity: max|diff| = {err:.2e} on 0..255 "
          f"(bit-exact: {bool(np.array_equal(got, want))})")
    assert err <= 1e-4
    x_norm = (want - 128.0) / 128.0
    pre = np.asarray(preprocess_for_inception(u8, "tf1"))
    assert float(np.max(np.abs(pre - x_norm))) <= 1e-6
    # TF-mode features end to end: our uint8 pipeline vs pytorch-fid's net on torch-fidelity's resize
    want_f = _torch_blocks(ref["net"], x_norm.astype(np.float32))
    got_f = _fwd(variables, u8, resize="tf1")
    errs = {name: _rel_err(got_f[name], want_f[name]) for name in BLOCKS}
    print("uint8 32x32 -> tf1 mode vs torch-fidelity resize + pytorch-fid net:",
          {k: f"{v:.2e}" for k, v in errs.items()})
    assert max(errs.values()) <= 1e-4, errs


# ------------------------------------------------------------------ end to end: image files -> FID and IS
# 200 images, so the 192-d block's covariance has full rank and scipy's sqrtm (pytorch-fid) is accurate;
# pool3 (2048-d) would need over 2048 images per set, minutes on a CPU.
NUM_FILES = 200


def _write_pngs(directory, seed, contrast):
    """Smooth random colour fields (8x8 upsampled to 32x32) with pixel noise, as PNG files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    directory.mkdir()
    for i in range(NUM_FILES):
        coarse = np.kron(rng.normal(size=(8, 8, 3)), np.ones((4, 4, 1)))
        img = np.clip(128 + contrast * coarse + 8 * rng.normal(size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(directory / f"{i:04d}.png")
    return str(directory)


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    sd = _random_state_dict(seed=3)
    # Random-weight pool3 features vary little between images; larger logits make IS - 1 measurable (0.02).
    # (x3000 overflows torch-fidelity's float32 softmax to NaN; ours stays finite in float64.)
    sd["fc.weight"] = sd["fc.weight"] * 300.0
    pth = str(d / "weights.pth")
    torch.save(sd, pth)
    return {"real": _write_pngs(d / "real", 0, 40.0), "fake": _write_pngs(d / "fake", 1, 60.0), "pth": pth,
            "sd": sd, "weights": str(d / "weights.npz")}


def _our_features(image_dirs, resize):
    """Our pipeline from the files: the torch-free converter, then streaming extraction from the directories."""
    from gm_jax.metrics import extract
    from gm_jax.metrics.inception_weights import convert_weights

    weights = convert_weights(image_dirs["pth"], image_dirs["weights"], expected_sha256=None)
    net = extract.inception_extractor(weights, resize)
    keys = ("block_192", "logits_unbiased")
    return {side: extract.source_features(net, extract.directory_source(image_dirs[side]), 50, keys=keys)
            for side in ("real", "fake")}


def test_fid_from_image_files_equals_pytorch_fid(image_dirs):
    from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path

    from gm_jax.metrics import fid

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: image_dirs["sd"])
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[192]]).eval()  # resize + normalise on
    stats = [compute_statistics_of_path(image_dirs[s], model, 50, 192, "cpu", num_workers=0)
             for s in ("real", "fake")]
    want = calculate_frechet_distance(*stats[0], *stats[1])
    feats = _our_features(image_dirs, "pytorch_fid")
    got = fid(feats["fake"]["block_192"], feats["real"]["block_192"])
    print(f"\nFID (192-d, pytorch_fid mode): ours {got!r}, pytorch-fid {want!r}")
    assert want > 1.0 and got == pytest.approx(want, rel=1e-4)


def test_fid_and_inception_score_from_image_files_equal_torch_fidelity(image_dirs):
    torch_fidelity = pytest.importorskip("torch_fidelity")

    from gm_jax.metrics import fid, inception_score

    want = torch_fidelity.calculate_metrics(
        input1=image_dirs["fake"], input2=image_dirs["real"], fid=True, isc=True, cuda=False, cache=False,
        verbose=False, feature_extractor_weights_path=image_dirs["pth"], feature_layer_fid="192",
        samples_shuffle=False, batch_size=50, save_cpu_ram=True)  # save_cpu_ram: no forked loader workers
    feats = _our_features(image_dirs, "tf1")
    got_fid = fid(feats["fake"]["block_192"], feats["real"]["block_192"])
    got_is = inception_score(feats["fake"]["logits_unbiased"], splits=10)
    print(f"\nFID (192-d, tf1 mode): ours {got_fid!r}, torch-fidelity {want['frechet_inception_distance']!r}; "
          f"IS: ours {got_is}, torch-fidelity ({want['inception_score_mean']!r}, {want['inception_score_std']!r})")
    assert want["frechet_inception_distance"] > 1.0 and want["inception_score_mean"] - 1 > 0.01
    assert got_fid == pytest.approx(want["frechet_inception_distance"], rel=1e-4)
    assert got_is[0] - 1 == pytest.approx(want["inception_score_mean"] - 1, rel=1e-4)
    assert got_is[1] == pytest.approx(want["inception_score_std"], rel=1e-3, abs=1e-6)
