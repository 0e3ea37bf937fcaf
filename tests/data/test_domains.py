"""Two-domain datasets (gm_jax.data.domains): unaligned pairs that use every B image once per cycle, the
embedded digits2inverted in the cycle_gan layout, and CycleGAN trained on it through its second domain."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.data.domains import UnalignedPairs
from gm_jax.errors import GMJaxError


@pytest.mark.parametrize("na,nb", [(7, 4), (5, 12), (6, 6), (3, 1)])
def test_unaligned_pairs_cycle_through_both_domains(na, nb):
    a = [{"image": np.full((1,), i)} for i in range(na)]
    b = [{"image": np.full((1,), 100 + j)} for j in range(nb)]
    pairs = UnalignedPairs(a, b)
    assert len(pairs) == max(na, nb)
    rows = [pairs[i] for i in range(na * nb)]
    assert [int(r["image"][0]) for r in rows] == [i % na for i in range(na * nb)]
    bs = [int(r["image_b"][0]) - 100 for r in rows]
    for start in range(0, na * nb, nb):  # every B image once in each run of nb examples
        assert sorted(bs[start:start + nb]) == list(range(nb))
    if nb > 2:
        assert any(bs[i] != i % nb for i in range(nb))  # not aligned by index


@pytest.fixture(scope="module")
def two_domain(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("digits2inverted", data_dir)


def test_digits2inverted_reads_as_two_domains(two_domain, digits):
    spec = two_domain.spec
    assert spec.second_domain and spec.shape == (8, 8, 1) and spec.num_levels == 17 and spec.num_classes == 0
    sizes = {k: two_domain.size(k) for k in two_domain.splits}
    assert sizes["trainA"] + sizes["trainB"] == digits.size("train") and sizes["train"] == sizes["trainA"]
    assert sizes["testA"] + sizes["testB"] == digits.size("test")
    batch = two_domain.read("train", np.arange(8))
    assert set(batch) == {"image", "image_b"} and batch["image_b"].shape == (8, 8, 8, 1)
    # B images are inverted digits: mostly bright, where digits are mostly dark
    assert batch["image"].mean() < 8 < batch["image_b"].mean()
    assert set(two_domain.read("testB", [0, 1])) == {"image"}  # a single domain, e.g. as an FID reference


def test_cyclegan_takes_domain_b_from_the_dataset(two_domain, digits):
    from gm_jax.models.cyclegan import CycleGAN, CycleGANConfig

    model = CycleGAN(CycleGANConfig(width=4, num_blocks=1, d_width=4, d_layers=1), two_domain.spec)
    assert model.transform == "second_domain"
    batch = {k: jnp.asarray(v) for k, v in two_domain.read("train", np.arange(4)).items()}
    a, b = model.unpaired_batch(batch, jax.random.key(0))
    for y, x in ((a, batch["image"]), (b, batch["image_b"])):  # each dequantized within its own bin
        np.testing.assert_array_equal(np.floor((np.asarray(y) + 1) / 2 * 17), x)
    with pytest.raises(GMJaxError, match="two-domain dataset"):
        CycleGAN(CycleGANConfig(transform="second_domain"), digits.spec)
    assert CycleGAN(CycleGANConfig(), digits.spec).transform == "invert"


@pytest.mark.slow
def test_cyclegan_learns_the_inversion_from_unpaired_domains(two_domain, tmp_path):
    """300 steps on digits2inverted (A and B never show the same digit; about 20 s on 2 CPU cores):
    G_AB(test A) approaches the inverted test A images, which the model never saw (error 0.053 against
    1.488 for the identity map)."""
    from gm_jax.models.cyclegan import CycleGAN, CycleGANConfig
    from gm_jax.train import TrainConfig, eval_variables, fit, restore_state

    model = CycleGAN(CycleGANConfig(width=16, num_blocks=1, d_width=16, d_layers=2, padding="zero", lr=5e-4),
                     two_domain.spec)
    cfg = TrainConfig(**{**CycleGAN.default_train, "steps": 300, "batch_size": 32, "checkpoint_every": 300,
                         "num_samples": 16, "hflip": True})
    test = jnp.asarray(two_domain.read("testA")["image"])
    a, target = model.to_model_space(test), model.to_model_space(16 - test)
    fit(model, two_domain, cfg, str(tmp_path), progress=False)
    err = float(jnp.mean(jnp.abs(model.generate(eval_variables(restore_state(model, two_domain, cfg,
                                                                             str(tmp_path))), a) - target)))
    print(f"translation error after 300 steps: {err:.3f} (identity map {float(jnp.mean(jnp.abs(a - target))):.3f})")
    assert err < 0.3
