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


# ------------------------------------------------------------------------------------------ toy2d mode distances
def test_toy2d_mode_distances_hand_values():
    # Centres at radius (4/1.414) / (0.5/1.414) = 8 standard deviations; the opposite centre is 16 away.
    c0 = np.array([[4 / 1.414, 0.0]])
    d = toy2d.mode_distances("eight_gaussians", np.concatenate([np.zeros((1, 2)), c0]))
    np.testing.assert_allclose(d[0], np.full(8, 8.0), rtol=1e-12)
    np.testing.assert_allclose(d[1, [0, 2, 4, 6]], [0.0, 8 * np.sqrt(2), 16.0, 8 * np.sqrt(2)], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d[1, 1], 16 * np.sin(np.pi / 8), rtol=1e-12)   # chord to the 45-degree neighbour
    r = toy2d.mode_distances("rings", np.array([[0.0, 0.0], [0.0, -1.5], [0.6, 0.8]]))
    np.testing.assert_allclose(r, [[37.5, 28.125, 18.75, 9.375], [18.75, 9.375, 0.0, 9.375],
                                   [25.0, 15.625, 6.25, 3.125]], rtol=1e-12, atol=1e-12)
    assert r.shape == (3, 4) and r.dtype == np.float64
    with pytest.raises(GMJaxError, match=r"^toy2d mode_distances supports 'eight_gaussians' and 'rings'.*'moons'"):
        toy2d.mode_distances("moons", np.zeros((2, 2)))
    with pytest.raises(GMJaxError, match=r"expects points of shape \[N, 2\], got \(2, 3\)"):
        toy2d.mode_distances("rings", np.zeros((2, 3)))


def _p_disk(radius, offset):
    """P(||g - c|| <= radius) for g ~ N(0, I_2), ||c|| = offset: int_0^radius r exp(-(r^2 + offset^2)/2) I0(r offset)
    dr (a non-central chi-square(2) cdf), by 64-point Gauss-Legendre quadrature."""
    x, w = np.polynomial.legendre.leggauss(64)
    r = 0.5 * radius * (x + 1)
    return float(np.sum(0.5 * radius * w * r * np.exp(-(r**2 + offset**2) / 2) * np.i0(r * offset)))


def test_toy2d_samples_lie_within_three_std_of_their_modes():
    import math

    from gm_jax.metrics.coverage import mode_coverage

    n = 5000
    # eight_gaussians: ||x - own centre|| / std is chi(2), P(<= 3) = 1 - exp(-4.5) = 0.98889; a point farther out
    # can still be within 3 std of one of the two neighbours, 16 sin(pi/8) = 6.12 std away (their disks are
    # disjoint from the own one and from each other), adding 2 * 0.000601; farther centres add < 1e-12.
    assert _p_disk(3.0, 0.0) == pytest.approx(1 - np.exp(-4.5), rel=1e-12)
    p = (1 - np.exp(-4.5)) + 2 * _p_disk(3.0, 16 * np.sin(np.pi / 8))
    got = mode_coverage(toy2d.mode_distances("eight_gaussians", toy2d.sample("eight_gaussians", n, 3)))
    assert abs(got["high_quality"] - p) < 4 * np.sqrt(p * (1 - p) / n), (got["high_quality"], p)
    # rings: the radial offset is ~N(0, 0.08^2) for radii >= 9 std, so P(<= 3 std) = erf(3/sqrt(2)) = 0.99730
    # (the exact Rice probabilities differ by < 4e-5); the next ring is >= 9.4 std away.
    p = math.erf(3 / math.sqrt(2))
    got = mode_coverage(toy2d.mode_distances("rings", toy2d.sample("rings", n, 3)))
    assert abs(got["high_quality"] - p) < 4 * np.sqrt(p * (1 - p) / n), (got["high_quality"], p)


@pytest.mark.parametrize("name,modes", [("eight_gaussians", 8), ("rings", 4)])
def test_toy2d_training_points_cover_every_mode_and_a_collapse_covers_one(name, modes):
    from gm_jax.metrics.coverage import mode_coverage

    train = toy2d.sample(name, toy2d.NUM_TRAIN, toy2d.split_seed(name, "train"))
    got = mode_coverage(toy2d.mode_distances(name, train))
    assert got["num_modes"] == modes and got["modes_covered"] == modes
    assert np.all(got["per_mode"] > 0.9 * toy2d.NUM_TRAIN / modes)
    # Every sample collapsed onto (a noisy copy of) mode 2.
    rng = np.random.default_rng(0)
    if name == "eight_gaussians":
        collapsed = (4 / 1.414) * np.array([0.0, 1.0]) + rng.normal(size=(500, 2)) * 0.1
    else:
        angle = rng.uniform(0, 2 * np.pi, 500)
        collapsed = 1.5 * np.stack([np.cos(angle), np.sin(angle)], -1) + rng.normal(size=(500, 2)) * 0.02
    got = mode_coverage(toy2d.mode_distances(name, collapsed))
    assert got["modes_covered"] == 1 and got["per_mode"][2] == 500 and got["high_quality"] == 1.0


def test_random_hflip_mirrors_each_image_or_keeps_it():
    import jax
    import jax.numpy as jnp

    from gm_jax.data import random_hflip

    x = jax.random.randint(jax.random.key(0), (400, 4, 5, 3), 0, 256).astype(jnp.uint8)
    y = random_hflip(x, jax.random.key(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    kept = np.all(np.asarray(y == x), axis=(1, 2, 3))
    flipped = np.all(np.asarray(y == x[:, :, ::-1]), axis=(1, 2, 3))
    assert np.all(kept ^ flipped)  # every image is one or the other (random images are never symmetric)
    assert 150 < flipped.sum() < 250  # about half: Binomial(400, 1/2) is 200 +- 10
    assert not np.array_equal(flipped, np.all(np.asarray(random_hflip(x, jax.random.key(2)) == x[:, :, ::-1]),
                                                     axis=(1, 2, 3)))  # the key decides
    with pytest.raises(GMJaxError, match=r"\[B, H, W, C\]"):
        random_hflip(jnp.zeros((4, 2)), jax.random.key(0))
