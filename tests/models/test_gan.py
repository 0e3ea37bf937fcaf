"""The GAN model through the model interface and the trainer's parameter groups: presets and validation,
each group's loss against the loss functions, the alternating n_critic updates, WGAN clipping, mode
coverage on eight_gaussians, sampling and interpolation in data space."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.losses import discriminator_loss, generator_loss
from gm_jax.models import GAN, MODELS, DCGANConfig, GANConfig, SNGANConfig, StyleGANSmallConfig, WGANGPConfig
from gm_jax.train import TrainConfig, fit, init_train_state, make_train_step
from gm_jax.train.loop import make_optimizers

TINY = dict(hidden=(16, 16), latent_dim=4)


@pytest.fixture(scope="module")
def gaussians(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("toy2d/eight_gaussians", data_dir)


def _batch(dataset, n=16):
    return {k: jnp.asarray(v) for k, v in dataset.read("train", np.arange(n)).items()}


def test_presets_are_registered_and_validate(gaussians):
    expected = {"dcgan": DCGANConfig, "wgan_gp": WGANGPConfig, "sngan": SNGANConfig,
                "stylegan_small": StyleGANSmallConfig}
    for name, cfg in expected.items():
        assert MODELS[name] == (cfg, GAN) and not GAN.has_log_prob
    assert (WGANGPConfig().loss, WGANGPConfig().penalty, WGANGPConfig().n_critic) == ("wasserstein", "gp", 5)
    assert (SNGANConfig().loss, SNGANConfig().architecture) == ("hinge", "resnet")
    model = GAN(WGANGPConfig(**TINY), gaussians.spec)
    assert model.param_groups == (("discriminator", 5), ("generator", 1))
    assert model.group_train_overrides["discriminator"] == {"lr": 1e-4, "b1": 0.0, "b2": 0.9}
    for bad, match in [(dict(loss="bce"), "unknown loss 'bce'"), (dict(penalty="l2"), "unknown penalty"),
                       (dict(n_critic=0), "n_critic"), (dict(lr_generator=0.0), "lr_generator"),
                       (dict(weight_clip=-1.0), "weight_clip"), (dict(architecture="vit"), "architecture")]:
        with pytest.raises(GMJaxError, match=match):
            GAN(GANConfig(**bad), gaussians.spec)
    with pytest.raises(GMJaxError, match="needs labels"):
        GAN(GANConfig(conditional=True), gaussians.spec)
    v = model.init(jax.random.key(0), _batch(gaussians))
    with pytest.raises(GMJaxError, match="no likelihood"):
        model.log_prob(v, _batch(gaussians)["point"], jax.random.key(0))


@pytest.mark.parametrize("kind,penalty", [("non_saturating", "none"), ("wasserstein", "gp"), ("hinge", "r1"),
                                          ("least_squares", "r2"), ("minimax", "none")])
def test_group_losses_equal_the_loss_functions_on_the_networks_outputs(gaussians, kind, penalty):
    model = GAN(GANConfig(loss=kind, penalty=penalty, penalty_weight=0.0 if penalty != "none" else 10.0, **TINY),
                gaussians.spec)
    batch = _batch(gaussians)
    v = model.init(jax.random.key(0), batch)
    key = jax.random.key(3)
    # The model draws (data noise, z, penalty key) from key; recompute its fake batch independently.
    _, k_z, _ = jax.random.split(key, 3)
    z = jax.random.normal(k_z, (16, 4))
    fake = model.generator.apply({"params": v["params"]["generator"]}, z)
    d = lambda x: model.discriminator.apply({"params": v["params"]["discriminator"]}, x)
    real = batch["point"]
    d_loss, metrics, _ = model.loss(v, batch, key, group="discriminator")
    np.testing.assert_allclose(d_loss, jnp.mean(discriminator_loss(d(real), d(fake), kind=kind)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(metrics["d_fake"], jnp.mean(d(fake)), rtol=1e-5, atol=1e-6)
    g_loss, _, _ = model.loss(v, batch, key, group="generator")
    np.testing.assert_allclose(g_loss, jnp.mean(generator_loss(d(fake), kind=kind)), rtol=1e-5, atol=1e-6)
    if penalty != "none":  # weight 0 adds exactly 0; a positive weight adds a positive penalty
        assert float(metrics[penalty]) == 0.0
        heavy = GAN(GANConfig(loss=kind, penalty=penalty, penalty_weight=10.0, **TINY), gaussians.spec)
        assert float(heavy.loss(v, batch, key, group="discriminator")[0]) > float(d_loss)


def test_trainer_updates_the_critic_n_times_then_the_generator(gaussians):
    """One train step = n_critic Adam steps on the discriminator group (generator fixed), then one on the
    generator; checked against the same updates written out by hand. WGAN clipping keeps the critic in
    the box."""
    model = GAN(GANConfig(loss="wasserstein", n_critic=2, weight_clip=0.05, **TINY), gaussians.spec)
    batch = _batch(gaussians)
    cfg = TrainConfig(lr=1e-3)
    tx = make_optimizers(model, cfg)
    v = model.init(jax.random.key(0), batch)
    state = init_train_state(v, tx, jax.random.key(1), ema=False)
    new, metrics = jax.jit(make_train_step(model, tx))(state, batch)
    # By hand: the step's keys are derived exactly as the trainer does (fold_in step, then group index).
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), 0)

    @jax.jit
    def by_hand(params):
        opt = {g: tx[g].init(params[g]) for g in ("discriminator", "generator")}
        for gi, (group, repeats) in enumerate(model.param_groups):
            for k in jax.random.split(jax.random.fold_in(key, gi), repeats):
                loss = lambda p: model.loss({"params": {**params, group: p}, "state": v["state"]}, batch, k,
                                            group=group)[0]
                updates, opt[group] = tx[group].update(jax.grad(loss)(params[group]), opt[group], params[group])
                params = {**params, group: optax.apply_updates(params[group], updates)}
        return params

    params = by_hand(v["params"])
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), new.params, params)
    assert max(float(jnp.abs(w).max()) for w in jax.tree_util.tree_leaves(new.params["discriminator"])) <= 0.05 + 1e-7
    assert max(float(jnp.abs(w).max()) for w in jax.tree_util.tree_leaves(new.params["generator"])) > 0.05
    assert {"discriminator/loss", "generator/loss", "discriminator/d_real"} <= set(metrics)


@pytest.mark.slow  # ~18 s; the default suite trains GANs through the CLI and the critic-update tests
def test_non_saturating_gan_covers_the_eight_gaussians(gaussians, tmp_path):
    """600 steps of batch 256 (about 10 s on 2 CPU cores): samples land near most of the 8 modes.
    Measured: all 8 modes covered (54-170 of 1000 samples each within 3 std of its centre)."""
    from gm_jax.train import eval_variables, restore_state

    model = GAN(DCGANConfig(lr_generator=1e-3, lr_discriminator=1e-3), gaussians.spec)
    cfg = TrainConfig(**{**GAN.default_train, "steps": 600, "batch_size": 256, "ema_decay": 0.0,
                         "checkpoint_every": 600, "log_every": 300, "num_samples": 16})
    fit(model, gaussians, cfg, str(tmp_path), progress=False)
    variables = eval_variables(restore_state(model, gaussians, cfg, str(tmp_path)))
    s = np.asarray(jax.jit(lambda v, k: model.sample(v, k, 2000))(variables, jax.random.key(1)))
    angles = np.arange(8) * np.pi / 4
    centres = 4 / 1.414 * np.stack([np.cos(angles), np.sin(angles)], 1)
    dist = np.sqrt(((s[:, None] - centres[None]) ** 2).sum(-1))
    near = dist.min(1) < 3 * 0.5 / 1.414
    counts = np.bincount(dist.argmin(1)[near], minlength=8)
    modes = int((counts >= 0.2 * len(s) / 8).sum())  # a mode counts with >= 20% of its fair share
    print(f"modes covered: {modes} of 8; samples per mode {counts.tolist()}")
    assert modes >= 6, counts


def test_sample_and_interpolate_shapes_and_endpoints(gaussians):
    model = GAN(GANConfig(**TINY), gaussians.spec)
    v = model.init(jax.random.key(0), _batch(gaussians))
    s = jax.jit(lambda v, k: model.sample(v, k, 5))(v, jax.random.key(1))
    assert s.shape == (5, 2) and s.dtype == jnp.float32 and bool(jnp.isfinite(s).all())
    path = jax.jit(lambda v, k: model.interpolate(v, k, num_paths=3, num=6))(v, jax.random.key(2))
    assert path.shape == (6, 3, 2)
    # The ends are G(z0) and G(z1) of the latents the path was drawn from.
    z0, z1 = jax.random.normal(jax.random.key(2), (2, 3, 4))
    g = jax.jit(lambda z: model.generate(v, z)[0])
    np.testing.assert_allclose(path[0], g(z0), atol=1e-5)
    np.testing.assert_allclose(path[-1], g(z1), atol=1e-5)
    with pytest.raises(GMJaxError, match="unknown interpolation"):
        model.interpolate(v, jax.random.key(2), 2, method="cubic")


@pytest.mark.parametrize("penalty, normalised", [("none", True), ("gp", False)])
def test_resnet_critic_is_spectral_normed_only_without_a_penalty(digits, penalty, normalised):
    """SNGAN's ResNet critic is spectrally normalised; WGAN-GP's (a gradient penalty) is not normalised."""
    model = GAN(WGANGPConfig(architecture="resnet", width=8, penalty=penalty), digits.spec)
    example = {"image": jnp.zeros((2, 8, 8, 1), jnp.int32), "label": jnp.zeros((2,), jnp.int32)}
    state = jax.eval_shape(model.init, jax.random.key(0), example)["state"]
    paths = ["/".join(str(getattr(k, "key", k)) for k in p) for p, _ in jax.tree_util.tree_leaves_with_path(state)]
    assert any(p.startswith("discriminator/") and p.endswith("/u") for p in paths) == normalised
