import numpy as np
import pytest

from gm_jax.data import batch_indices, binarize, dequantize, load_dataset, quantize, to_centres, from_centres
from gm_jax.data import toy2d
from gm_jax.errors import GMJaxError


def test_digits_split_is_fixed_disjoint_and_complete(digits):
    from gm_jax.data.digits import read_digits, split_indices

    assert digits.spec.shape == (8, 8, 1) and digits.spec.num_levels == 17 and digits.spec.num_classes == 10
    assert digits.size("train") == 1437 and digits.size("test") == 360
    train, test = digits.read("train"), digits.read("test")
    assert train["image"].dtype == np.uint8 and train["image"].max() == 16 and train["image"].min() == 0
    images, labels = read_digits()
    idx = split_indices(len(images))
    assert not set(idx["train"]) & set(idx["test"]) and len(idx["train"]) + len(idx["test"]) == 1797
    # The prepared split holds exactly the embedded rows of the fixed permutation (in TFDS's own order).
    key = lambda imgs, labs: sorted(map(bytes, np.concatenate([imgs.reshape(len(imgs), -1), labs[:, None]], 1)
                                        .astype(np.uint8)))
    assert key(test["image"], test["label"]) == key(images[idx["test"]], labels[idx["test"]])


def test_unknown_and_unavailable_datasets_give_one_clear_error(data_dir):
    with pytest.raises(GMJaxError, match="unknown dataset 'no_such_dataset'"):
        load_dataset("no_such_dataset", data_dir)
    with pytest.raises(GMJaxError, match="unknown toy2d dataset"):
        load_dataset("toy2d/no_such", data_dir)
    with pytest.raises(GMJaxError, match="'mnist' is not prepared .*download_and_prepare"):
        load_dataset("mnist", data_dir, download=False)


@pytest.mark.parametrize("name", [n for n in toy2d.NAMES if n != "pinwheel"])
def test_toy2d_density_integrates_to_one(name):
    h = 0.05  # midpoint rule on [-5.5, 5.5]^2
    g = -5.5 + h * (np.arange(220) + 0.5)
    xx, yy = np.meshgrid(g, g)
    p = np.exp(toy2d.log_density(name, np.stack([xx.ravel(), yy.ravel()], -1)))
    assert p.sum() * h**2 == pytest.approx(1.0, abs=1e-2)
    assert np.isfinite(toy2d.log_density(name, toy2d.sample(name, 500, 0))).all()


# Entropies computed independently (numpy Monte Carlo, shared/reference/published_results.md §4b).
@pytest.mark.parametrize("name,h", [("eight_gaussians", 2.834), ("checkerboard", np.log(32)), ("rings", 2.62),
                                    ("moons", 2.40)])
def test_toy2d_entropy_matches_reference(name, h):
    est, se = toy2d.entropy(name, num=10_000)
    assert abs(est - h) < 5 * se + 0.015, (est, se)


def test_toy2d_datasets_load_with_fixed_points(data_dir):
    d = load_dataset("toy2d/eight_gaussians", data_dir)
    assert d.spec.kind == "points" and d.spec.shape == (2,) and d.size("train") == toy2d.NUM_TRAIN
    pts = d.read("test")["point"]
    ref = toy2d.sample("eight_gaussians", toy2d.NUM_TEST, toy2d.split_seed("eight_gaussians", "test"))
    np.testing.assert_allclose(np.sort(pts[:, 0]), np.sort(ref[:, 0].astype(np.float32)))
    with pytest.raises(GMJaxError, match="no closed-form density"):
        toy2d.log_density("pinwheel", pts)


def test_batch_indices_cover_each_epoch_once_and_depend_only_on_seed_and_step():
    n, b = 103, 10
    epoch = np.concatenate([batch_indices(3, s, n, b) for s in range(10)])
    assert len(set(epoch)) == 100 and epoch.max() < n
    assert not np.array_equal(batch_indices(3, 10, n, b), batch_indices(3, 0, n, b))  # new epoch, new order
    np.testing.assert_array_equal(batch_indices(3, 7, n, b), batch_indices(3, 7, n, b))
    assert not np.array_equal(batch_indices(4, 7, n, b), batch_indices(3, 7, n, b))


def test_dequantize_quantize_roundtrip_and_log_det():
    import jax

    x = np.arange(17, dtype=np.uint8).reshape(1, 17)
    y, log_det = dequantize(x, 17, jax.random.key(0))
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    np.testing.assert_array_equal(quantize(y, 17), x)
    assert float(log_det[0]) == pytest.approx(17 * np.log(2 / 17), rel=1e-6)
    y01, ld01 = dequantize(x, 17, jax.random.key(0), data_range="[0,1]")
    np.testing.assert_array_equal(quantize(y01, 17, "[0,1]"), x)
    assert float(ld01[0]) == pytest.approx(17 * np.log(1 / 17), rel=1e-6)
    np.testing.assert_array_equal(from_centres(to_centres(x, 17), 17), x)
    np.testing.assert_array_equal(binarize(x, 17), (x / 16 >= 0.5).astype(np.float32))
    with pytest.raises(GMJaxError, match="unknown data range"):
        dequantize(x, 17, jax.random.key(0), data_range="[0,255]")
