"""Class and mode coverage on hand-computed cases."""

import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.metrics.coverage import class_coverage, mode_coverage


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


# ------------------------------------------------------------------------------------------- class coverage
def test_all_samples_in_one_class():
    got = class_coverage(np.full(17, 3), 10)
    assert got["class_kl"] == pytest.approx(np.log(10), rel=1e-15)   # 1 * log(1 * 10)
    assert got["classes_under_half"] == 9
    np.testing.assert_array_equal(got["histogram"], np.eye(10)[3])


def test_uniform_labels_are_exactly_balanced():
    got = class_coverage(jnp.tile(jnp.arange(7), 5), 7)
    assert got["class_kl"] == 0.0 and got["classes_under_half"] == 0
    np.testing.assert_array_equal(got["histogram"], np.full(7, 1 / 7))
    assert got["histogram"].dtype == np.float64 and got["histogram"].shape == (7,)


def test_hand_computed_histogram():
    # C = 5, N = 8, counts (4, 2, 1, 1, 0): shares (1/2, 1/4, 1/8, 1/8, 0), uniform share 1/5, half of it 1/10:
    #   KL = 1/2 log(5/2) + 1/4 log(5/4) + 2 * 1/8 log(5/8) + 0
    #      = 0.458145... + 0.055786... - 0.117501... = 0.396430...
    #   under half (p < 0.1): only the empty class (1/8 = 0.125 is not).
    labels = np.array([0, 1, 0, 2, 0, 1, 3, 0], np.int32)
    got = class_coverage(labels, 5)
    want = 0.5 * np.log(2.5) + 0.25 * np.log(1.25) + 0.25 * np.log(0.625)
    assert got["class_kl"] == pytest.approx(want, rel=1e-14)
    assert got["class_kl"] == pytest.approx(0.396430, abs=1e-6)
    assert got["classes_under_half"] == 1
    np.testing.assert_array_equal(got["histogram"], [0.5, 0.25, 0.125, 0.125, 0.0])


def test_classes_exactly_at_half_share_do_not_count():
    # C = 3, N = 6: half the uniform share is 1/6, exactly the share of one sample; 1/6 < 1/6 is false.
    got = class_coverage(np.array([0, 0, 0, 0, 1, 2]), 3)
    assert got["classes_under_half"] == 0
    got = class_coverage(np.array([0, 0, 0, 0, 0, 1, 2]), 3)   # 1/7 < 1/6
    assert got["classes_under_half"] == 2


@pytest.mark.parametrize("labels,num_classes,pattern", [
    (np.array([0.0, 1.0]), 3, r"labels must be integer class indices \[N\], got dtype float64; .*argmax"),
    (np.array([True, False]), 3, r"labels must be integer class indices"),
    (np.zeros((4, 3), np.int64), 3, r"labels must have shape \[N\].*got shape \(4, 3\)"),
    (np.zeros((0,), np.int64), 3, r"labels is empty"),
    (np.array([0, 3, -1, 2]), 3, r"2 of 4 labels lie outside \[0, 3\) \(min -1, max 3\)"),
    (np.array([0, 1]), 0, r"num_classes must be a positive integer"),
    (np.array([0, 1]), 2.0, r"num_classes must be a positive integer"),
])
def test_class_coverage_refuses_bad_input(labels, num_classes, pattern):
    with pytest.raises(GMJaxError, match=r"^class_coverage: " + pattern) as e:
        class_coverage(labels, num_classes)
    _one_line(e)


# -------------------------------------------------------------------------------------------- mode coverage
def test_mode_coverage_hand_case():
    d = np.array([
        [0.5, 4.0, 9.0],    # mode 0, high quality
        [3.0, 5.0, 7.0],    # mode 0, exactly at the threshold: counts (<=)
        [3.2, 3.1, 8.0],    # nearest mode 1 but 3.1 > 3: low quality, counts for nobody
        [6.0, 2.9, 2.95],   # mode 1 (2.9 < 2.95), high quality
        [9.0, 9.0, 10.0],   # low quality
    ])
    got = mode_coverage(d)
    assert got["num_modes"] == 3 and got["modes_covered"] == 2
    assert got["high_quality"] == pytest.approx(3 / 5)
    np.testing.assert_array_equal(got["per_mode"], [2, 1, 0])
    assert got["per_mode"].dtype == np.int64
    # min_samples = 2: only mode 0 has two high-quality samples.
    assert mode_coverage(d, min_samples=2)["modes_covered"] == 1
    # threshold 3.1 (inclusive) lets sample 2 in for mode 1; threshold 0.5 keeps sample 0 only.
    got = mode_coverage(d, threshold=3.1)
    np.testing.assert_array_equal(got["per_mode"], [2, 2, 0])
    assert got["high_quality"] == pytest.approx(4 / 5)
    got = mode_coverage(d, threshold=0.5)
    assert got["modes_covered"] == 1 and got["high_quality"] == pytest.approx(1 / 5)


def test_mode_coverage_ties_go_to_the_lowest_mode():
    got = mode_coverage(np.array([[1.0, 1.0], [2.0, 2.0]]))
    np.testing.assert_array_equal(got["per_mode"], [2, 0])
    assert got["modes_covered"] == 1


@pytest.mark.parametrize("distances,kwargs,pattern", [
    (np.ones(5), {}, r"distances must have shape \[N, M\].*got shape \(5,\)"),
    (np.ones((0, 3)), {}, r"distances must have shape \[N, M\]"),
    (np.array([[1.0, np.nan]]), {}, r"distances has 1 negative, NaN or inf values"),
    (np.array([[1.0, -0.5], [np.inf, 1.0]]), {}, r"distances has 2 negative, NaN or inf values"),
    (np.array([["a", "b"]]), {}, r"distances must be a real array"),
    (np.ones((2, 2)), dict(threshold=-1.0), r"threshold must be a finite number >= 0"),
    (np.ones((2, 2)), dict(threshold=float("nan")), r"threshold must be a finite number >= 0"),
    (np.ones((2, 2)), dict(min_samples=0), r"min_samples must be a positive integer"),
])
def test_mode_coverage_refuses_bad_input(distances, kwargs, pattern):
    with pytest.raises(GMJaxError, match=r"^mode_coverage: " + pattern) as e:
        mode_coverage(distances, **kwargs)
    _one_line(e)
