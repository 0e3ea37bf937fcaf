"""The ddpm model through the model interface: toy2d points and (conditional, learned-variance) digits."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.models import DDPM, MODELS, DDPMConfig
from gm_jax.train import fit
from gm_jax.train.config import TrainConfig

POINTS = DDPMConfig(num_steps=50, hidden=(16,), embed_dim=8)
IMAGES = DDPMConfig(num_steps=50, schedule="cosine", channels=8, channel_mult=(1,), attention_resolutions=(),
                    conditional=True, learn_variance=True, eval_timesteps=4)
TINY_TRAIN = TrainConfig(steps=4, batch_size=32, log_every=2, checkpoint_every=4, eval_max_examples=32, num_samples=4)


def _batch(dataset, n=16):
    return {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(n)).items()}


def test_ddpm_is_registered_and_validates():
    assert MODELS["ddpm"] == (DDPMConfig, DDPM) and DDPM.has_log_prob
    points = DataSpec("p", "points", (2,), None, 0)
    for bad, match in [(dict(prediction="score"), "prediction"), (dict(learn_variance=True, prediction="v"), "hybrid"),
                       (dict(sample_steps=2000), "sample_steps"), (dict(num_steps=20), "rescaled betas"),
                       (dict(conditional=True), "needs labels"), (dict(guidance=1.0), "conditional")]:
        with pytest.raises(GMJaxError, match=match):
            DDPM(DDPMConfig(**bad), points)
    model = DDPM(POINTS, points)
    v = model.init(jax.random.key(0), {"point": jnp.zeros((2, 2))})
    with pytest.raises(GMJaxError, match="ddpm or ddim"):
        model.sample(v, jax.random.key(0), 2, sampler="pc")


def test_ddpm_points_fit_and_samplers(tmp_path, data_dir):
    from gm_jax.data import load_dataset

    moons = load_dataset("toy2d/moons", data_dir)
    model = DDPM(POINTS, moons.spec)
    results = fit(model, moons, TINY_TRAIN, str(tmp_path), progress=False)
    assert np.isfinite(results["test_nll_nats"])  # the full 50-term bound, continuous decoder
    v = model.init(jax.random.key(0), _batch(moons))
    # x0-prediction: eps_fn converts the raw output, and the two samplers run on it.
    x0_model = DDPM(dataclasses.replace(POINTS, prediction="x0"), moons.spec)
    for sampler, steps in (("ddpm", None), ("ddim", 10)):
        s = jax.jit(lambda v, k: x0_model.sample(v, k, 5, sampler=sampler, steps=steps))(v, jax.random.key(1))
        assert s.shape == (5, 2) and bool(jnp.isfinite(s).all()), sampler


def test_ddpm_conditional_digits_hybrid_guidance(digits):
    model = DDPM(IMAGES, digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    loss, metrics, _ = jax.jit(model.loss)(v, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and np.isfinite(float(metrics["vlb_term_bits_per_dim"]))
    # Zero-initialised output: eps = 0, so L_simple = E[z^2] = 1 per dim.
    assert float(loss) == pytest.approx(1.0, abs=0.35)
    sample = jax.jit(lambda v, k, w: model.sample(v, k, 4, sampler="ddim", steps=5, guidance=w))
    s = sample(v, jax.random.key(2), 2.0)
    assert s.shape == (4, 8, 8, 1) and s.dtype == jnp.uint8 and int(s.max()) < digits.spec.num_levels
    lp = jax.jit(lambda v, x, k, y: model.log_prob(v, x, k, labels=y))(v, batch["image"][:4], jax.random.key(3),
                                                                       batch["label"][:4])
    assert lp.shape == (4,) and bool(jnp.isfinite(lp).all()) and bool((lp < 0).all())
