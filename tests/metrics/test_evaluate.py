"""Streaming feature extraction (gm_jax.metrics.extract) and `gm-jax evaluate --metrics`."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gm_jax.cli import main
from gm_jax.errors import GMJaxError
from gm_jax.metrics import extract, fid, kid, prdc

_W = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)


def _tiny_net(variables, x):
    """A nonlinear feature map with variables, standing in for a network."""
    h = x.reshape(x.shape[0], -1) @ variables["w"]
    return {"feat": jnp.tanh(h), "logits": h}


TINY = extract.FeatureExtractor("tiny", _tiny_net, {"w": jnp.asarray(_W)}, "feat", "logits")


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_sources_scale_pixels_to_unit_interval(tmp_path):
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 17, (5, 8, 8, 1))
    np.testing.assert_array_equal(extract.array_source(levels, 17).read(np.arange(5)), levels / 16)
    u8 = rng.integers(0, 256, (4, 6, 6, 3)).astype(np.uint8)
    np.testing.assert_allclose(extract.array_source(u8).read(np.array([2, 0])), u8[[2, 0]] / 255, rtol=1e-6)

    np.savez(tmp_path / "s.npz", samples=levels.astype(np.uint8), num_levels=17)  # as `gm-jax sample` writes
    src = extract.npz_source(str(tmp_path / "s.npz"))
    assert src.num == 5 and src.shape == (8, 8, 1)
    np.testing.assert_allclose(src.read(np.arange(5)), levels / 16, rtol=1e-6)

    os.makedirs(tmp_path / "png")
    for i, a in enumerate(u8):
        Image.fromarray(a).save(tmp_path / "png" / f"{i:03d}.png")
    src = extract.directory_source(str(tmp_path / "png"))
    assert src.num == 4 and src.shape == (6, 6, 3)
    np.testing.assert_allclose(src.read(np.arange(4)), u8 / 255, rtol=1e-6)
    Image.fromarray(u8[0, :5, :5, 0]).save(tmp_path / "png" / "zzz.png")  # another size (and grey)
    with pytest.raises(GMJaxError, match="must have one size"):
        extract.directory_source(str(tmp_path / "png")).read(np.arange(5))

    with pytest.raises(GMJaxError, match=r"outside \[0.0, 1.0\]"):
        extract.array_source(np.full((2, 4, 4, 1), 2.0))
    with pytest.raises(GMJaxError, match=r"outside \[0, 16\]"):
        extract.array_source(levels + 1, 17)
    np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(GMJaxError, match="FID statistics"):
        extract.npz_source(str(tmp_path / "stats.npz"))


def test_source_features_do_not_depend_on_the_batch_size():
    x = np.random.default_rng(2).integers(0, 17, (23, 8, 8, 1))
    src = extract.array_source(x, 17)
    want = _tiny_net({"w": _W}, x / 16.0)
    for bs in (1, 7, 64):
        got = extract.source_features(TINY, src, batch_size=bs)
        assert set(got) == {"feat", "logits"} and got["feat"].shape == (23, 5)
        np.testing.assert_allclose(got["feat"], want["feat"], rtol=1e-5, atol=1e-6)
    assert extract.source_features(TINY, src, batch_size=4, num=6, keys=("feat",))["feat"].shape == (6, 5)


def _uniform_images(variables, key, n):
    return jax.random.uniform(key, (n, 8, 8, 1))


def test_sampler_features_are_the_extracted_per_batch_draws():
    """Batch i on device d is drawn with fold_in(fold_in(key, i), d); the last batch is trimmed."""
    key = jax.random.key(3)
    got = extract.sampler_features(TINY, _uniform_images, None, key, 10, batch_size=4)
    n_dev = jax.device_count()
    draws = [_uniform_images(None, jax.random.fold_in(jax.random.fold_in(key, i), d), 4 // n_dev)
             for i in range(3) for d in range(n_dev)]
    want = _tiny_net({"w": _W}, np.concatenate(draws)[:10])
    np.testing.assert_allclose(got["feat"], want["feat"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)


_EIGHT = r"""
import sys, jax, numpy as np
sys.path.insert(0, sys.argv[1])
from test_evaluate import TINY, _uniform_images
from gm_jax.metrics import extract
x = np.random.default_rng(2).integers(0, 17, (23, 8, 8, 1))
rows = extract.source_features(TINY, extract.array_source(x, 17), batch_size=8)
samples = extract.sampler_features(TINY, _uniform_images, None, jax.random.key(3), 12, batch_size=8)
np.savez(sys.argv[2], feat=rows["feat"], devices=jax.device_count(), samples=samples["feat"])
"""


def test_eight_devices_extract_the_same_features(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    out = tmp_path / "eight.npz"
    proc = subprocess.run([sys.executable, "-c", _EIGHT, os.path.dirname(__file__), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as z:
        assert int(z["devices"]) == 8
        x = np.random.default_rng(2).integers(0, 17, (23, 8, 8, 1))
        np.testing.assert_allclose(z["feat"], _tiny_net({"w": _W}, x / 16.0)["feat"], rtol=1e-5, atol=1e-6)
        # one draw of 1 image per device and batch: fold_in(fold_in(key, i), d)
        key = jax.random.key(3)
        draws = [_uniform_images(None, jax.random.fold_in(jax.random.fold_in(key, i), d), 1)
                 for i in range(2) for d in range(8)]
        np.testing.assert_allclose(z["samples"], _tiny_net({"w": _W}, np.concatenate(draws)[:12])["feat"],
                                   rtol=1e-5, atol=1e-6)


def test_evaluate_raw_features_equal_the_metric_functions(tmp_path, capsys, data_dir):
    """`evaluate --features raw` on two toy2d splits gives exactly the library metrics of the same points."""
    from gm_jax.data import load_dataset

    out = tmp_path / "m.json"
    stats = str(tmp_path / "moons_stats.npz")
    assert main(["evaluate", "--metrics", "fid,kid,prdc", "--real", "toy2d/moons", "--fake", "toy2d/moons:test",
                 "--num", "400", "--out", str(out), "--save-real-stats", stats]) == 0
    table = capsys.readouterr().out
    assert "fid" in table and "coverage" in table
    got = json.loads(out.read_text())
    ds = load_dataset("toy2d/moons", data_dir)
    real = ds.read("train", np.arange(400))["point"]
    fake = ds.read("test", np.arange(400))["point"]
    assert got["features"] == "raw" and got["num_real"] == got["num_fake"] == 400
    assert got["fid"] == pytest.approx(fid(fake, real), rel=1e-6)
    assert got["kid_mean"] == pytest.approx(kid(fake, real, subset_size=400, key=jax.random.key(0))[0], rel=1e-6)
    want = prdc(real, fake)
    for k in ("precision", "recall", "density", "coverage"):
        assert got[k] == pytest.approx(want[k], abs=1e-12), k
    # Saved reference statistics stand in for the real examples (FID only).
    assert main(["evaluate", "--metrics", "fid", "--real", stats, "--fake", "toy2d/moons:test", "--num", "400",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["fid"] == pytest.approx(got["fid"], rel=1e-9)
    capsys.readouterr()
    assert main(["evaluate", "--metrics", "kid", "--real", stats, "--fake", "toy2d/moons:test"]) == 2
    assert "serves fid only" in _error_line(capsys)


class _UniformPixels:
    """A stand-in model: ``sample(variables, key, n)`` draws uniform 17-level pixels [n, 8, 8, 1]."""

    def sample(self, variables, key, n):
        del variables
        return jax.random.randint(key, (n, 8, 8, 1), 0, 17)


def test_evaluate_sample_quality_is_the_suite_on_extracted_features():
    """The library call behind `gm-jax evaluate`: sources (or a model's samples) in, the suite's numbers out."""
    from types import SimpleNamespace

    from gm_jax.metrics import ModelSamples, evaluate_sample_quality, model_features

    rng = np.random.default_rng(1)
    real, fake = rng.integers(0, 17, (24, 8, 8, 1)), rng.integers(0, 17, (20, 8, 8, 1))
    r, f = _tiny_net({"w": _W}, real / 16), _tiny_net({"w": _W}, fake / 16)
    key = jax.random.key(3)
    got = evaluate_sample_quality("fid,is,kid", fake=extract.array_source(fake, 17),
                                  real=extract.array_source(real, 17), features=TINY, key=key)
    assert (got["features"], got["num_fake"], got["num_real"]) == ("tiny", 20, 24) and "resize" not in got
    assert got["fid"] == pytest.approx(fid(f["feat"], r["feat"]), rel=1e-5)
    assert got["kid_mean"] == pytest.approx(kid(f["feat"], r["feat"], subset_size=20, key=key)[0], rel=1e-5)
    # A model as the generated side: as many samples as real examples, drawn inside the extraction step.
    spec = SimpleNamespace(name="uniform", kind="image", shape=(8, 8, 1), num_levels=17)
    samples = ModelSamples(_UniformPixels(), None, spec, name="uniform")
    got = evaluate_sample_quality(["fid"], fake=samples, real=extract.array_source(real, 17), features=TINY, key=key)
    drawn = model_features(TINY, samples, num=24, key=key, keys=("feat",))["feat"]
    assert got["num_fake"] == 24 and got["fid"] == pytest.approx(fid(drawn, r["feat"]), rel=1e-6)
    text = ModelSamples(_UniformPixels(), None, SimpleNamespace(name="shakespeare", kind="text"), name="charlm")
    with pytest.raises(GMJaxError, match="shakespeare holds text"):
        evaluate_sample_quality("fid", fake=text, real=extract.array_source(real, 17), features=TINY)


@pytest.mark.parametrize("argv,message", [
    (["--metrics", "fid,bleu", "--fake", "x.npz"], "unknown metric bleu"),
    (["--metrics", "fid"], "--metrics needs --fake"),
    (["--metrics", "nll", "--fake", "toy2d/moons"], "nll needs a trained model"),
    (["--metrics", "is", "--fake", "toy2d/moons", "--real", "toy2d/moons"], "is needs class logits"),
    (["--metrics", "kid", "--fake", "toy2d/moons"], "need real examples"),
    (["--metrics", "fid", "--fake", "toy2d/moons", "--real", "digits:test", "--features", "raw"],
     "--fake examples have shape (2,) and --real (8, 8, 1); raw features need one shape"),
    (["--metrics", "fid", "--fake", "toy2d/moons", "--real", "toy2d/moons:valid"], "no split 'valid'"),
    (["--metrics", "fid", "--fake", "digits", "--real", "digits", "--features", "inception", "--weights",
      "/nonexistent/w.npz"], "weights not found"),
])
def test_evaluate_bad_input_is_one_line(capsys, argv, message):
    assert main(["evaluate", *argv]) == 2
    line = _error_line(capsys)
    assert message in line, line


def test_inception_command_checks_the_hash_and_its_arguments(tmp_path, capsys):
    bogus = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    bogus.write_bytes(b"not the weights")
    assert main(["inception", "convert", str(bogus), str(tmp_path / "w.npz")]) == 2
    line = _error_line(capsys)
    assert "SHA-256" in line and "6726825d0af5f729" in line and not (tmp_path / "w.npz").exists()
    assert main(["inception", "convert"]) == 2
    assert "usage: gm-jax inception convert" in _error_line(capsys)


@pytest.mark.slow  # compiles the full Inception forward at 299x299 (about a minute on 2 CPU cores)
def test_evaluate_with_inception_features_end_to_end(tmp_path, capsys, data_dir):
    """`--features inception` (random weights in the converted-file layout): the CLI's metrics equal the
    library's on features extracted by a plain jitted inception_apply."""
    from gm_jax.data import load_dataset
    from gm_jax.metrics import inception_score, inception_weights
    from gm_jax.metrics._features import save_weights_file
    from gm_jax.metrics.inception import inception_apply
    from gm_jax.metrics.inception_weights import init_inception_variables

    variables = init_inception_variables(jax.random.key(0))
    weights = tmp_path / "w.npz"
    save_weights_file(str(weights), variables, {"format": inception_weights._FORMAT})  # the converted-file layout
    out = tmp_path / "m.json"
    assert main(["evaluate", "--metrics", "fid,is,kid", "--features", "inception", "--weights", str(weights),
                 "--real", "digits:test", "--fake", "digits", "--num", "12", "--batch-size", "6",
                 "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    ds = load_dataset("digits", data_dir)
    apply = jax.jit(inception_apply)
    feats = {s: apply(variables, ds.read(s, np.arange(12))["image"] / np.float32(16)) for s in ("train", "test")}
    assert got["features"] == "inception" and got["resize"] == "tf1"
    assert got["fid"] == pytest.approx(fid(feats["train"]["pool3"], feats["test"]["pool3"]), rel=1e-4)
    assert got["is_mean"] == pytest.approx(inception_score(feats["train"]["logits_unbiased"])[0], rel=1e-4)


def test_domain_command_and_domain_features_through_evaluate(tmp_path, capsys, data_dir):
    """`gm-jax domain train` writes a classifier; `evaluate --features domain` equals the library's FID and IS."""
    from gm_jax.data import load_dataset
    from gm_jax.metrics import domain_features, inception_score, load_domain_classifier

    weights = str(tmp_path / "digits_classifier.npz")
    assert main(["domain", "train", "--dataset", "digits", "--steps", "30", "--out", weights]) == 0
    assert "test accuracy" in capsys.readouterr().out
    out = tmp_path / "m.json"
    assert main(["evaluate", "--metrics", "fid,is", "--features", "domain", "--weights", weights, "--real",
                 "digits:test", "--fake", "digits:train", "--num", "50", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    clf, variables, _ = load_domain_classifier("digits", weights)
    ds = load_dataset("digits", data_dir)
    real = domain_features(clf, variables, ds.read("test", np.arange(50))["image"])
    fake, logits = domain_features(clf, variables, ds.read("train", np.arange(50))["image"], with_logits=True)
    assert got["features"] == "domain" and got["num_fake"] == got["num_real"] == 50
    assert got["fid"] == pytest.approx(fid(fake, real), rel=1e-6)
    assert got["is_mean"] == pytest.approx(inception_score(logits)[0], rel=1e-6)
