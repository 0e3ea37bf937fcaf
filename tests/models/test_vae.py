import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.models import VAE, VAEConfig
from gm_jax.samplers import lerp, slerp


def _batch(dataset, n=16, split="train"):
    return {k: jnp.asarray(v) for k, v in dataset.read(split, np.arange(n)).items()}


@pytest.mark.parametrize("cfg", [
    VAEConfig(hidden=(32,), latent_dim=3, eval_importance_samples=4, eval_chunk_size=4),
    pytest.param(VAEConfig(hidden=(32,), latent_dim=3, eval_importance_samples=4, eval_chunk_size=4,
                           likelihood="bernoulli"),
                 marks=pytest.mark.slow),  # ~10 s; the Bernoulli likelihood is tested in test_distributions
    pytest.param(VAEConfig(hidden=(32,), latent_dim=3, eval_importance_samples=4, eval_chunk_size=4,
                           likelihood="gaussian", architecture="conv", conv_channels=8),
                 marks=pytest.mark.slow),  # ~23 s of compiling the conv encoder and decoder five times
    VAEConfig(hidden=(32,), latent_dim=3, eval_importance_samples=4, eval_chunk_size=4, conditional=True, compute_dtype="bfloat16"),
], ids=["logistic-mlp", "bernoulli", "gaussian-conv", "conditional-bf16"])
def test_vae_interface_shapes_and_finite_values(digits, cfg):
    model = VAE(cfg, digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    loss, metrics, state = jax.jit(model.loss)(v, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and state == {}
    assert float(metrics["nll_bound_nats"]) == pytest.approx(float(metrics["bits_per_dim"]) * 64 * np.log(2), rel=1e-5)
    lp = jax.jit(lambda v, x, k, y: model.log_prob(v, x, k, labels=y))(v, batch["image"], jax.random.key(2),
                                                                        batch["label"])
    assert lp.shape == (16,) and bool(jnp.isfinite(lp).all())
    for mode in ("mean", "sample"):
        s = jax.jit(lambda v, k: model.sample(v, k, 5, mode=mode))(v, jax.random.key(3))
        assert s.shape == (5, 8, 8, 1) and s.dtype == jnp.uint8 and int(s.max()) <= 16
    path = jax.jit(lambda v, a, b, y: model.interpolate(v, a, b, 5, labels=y))(
        v, batch["image"][:2], batch["image"][2:4], batch["label"][:2])
    assert path.shape == (5, 2, 8, 8, 1)


def test_conditional_vae_uses_its_labels(digits):
    model = VAE(VAEConfig(hidden=(32,), latent_dim=3, eval_importance_samples=4, eval_chunk_size=4, conditional=True), digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    z = jax.random.normal(jax.random.key(1), (4, 3))
    decoder_out = lambda label: model.decoder.apply({"params": v["params"]["decoder"]}, z,
                                                    jax.nn.one_hot(jnp.full(4, label), 10))
    assert float(jnp.abs(decoder_out(0) - decoder_out(7)).max()) > 1e-3
    with pytest.raises(GMJaxError, match="conditional: batches .* need labels"):
        model.loss(v, {"image": batch["image"]}, jax.random.key(0))


def test_interpolation_endpoints_decode_the_encodings(digits):
    model = VAE(VAEConfig(hidden=(32,), latent_dim=3, eval_importance_samples=4, eval_chunk_size=4), digits.spec)
    batch = _batch(digits)
    v = model.init(jax.random.key(0), batch)
    x0, x1 = batch["image"][:3], batch["image"][3:6]
    for method in ("slerp", "linear"):
        path = model.interpolate(v, x0, x1, 4, method=method)
        np.testing.assert_array_equal(path[0], model.decode(v, model.encode(v, x0)))
        np.testing.assert_array_equal(path[-1], model.decode(v, model.encode(v, x1)))


def test_slerp_and_lerp_paths():
    z0, z1 = jnp.array([2.0, 0.0]), jnp.array([0.0, 2.0])
    t = jnp.linspace(0, 1, 5)
    s = slerp(z0, z1, t)
    np.testing.assert_allclose(jnp.linalg.norm(s, axis=-1), 2.0, rtol=1e-6)
    np.testing.assert_allclose(s[2], jnp.array([np.sqrt(2), np.sqrt(2)]), rtol=1e-6)
    np.testing.assert_allclose(lerp(z0, z1, t)[2], jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(slerp(z0, 3 * z0, t)[2], 2 * z0, rtol=1e-6)  # parallel: falls back to lerp


def test_points_vae_on_toy2d(data_dir):
    from gm_jax.data import load_dataset

    d = load_dataset("toy2d/moons", data_dir)
    with pytest.raises(GMJaxError, match="likelihood=gaussian"):
        VAE(VAEConfig(), d.spec)
    model = VAE(VAEConfig(hidden=(32,), latent_dim=2, likelihood="gaussian"), d.spec)
    batch = _batch(d)
    v = model.init(jax.random.key(0), batch)
    assert np.isfinite(float(model.loss(v, batch, jax.random.key(1))[0]))
    assert model.sample(v, jax.random.key(2), 7, mode="sample").shape == (7, 2)


def test_bad_configs_are_rejected(digits):
    with pytest.raises(GMJaxError, match="divisible by 4"):
        from gm_jax.data import DataSpec

        VAE(VAEConfig(architecture="conv"), DataSpec("x", "image", (6, 6, 1), 17, 0))
    with pytest.raises(GMJaxError, match="latent_dim"):
        VAE(VAEConfig(latent_dim=0), digits.spec)


def test_iwae_training_loss_is_the_k_sample_bound(digits):
    """train_importance_samples=k trains -L_k (Burda et al. 2016): for the same network, L_k >= L_1 in
    expectation and grows with k, the k = 1 loss is the ELBO's, and beta is refused with k > 1."""
    batch = {k: jnp.asarray(v) for k, v in digits.read("train", np.arange(64)).items()}
    base = VAEConfig(hidden=(32,), latent_dim=4, likelihood="bernoulli", activation="tanh")
    models = {k: VAE(base.__class__(**{**base.__dict__, "train_importance_samples": k}), digits.spec)
              for k in (1, 5, 50)}
    variables = models[1].init(jax.random.key(0), batch)
    elbo_model = VAE(VAEConfig(**{**base.__dict__}), digits.spec)

    @jax.jit  # one program: every loss over 8 keys, the ELBO, and a gradient of the k = 5 bound
    def run(v):
        keys = jax.random.split(jax.random.key(0), 8)
        means = {k: jnp.mean(jax.vmap(lambda key, m=m: m.loss(v, batch, key)[0])(keys)) for k, m in models.items()}
        same_key = (models[1].loss(v, batch, keys[3])[0], elbo_model.loss(v, batch, keys[3])[0])
        grads = jax.grad(lambda p: models[5].loss({"params": p, "state": {}}, batch, keys[1])[0])(v["params"])
        return means, same_key, grads

    loss, (k1, elbo), grads = run(variables)
    assert loss[50] < loss[5] < loss[1], loss
    assert float(k1) == pytest.approx(float(elbo))
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
    with pytest.raises(GMJaxError, match="IWAE bound, which has no KL weight"):
        VAEConfig(train_importance_samples=5, beta=0.5)


def test_mlp_activation_is_used(digits):
    batch = {k: jnp.asarray(v) for k, v in digits.read("train", np.arange(4)).items()}
    out = {}
    for act in ("silu", "tanh", "relu"):
        model = VAE(VAEConfig(hidden=(16,), latent_dim=2, activation=act), digits.spec)
        v = model.init(jax.random.key(0), batch)  # same weights for every activation
        out[act] = np.asarray(model.decode(v, jnp.ones((1, 2))))
    assert not np.allclose(out["silu"], out["tanh"]) and not np.allclose(out["tanh"], out["relu"])
