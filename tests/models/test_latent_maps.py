"""The continuous latent maps (``decode_latent`` / ``encode_latent``) the property table measures path lengths
and linear probes on: each decodes to exactly what the family's own sampler draws from the same latent (before
rounding to levels), and the bijective ones invert their encoder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.models import MODELS, override

_UNET = {"channels": "8", "channel_mult": "1", "attention_resolutions": "", "dropout": "0"}
TINY = {
    "vae": {"hidden": "16", "latent_dim": "3"},
    "dcgan": {"width": "8"},
    "realnvp": {"coupling_pairs": "1", "channels": "8"},
    "maf": {"num_layers": "2", "hidden": "16"},
    "ddpm": {**_UNET, "num_steps": "20", "schedule": "cosine"},
    "score_sde": {**_UNET, "ode_steps": "8", "denoise": "false"},
}


def _model(name, digits):
    config_cls, model_cls = MODELS[name]
    cfg = override(config_cls(), TINY[name])
    model = model_cls(cfg, digits.spec)
    batch = {k: jnp.asarray(v[:8]) for k, v in digits.read("train", np.arange(8)).items()}
    return model, model.init(jax.random.key(0), batch), batch


def _levels(continuous, num_levels):
    return np.clip(np.round(np.asarray(continuous) * (num_levels - 1)), 0, num_levels - 1)


@pytest.mark.parametrize("name", ["vae", "dcgan", "ddpm", "score_sde"])
def test_decode_latent_is_the_samplers_map_before_rounding(name, digits):
    model, variables, _ = _model(name, digits)
    k = digits.spec.num_levels
    key = jax.random.key(3)
    if name == "vae":  # z ~ N(0, I) from the first half of the sampler's key split
        z = jax.random.normal(jax.random.split(key)[0], (5,) + model.latent_shape)
        drawn = model.sample(variables, key, 5, mode="mean")
        expected = _levels(model.decode_latent(variables, z), k)
    elif name == "dcgan":  # quantize: floor of the [0, 1] value times K
        z = jax.random.normal(jax.random.split(key)[0], (5,) + model.latent_shape)
        drawn = model.sample(variables, key, 5)
        expected = np.clip(np.floor(np.asarray(model.decode_latent(variables, z)) * k), 0, k - 1)
    elif name == "ddpm":  # the ddim sampler (eta 0) starts from N(0, I) drawn with the first half of its key
        z = jax.random.normal(jax.random.split(key)[0], (5,) + model.latent_shape)
        drawn = model.sample(variables, key, 5, sampler="ddim", steps=10)
        expected = _levels(model.decode_latent(variables, z, steps=10), k)
    else:  # the ode sampler starts from the SDE's prior draw; images in [-1, 1] quantized by floor
        z = model.sde.prior_sample(key, (5,) + model.latent_shape)
        drawn = model.sample(variables, key, 5, sampler="ode")
        expected = np.clip(np.floor(np.asarray(model.decode_latent(variables, z)) * k), 0, k - 1)
    np.testing.assert_array_equal(np.asarray(drawn, np.float64), expected)


@pytest.mark.parametrize("name", ["realnvp", "maf"])
def test_flow_latents_invert_to_the_bin_centres(name, digits):
    model, variables, batch = _model(name, digits)
    x = batch["image"]
    z = model.encode_latent(variables, x)
    assert z.shape == (8,) + model.latent_shape
    back = model.decode_latent(variables, z)
    centres = (np.asarray(x, np.float64) + 0.5) / digits.spec.num_levels
    np.testing.assert_allclose(np.asarray(back), centres, atol=2e-4)


@pytest.mark.parametrize("name", ["ddpm", "score_sde"])
def test_ode_latents_roughly_invert(name, digits):
    """DDIM inversion and the forward ODE are exact only as the step size -> 0: a round trip lands within a
    fraction of a level of the image (an untrained network's field is smooth)."""
    model, variables, batch = _model(name, digits)
    kw = {"steps": 20} if name == "ddpm" else {}
    z = model.encode_latent(variables, batch["image"], **kw)
    assert z.shape == (8,) + model.latent_shape and np.isfinite(np.asarray(z)).all()
    back = np.asarray(model.decode_latent(variables, z, **kw))
    target = np.asarray(batch["image"], np.float64) / (digits.spec.num_levels - 1)
    assert np.abs(back - target).mean() < 0.05


def test_vae_encode_latent_is_the_posterior_mean(digits):
    model, variables, batch = _model("vae", digits)
    np.testing.assert_array_equal(model.encode_latent(variables, batch["image"]),
                                  model.encode(variables, batch["image"]))
