"""Bad input to the metrics and the example readers: one GMJaxError line naming the problem and the fix, never a
wrong number (issue 14). Each test fails when its check is removed."""

import os
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

import jax

from gm_jax.cli import main
from gm_jax.errors import GMJaxError
from gm_jax.metrics import (extract, feature_stats, fid, frechet_distance, inception_score, kid, knn_radii,
                            load_stats, mmd2_unbiased, prdc, save_stats)


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------------------------------- Inception Score
def test_inception_score_refuses_probabilities_and_nonfinite_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 7)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    with pytest.raises(GMJaxError, match=r"^inception_score takes logits.*looks like probabilities; pass") as e:
        inception_score(probs, splits=3)
    _one_line(e)
    with pytest.raises(GMJaxError, match="looks like probabilities"):
        inception_score(probs.astype(np.float32), splits=3)          # float32 softmax rounding is within 1e-3
    # the advertised fix: log_softmax(log p) = log p, so log-probabilities give the logits' IS
    assert inception_score(np.log(probs), splits=3) == pytest.approx(inception_score(logits, splits=3), rel=1e-12)
    # non-negative logits that do not sum to 1 are logits
    relu = np.maximum(logits, 0)
    assert inception_score(relu, splits=3)[0] > 1.0
    for bad in (np.nan, np.inf):
        x = logits.copy()
        x[4, 2] = bad
        with pytest.raises(GMJaxError, match=r"^inception_score: logits has 1 NaN or inf values \(in 1 of 60 rows\)"):
            inception_score(x, splits=3)


# ------------------------------------------------------------------------------------------------------- FID
def test_frechet_distance_refuses_an_indefinite_covariance():
    rng = np.random.default_rng(1)
    d = 6
    x = rng.normal(size=(200, d))
    mu, sigma = feature_stats(x)
    bad = sigma - 2.0 * np.linalg.eigvalsh(sigma)[-1] * np.outer(np.eye(d)[0], np.eye(d)[0])   # eigenvalue < 0
    w_min = np.linalg.eigvalsh(bad)[0]
    assert w_min < -0.1 * np.linalg.eigvalsh(sigma)[-1]
    value = re.escape(f"{w_min:.4g}")
    with pytest.raises(GMJaxError, match=rf"^frechet_distance: sigma2 is not a covariance matrix: its most negative "
                                         rf"eigenvalue is {value} .*; compute it with feature_stats") as e:
        frechet_distance(mu, sigma, mu, bad)
    _one_line(e)
    with pytest.raises(GMJaxError, match="^frechet_distance: sigma1 is not a covariance"):
        frechet_distance(mu, -np.eye(d), mu, sigma)
    # round-off is not refused: N < D (singular np.cov, eigenvalues ~ -1e-16) and float32-stored statistics
    few = rng.normal(size=(4, 40))
    mu_few, sigma_few = np.mean(few, 0), np.cov(few, rowvar=False)
    assert np.linalg.eigvalsh(sigma_few)[0] < 0
    assert np.isfinite(frechet_distance(mu_few, sigma_few.astype(np.float32), mu_few, sigma_few))


def test_statistics_files_and_values_must_be_finite_and_psd(tmp_path):
    rng = np.random.default_rng(2)
    mu, sigma = feature_stats(rng.normal(size=(100, 5)))
    bad = sigma.copy()
    bad[0, 0] = -1.0
    np.savez(tmp_path / "bad.npz", mu=mu, sigma=bad)
    with pytest.raises(GMJaxError, match=r"^FID statistics file '.*bad.npz': sigma is not a covariance matrix"):
        load_stats(tmp_path / "bad.npz")
    (tmp_path / "text.npz").write_text("mu, sigma\n")
    with pytest.raises(GMJaxError, match=r"text.npz is not an \.npz archive .*; write it with save_stats$"):
        load_stats(tmp_path / "text.npz")
    with pytest.raises(GMJaxError, match="^save_stats: sigma is not a covariance matrix"):
        save_stats(tmp_path / "out.npz", mu, bad)
    assert not os.path.exists(tmp_path / "out.npz")
    nan_mu = mu.copy()
    nan_mu[1] = np.nan
    with pytest.raises(GMJaxError, match=r"^frechet_distance: mu1 has 1 NaN or inf values; recompute"):
        frechet_distance(nan_mu, sigma, mu, sigma)
    inf_sigma = sigma.copy()
    inf_sigma[2, 3] = inf_sigma[3, 2] = np.inf
    with pytest.raises(GMJaxError, match=r"^frechet_distance: sigma2 has 2 NaN or inf values"):
        frechet_distance(mu, sigma, mu, inf_sigma)


# ------------------------------------------------------------------------------------------ feature metrics
_METRICS = {
    "fid": lambda a, b: fid(a, b),
    "kid": lambda a, b: kid(a, b, num_subsets=2, subset_size=5, key=jax.random.key(0)),
    "mmd2_unbiased": lambda a, b: mmd2_unbiased(a, b),
    "prdc": lambda a, b: prdc(b, a, k=3),
    "knn_radii": lambda a, b: knn_radii(a, k=3),
    "feature_stats": lambda a, b: feature_stats(a),
}
_FIRST_NAME = {"fid": "feats1", "kid": "feats1", "mmd2_unbiased": "x", "prdc": "fake_feats",
               "knn_radii": "feats", "feature_stats": "feats"}


@pytest.mark.parametrize("fn", sorted(_METRICS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_feature_metrics_refuse_nonfinite_features(fn, bad):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(12, 4)), rng.normal(size=(10, 4))
    a[3, 1] = a[5, 0] = bad
    with pytest.raises(GMJaxError, match=rf"^{fn}: {_FIRST_NAME[fn]} has 2 NaN or inf values \(in 2 of 12 rows\); "
                                         r"check the inputs of the feature network") as e:
        _METRICS[fn](a, b)
    _one_line(e)


# --------------------------------------------------------------------------------------------- example readers
def test_sources_refuse_nonfinite_pixels_and_points(tmp_path):
    images = np.random.default_rng(4).uniform(size=(5, 4, 4, 1)).astype(np.float32)
    one = images.copy()
    one[2, 1, 1, 0] = np.nan
    np.savez(tmp_path / "one.npz", samples=one)
    with pytest.raises(GMJaxError, match=r"one.npz: 1 values in 1 of 5 examples are NaN or inf; drop those") as e:
        extract.npz_source(str(tmp_path / "one.npz"))
    _one_line(e)
    np.savez(tmp_path / "all.npz", images=np.full_like(images, np.nan))
    with pytest.raises(GMJaxError, match=r"all.npz: 80 values in 5 of 5 examples are NaN or inf"):
        extract.npz_source(str(tmp_path / "all.npz"))
    points = np.zeros((6, 2))
    points[0, 1] = np.inf
    with pytest.raises(GMJaxError, match=r"^points: 1 values in 1 of 6 examples are NaN or inf"):
        extract.array_source(points, None, description="points")
    np.savez(tmp_path / "points.npz", samples=points)
    with pytest.raises(GMJaxError, match="NaN or inf"):
        extract.npz_source(str(tmp_path / "points.npz"))


def test_npz_source_refuses_unreadable_files_in_one_line(tmp_path):
    (tmp_path / "text.npz").write_text("not an archive\n")
    np.savez(tmp_path / "good.npz", images=np.zeros((3, 4, 4, 1), np.uint8))
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    np.save(tmp_path / "array.npy", np.zeros((3, 4, 4, 1)))
    os.replace(tmp_path / "array.npy", tmp_path / "array.npz")
    with zipfile.ZipFile(tmp_path / "member.npz", "w") as z:                 # a zip whose array is not .npy
        z.writestr("images.npy", b"not an array")
    with zipfile.ZipFile(tmp_path / "header.npz", "w") as z:                 # a damaged .npy header
        z.writestr("images.npy", b"\x93NUMPY\x01\x00garbage")
    for name, problem in [("text.npz", r"text.npz is not an \.npz archive \(it does not start like a zip file\)"),
                          ("cut.npz", r"cut.npz: cannot read it as an \.npz archive \(BadZipFile: .*\)"),
                          ("array.npz", r"array.npz holds a single \.npy array, not an \.npz archive"),
                          ("header.npz", r"header.npz: cannot read it as an \.npz archive \(ValueError: .*\)"),
                          ("member.npz", r"member.npz: its member 'images' is not a \.npy array")]:
        with pytest.raises(GMJaxError, match=problem + r".*; write the examples with np\.savez") as e:
            extract.npz_source(str(tmp_path / name))
        _one_line(e)
    np.savez(tmp_path / "keys.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(GMJaxError, match=r"keys.npz holds a, b; save the examples under the key 'images'"):
        extract.npz_source(str(tmp_path / "keys.npz"))
    np.savez(tmp_path / "levels.npz", samples=np.zeros((3, 4, 4, 1), np.uint8), num_levels=np.array([17, 17]))
    with pytest.raises(GMJaxError, match=r"levels.npz: num_levels must be one integer >= 2"):
        extract.npz_source(str(tmp_path / "levels.npz"))


def test_directory_source_reads_16_bit_grey_and_refuses_mixed_depths(tmp_path):
    rng = np.random.default_rng(5)
    grey16 = rng.integers(0, 65536, size=(3, 5, 6), dtype=np.uint16)
    os.makedirs(tmp_path / "d")
    for i, a in enumerate(grey16):
        Image.fromarray(a).save(tmp_path / "d" / f"{i}.png")
    assert Image.open(tmp_path / "d" / "0.png").mode.startswith("I")
    src = extract.directory_source(str(tmp_path / "d"))
    assert src.shape == (5, 6, 1)
    np.testing.assert_allclose(src.read(np.arange(3)), grey16[..., None] / 65535.0, rtol=1e-6)
    Image.fromarray((grey16[0] >> 8).astype(np.uint8)).save(tmp_path / "d" / "3.png")    # 8-bit grey, same size
    with pytest.raises(GMJaxError, match=r"3.png is 8-bit, but 0.png is 16-bit; convert the directory's images "
                                         "to one bit depth") as e:
        extract.directory_source(str(tmp_path / "d")).read(np.arange(4))
    _one_line(e)


def test_directory_source_names_unreadable_image_files(tmp_path):
    rng = np.random.default_rng(6)
    os.makedirs(tmp_path / "d")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "d" / "0.png")
    data = (tmp_path / "d" / "0.png").read_bytes()
    (tmp_path / "d" / "1.png").write_bytes(data[:len(data) // 2])            # truncated
    (tmp_path / "d" / "2.png").write_text("not an image\n")                  # not an image at all
    src = extract.directory_source(str(tmp_path / "d"))
    with pytest.raises(GMJaxError, match=r"1.png: cannot decode the image \(OSError: .*truncated.*\); remove it") as e:
        src.read(np.array([0, 1]))
    _one_line(e)
    with pytest.raises(GMJaxError, match=r"2.png is not an image file PIL can read; remove it") as e:
        src.read(np.array([2]))
    _one_line(e)
    os.remove(tmp_path / "d" / "0.png")                                      # the first file is read at once
    with pytest.raises(GMJaxError, match="1.png: cannot decode the image"):
        extract.directory_source(str(tmp_path / "d"))


# ------------------------------------------------------------------------------------------------ the command
def test_evaluate_bad_files_are_one_line_and_exit_2(tmp_path, capsys):
    good = np.random.default_rng(7).integers(0, 256, (8, 4, 4, 1), dtype=np.uint8)
    np.savez(tmp_path / "good.npz", samples=good)
    (tmp_path / "text.npz").write_text("not an archive\n")
    nan = good.astype(np.float32) / 255
    nan[0, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", samples=nan)
    mu, sigma = np.zeros(16), np.eye(16)
    sigma[0, 0] = -1.0
    np.savez(tmp_path / "stats.npz", mu=mu, sigma=sigma)
    base = ["evaluate", "--metrics", "fid", "--features", "raw", "--out", str(tmp_path / "metrics.json")]
    not_npz = "text.npz is not an .npz archive (it does not start like a zip file); write"
    cases = [(["--fake", str(tmp_path / "text.npz"), "--real", str(tmp_path / "good.npz")], not_npz),
             (["--fake", str(tmp_path / "good.npz"), "--real", str(tmp_path / "text.npz")], not_npz),
             (["--fake", str(tmp_path / "nan.npz"), "--real", str(tmp_path / "good.npz")], "are NaN or inf"),
             (["--fake", str(tmp_path / "good.npz"), "--real", str(tmp_path / "stats.npz")],
              "stats.npz': sigma is not a covariance matrix")]
    for argv, message in cases:
        assert main(base + argv) == 2
        line = _error_line(capsys)
        assert message in line, line
    assert not os.path.exists(tmp_path / "metrics.json")
