"""FID Inception V3: variable layout, conversion, preprocessing, pooling, inference-mode forward, weight files.

No torch needed (the torch comparisons are in test_inception_torch.py). Network tests share one small (75x75)
compiled forward; .pth files are written by a hand-rolled pickle writer below, independent of the reader.
"""

import collections
import hashlib
import os
import pickle
import struct
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.metrics.inception import inception_apply, preprocess_for_inception, resize_bilinear
from gm_jax.metrics.inception_weights import (PYTORCH_FID_SHA256, PYTORCH_FID_URL, _variable_shapes,
                                              convert_state_dict, convert_weights, download_weights,
                                              init_inception_variables, load_inception_variables, to_state_dict)
from gm_jax.metrics.torch_pickle import read_torch_state_dict
from gm_jax.nets.inception import avg_pool_exclude_pad


# ------------------------------------------------------------------------------------------------------------
# A minimal torch.save writer (protocol-2 opcodes by hand), so the reader is tested without torch.

_TORCH_STORAGE = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                  np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage"}


def _op_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _op_int(i):
    return b"J" + struct.pack("<i", i)


def _op_tuple(items):
    return b"(" + b"".join(items) + b"t"


def _op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _pickle_state_dict(tensors, legacy):
    """tensors: {name: (storage_key, storage np array, offset, size, stride)} -> the object pickle bytes."""
    out = [b"\x80\x02", _op_global("collections", "OrderedDict"), b")R", b"("]
    for name, (key, storage, offset, size, stride) in tensors.items():
        pid = [_op_str("storage"), _op_global("torch", _TORCH_STORAGE[storage.dtype]), _op_str(key),
               _op_str("cpu"), _op_int(storage.size)] + ([b"N"] if legacy else [])
        args = [_op_tuple(pid) + b"Q", _op_int(offset), _op_tuple([_op_int(s) for s in size]),
                _op_tuple([_op_int(s) for s in stride]), b"\x89", _op_global("collections", "OrderedDict") + b")R"]
        out += [_op_str(name), _op_global("torch._utils", "_rebuild_tensor_v2"), _op_tuple(args), b"R"]
    out += [b"u", b"."]
    return b"".join(out)


def _save_pth(path, tensors, legacy=False):
    storages = {key: st for key, st, *_ in tensors.values()}
    obj = _pickle_state_dict(tensors, legacy)
    if legacy:
        with open(path, "wb") as f:
            for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
                f.write(pickle.dumps(head, protocol=2))
            f.write(obj)
            f.write(pickle.dumps(sorted(storages), protocol=2))
            for key in sorted(storages):
                st = storages[key]
                f.write(struct.pack("<q", st.size) + st.astype(st.dtype.newbyteorder("<")).tobytes())
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", obj)
            z.writestr("archive/byteorder", "little")
            z.writestr("archive/version", "3\n")
            for key, st in storages.items():
                z.writestr(f"archive/data/{key}", st.astype(st.dtype.newbyteorder("<")).tobytes())


def _contiguous(state_dict):
    """{name: array} -> writer input with one storage per tensor, C-contiguous strides."""
    out = {}
    for i, (k, a) in enumerate(state_dict.items()):
        a = np.ascontiguousarray(a)
        stride = tuple(s // a.itemsize for s in a.strides)
        out[k] = (str(i), a.reshape(-1), 0, a.shape, stride)
    return out


# ------------------------------------------------------------------------------------------------------------
# Fixtures: random variables with non-trivial BN statistics, one compiled forward


@pytest.fixture(scope="module")
def variables():
    v = jax.device_get(init_inception_variables(jax.random.key(0)))
    rng = np.random.default_rng(0)
    for coll, leaf, lo, hi in (("params", "scale", 0.8, 1.2), ("params", "bias", -0.1, 0.1),
                               ("batch_stats", "mean", -0.1, 0.1), ("batch_stats", "var", 0.5, 2.0)):
        v[coll] = jax.tree_util.tree_map_with_path(
            lambda p, a: rng.uniform(lo, hi, a.shape).astype(np.float32) if p[-1].key == leaf else a, v[coll])
    return v


@pytest.fixture(scope="module")
def forward():
    return jax.jit(inception_apply, static_argnames="resize")


# ------------------------------------------------------------------------------------------------------------
# Variables and conversion


def test_variable_tree_matches_the_fid_inception_layout():
    shapes = _variable_shapes()
    kernels = [k for k in shapes if k.endswith("/conv/kernel")]
    assert len(kernels) == 94
    for coll, leaf in (("params", "scale"), ("params", "bias"), ("batch_stats", "mean"), ("batch_stats", "var")):
        names = [k for k in shapes if k.startswith(coll + "/") and k.endswith(f"/bn/{leaf}")]
        assert len(names) == 94, (coll, leaf)
    assert shapes["params/fc/kernel"] == (2048, 1008) and shapes["params/fc/bias"] == (1008,)
    assert len(shapes) == 94 * 5 + 2
    assert shapes["params/Conv2d_1a_3x3/conv/kernel"] == (3, 3, 3, 32)
    assert shapes["params/Mixed_6b/branch7x7_2/conv/kernel"] == (1, 7, 128, 128)
    assert shapes["params/Mixed_7c/branch3x3dbl_3b/conv/kernel"] == (3, 1, 384, 384)
    assert shapes["params/Mixed_7c/branch_pool/conv/kernel"] == (1, 1, 2048, 192)
    # torchvision Inception3 without aux head has 23,834,568 parameters; +8 classes x 2049 for the 1008-way fc
    n = sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith("params/"))
    assert n == 23_834_568 + 8 * 2049


def test_state_dict_round_trip_is_bit_identical(variables):
    sd = to_state_dict(variables)
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert sd["fc.weight"].shape == (1008, 2048)
    np.testing.assert_array_equal(sd["Mixed_5b.branch1x1.bn.running_var"],
                                  variables["batch_stats"]["Mixed_5b"]["branch1x1"]["bn"]["var"])
    back = convert_state_dict(sd)
    flat_a = jax.tree_util.tree_leaves_with_path(variables)
    flat_b = jax.tree_util.tree_leaves_with_path(back)
    assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
    for (p, a), (_, b) in zip(flat_a, flat_b):
        assert b.dtype == np.float32 and np.array_equal(np.asarray(a), b), jax.tree_util.keystr(p)
    # num_batches_tracked (present in torch's own state dicts) is ignored
    sd2 = collections.OrderedDict(sd, **{"Conv2d_1a_3x3.bn.num_batches_tracked": np.array(0)})
    assert np.array_equal(convert_state_dict(sd2)["params"]["fc"]["kernel"], variables["params"]["fc"]["kernel"])


def test_convert_state_dict_rejects_bad_keys_and_shapes(variables):
    sd = to_state_dict(variables)
    missing = dict(sd)
    del missing["Mixed_6e.branch_pool.bn.running_mean"]
    with pytest.raises(GMJaxError, match="missing 1 keys: Mixed_6e.branch_pool.bn.running_mean"):
        convert_state_dict(missing)
    extra = dict(sd, **{"AuxLogits.fc.weight": np.zeros((1000, 768), np.float32)})
    with pytest.raises(GMJaxError, match="unexpected 1 keys: AuxLogits.fc.weight"):
        convert_state_dict(extra)
    bad = dict(sd, **{"fc.weight": sd["fc.weight"].T})
    with pytest.raises(GMJaxError, match=r"fc.weight has shape \(2048, 1008\), expected \(1008, 2048\)"):
        convert_state_dict(bad)


# ------------------------------------------------------------------------------------------------------------
# Preprocessing


def _bilinear_loop(img, out, src_fn):
    """Independent per-pixel bilinear resize of a 2-D float64 image; src_fn(dst, n_in, n_out) -> source coord."""
    h, w = img.shape
    res = np.empty((out, out))
    for i in range(out):
        for j in range(out):
            y, x = src_fn(i, h, out), src_fn(j, w, out)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            top = img[y0, x0] * (1 - dx) + img[y0, x1] * dx
            bot = img[y1, x0] * (1 - dx) + img[y1, x1] * dx
            res[i, j] = top * (1 - dy) + bot * dy
    return res


def _tf1_src(d, n_in, n_out):  # TF1 legacy: float32 scale and product (the op's own arithmetic)
    return float(np.float32(d) * (np.float32(n_in) / np.float32(n_out)))


def _half_pixel_src(d, n_in, n_out):  # torch align_corners=False
    return max((d + 0.5) * n_in / n_out - 0.5, 0.0)


@pytest.mark.parametrize("n_in,n_out", [(7, 20), (40, 13)])
def test_tf1_resize_matches_the_legacy_formula(n_in, n_out):
    img = np.random.default_rng(1).uniform(0, 255, (n_in, n_in))
    want = _bilinear_loop(img, n_out, _tf1_src)
    got = np.asarray(resize_bilinear(img[None, :, :, None].astype(np.float32), n_out, "tf1"))[0, :, :, 0]
    np.testing.assert_allclose(got, want, atol=1e-3)  # on 0..255; a half-pixel shift is off by O(10)


@pytest.mark.parametrize("n_in,n_out", [(7, 20), (40, 13)])
def test_pytorch_fid_resize_matches_half_pixel_bilinear(n_in, n_out):
    img = np.random.default_rng(2).uniform(0, 1, (n_in, n_in))
    want = _bilinear_loop(img, n_out, _half_pixel_src)
    got = np.asarray(resize_bilinear(img[None, :, :, None].astype(np.float32), n_out, "pytorch_fid"))[0, :, :, 0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_preprocess_conventions():
    u8 = np.random.default_rng(3).integers(0, 256, (2, 80, 80, 3), dtype=np.uint8)
    x = u8.astype(np.float32)
    # same size: identity resize, then each mode's own normalisation (TF: (x-128)/128; pytorch-fid: 2x/255-1)
    np.testing.assert_array_equal(np.asarray(preprocess_for_inception(u8, "tf1", size=80)), (x - 128) / 128)
    np.testing.assert_allclose(np.asarray(preprocess_for_inception(u8, "pytorch_fid", size=80)), 2 * x / 255 - 1,
                               atol=1e-6)
    # float [0, 1] input means the same image as uint8; one channel is repeated to RGB
    np.testing.assert_allclose(np.asarray(preprocess_for_inception(x / 255, "tf1", size=99)),
                               np.asarray(preprocess_for_inception(u8, "tf1", size=99)), atol=1e-5)
    gray = np.asarray(preprocess_for_inception(u8[..., :1], "pytorch_fid", size=99))
    assert gray.shape == (2, 99, 99, 3)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(gray[..., 0], np.asarray(preprocess_for_inception(
        np.repeat(u8[..., :1], 3, -1), "pytorch_fid", size=99))[..., 1])
    # jittable with static sizes (XLA may fuse the lerp into an FMA: 1-ulp differences)
    j = jax.jit(preprocess_for_inception, static_argnames=("mode", "size"))
    np.testing.assert_allclose(np.asarray(j(u8, mode="tf1", size=99)),
                               np.asarray(preprocess_for_inception(u8, "tf1", size=99)), atol=1e-6)


@pytest.mark.parametrize("images,mode,match", [
    (np.zeros((2, 32, 32), np.uint8), "tf1", r"\[N, H, W, C\]"),
    (np.zeros((2, 32, 32, 4), np.uint8), "tf1", r"C in \{1, 3\}"),
    (np.zeros((2, 32, 32, 3), np.int32), "tf1", "dtype int32"),
    (np.zeros((2, 32, 32, 3), np.uint8), "bicubic", "unknown Inception resize mode 'bicubic'"),
])
def test_preprocess_rejects_bad_input(images, mode, match):
    with pytest.raises(GMJaxError, match=match):
        preprocess_for_inception(images, mode)


# ------------------------------------------------------------------------------------------------------------
# Network


def test_average_pool_excludes_padding():
    out = np.asarray(avg_pool_exclude_pad(jnp.ones((1, 5, 6, 2))))
    np.testing.assert_array_equal(out, np.ones_like(out))  # count_include_pad=True gives 4/9 at the corners
    x = np.random.default_rng(4).standard_normal((1, 5, 6, 1)).astype(np.float32)
    out = np.asarray(avg_pool_exclude_pad(x))[0, :, :, 0]
    np.testing.assert_allclose(out[0, 0], x[0, :2, :2, 0].mean(), rtol=1e-6)
    np.testing.assert_allclose(out[2, 3], x[0, 1:4, 2:5, 0].mean(), rtol=1e-6)


def test_forward_is_batch_independent_and_in_inference_mode(variables, forward):
    x = np.random.default_rng(5).uniform(-1, 1, (4, 75, 75, 3)).astype(np.float32)
    out4 = forward(variables, x, resize=None)
    expect = {"block_64": 64, "block_192": 192, "block_768": 768, "pool3": 2048, "logits_unbiased": 1008,
              "logits": 1008}
    assert {k: v.shape for k, v in out4.items()} == {k: (4, d) for k, d in expect.items()}
    assert all(np.isfinite(np.asarray(v)).all() for v in out4.values())
    assert float(jnp.std(out4["pool3"], axis=0).max()) > 1e-3  # different images, different features
    out1 = forward(variables, x[2:3], resize=None)  # batch statistics (train-mode BN) would make these differ
    for k in expect:
        a, b = np.asarray(out1[k][0]), np.asarray(out4[k][2])
        assert np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(b)), k
    np.testing.assert_allclose(np.asarray(out4["logits"] - out4["logits_unbiased"]),
                               np.broadcast_to(variables["params"]["fc"]["bias"], (4, 1008)), atol=1e-5)


def test_forward_rejects_small_inputs(variables):
    with pytest.raises(GMJaxError, match="H, W >= 75"):
        inception_apply(variables, np.zeros((1, 74, 80, 3), np.float32), resize=None)
    with pytest.raises(GMJaxError, match="'params' and 'batch_stats'"):
        inception_apply({"params": variables["params"]}, np.zeros((1, 75, 75, 3), np.float32), resize=None)


# ------------------------------------------------------------------------------------------------------------
# torch files and weight files


@pytest.mark.parametrize("legacy", [False, True])
def test_read_torch_state_dict_layouts(tmp_path, legacy):
    base = np.arange(60, dtype=np.float64).reshape(6, 10) / 7
    tensors = {
        "w": ("0", np.random.default_rng(6).standard_normal(24).astype(np.float32), 0, (2, 3, 4), (12, 4, 1)),
        "t": ("1", base.reshape(-1), 0, (10, 6), (1, 10)),                       # transposed view
        "s": ("1", base.reshape(-1), 12, (3, 4), (10, 2)),                     # offset + strided view, shared
        "h": ("2", np.linspace(-2, 2, 5).astype(np.float16), 1, (3,), (1,)),
        "n": ("3", np.array([7], np.int64), 0, (), ()),                          # 0-d (num_batches_tracked)
    }
    path = str(tmp_path / "sd.pth")
    _save_pth(path, tensors, legacy=legacy)
    got = read_torch_state_dict(path)
    assert list(got) == ["w", "t", "s", "h", "n"]
    np.testing.assert_array_equal(got["w"], tensors["w"][1].reshape(2, 3, 4))
    np.testing.assert_array_equal(got["t"], base.T)
    np.testing.assert_array_equal(got["s"], base[1:4, 2:10:2])
    np.testing.assert_array_equal(got["h"], tensors["h"][1][1:4])
    assert got["n"].shape == () and got["n"] == 7 and got["n"].dtype == np.int64
    assert [got[k].dtype for k in "wtsh"] == [np.float32, np.float64, np.float64, np.float16]


def test_read_torch_state_dict_refuses_code(tmp_path):
    path = str(tmp_path / "evil.pth")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + _op_global("os", "system") + _op_tuple([_op_str("true")])
                   + b"R.")
    with pytest.raises(GMJaxError, match="refusing to unpickle os.system"):
        read_torch_state_dict(path)


def test_weight_file_round_trip(tmp_path, variables, monkeypatch):
    src = str(tmp_path / "pt_inception.pth")
    _save_pth(src, _contiguous(to_state_dict(variables)))
    sha = hashlib.sha256(open(src, "rb").read()).hexdigest()
    monkeypatch.setenv("GM_JAX_WEIGHTS_DIR", str(tmp_path / "w"))
    dst = convert_weights(src, expected_sha256=sha)  # default destination under $GM_JAX_WEIGHTS_DIR
    assert dst == str(tmp_path / "w" / "fid_inception_v3.npz")
    assert [f for f in os.listdir(tmp_path / "w")] == ["fid_inception_v3.npz"]  # no temp file left behind
    with np.load(dst) as z:
        assert sha in str(z["__metadata__"])
    loaded = load_inception_variables()
    for (p, a), (_, b) in zip(jax.tree_util.tree_leaves_with_path(variables),
                              jax.tree_util.tree_leaves_with_path(loaded)):
        assert np.array_equal(np.asarray(a), np.asarray(b)), jax.tree_util.keystr(p)
    # the pinned pytorch-fid hash is checked by default
    with pytest.raises(GMJaxError, match=f"has SHA-256 {sha}, expected {PYTORCH_FID_SHA256}"):
        convert_weights(src, str(tmp_path / "other.npz"))
    assert not os.path.exists(tmp_path / "other.npz")


def test_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv("GM_JAX_WEIGHTS_DIR", str(tmp_path))
    path = os.path.join(str(tmp_path), "fid_inception_v3.npz")
    with pytest.raises(GMJaxError) as e:
        load_inception_variables()
    msg = str(e.value)
    assert msg == (f"FID Inception weights not found at {path}; run `gm-jax inception download` (needs internet) "
                   f"or download {PYTORCH_FID_URL} and run `gm-jax inception convert FILE`")
    assert "\n" not in msg


def test_download_failure_says_how_to_convert_by_hand(tmp_path):
    url = (tmp_path / "nowhere.pth").as_uri()  # a local URL that fails: nothing leaves the machine
    with pytest.raises(GMJaxError, match="download it by hand and run `gm-jax inception convert FILE`"):
        download_weights(str(tmp_path / "w.npz"), url=url)
    assert os.listdir(tmp_path) == []
