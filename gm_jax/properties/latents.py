"""Latent-space measurements of one trained model with a latent code (``model.decode_latent``):

- well-behaved: the perceptual path length (Karras et al. 2019) of its continuous decoder along slerp paths,
  in the evaluator's feature space (:func:`gm_jax.metrics.perceptual_path_length`);
- interpretable, by a measured proxy: the test accuracy of a linear probe (multinomial logistic regression
  on standardised codes) that reads the digit class from the encoder's codes (``model.encode_latent``: a
  VAE's posterior means, a flow's forward map, DDIM / probability-flow inversion). GANs have no encoder;
- strips for the figures: decoded slerp paths between random codes and, for low-dimensional codes,
  single-coordinate traversals from -3 to 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gm_jax.metrics.path_length import perceptual_path_length
from gm_jax.samplers.interpolation import slerp

__all__ = ["has_latent", "path_length", "linear_probe_accuracy", "latent_strips", "PPL_EPSILON"]

# Karras et al. use 1e-4 on float32 generators; the iterative decoders here (DDIM, ODE) add their own
# float32 round-off, which 1e-3 keeps below 1% of the finite difference.
PPL_EPSILON = 1e-3
STRIP_POINTS = 8


def has_latent(model) -> bool:
    return hasattr(model, "decode_latent")


def _flat_features(extractor):
    return lambda x: extractor.apply(extractor.variables, x)[extractor.features_key]


def path_length(model, variables, extractor, key, *, num_paths: int, batch_size: int = 50) -> float:
    """PPL of ``model.decode_latent`` along slerp paths in the extractor's feature space."""
    result = perceptual_path_length(lambda z: model.decode_latent(variables, z), _flat_features(extractor), key,
                                    num_paths=num_paths, latent_shape=model.latent_shape, epsilon=PPL_EPSILON,
                                    batch_size=batch_size)
    return result["ppl"]


def _codes(model, variables, x, batch_size: int) -> np.ndarray:
    encode = jax.jit(lambda v, x: model.encode_latent(v, x).reshape(x.shape[0], -1))
    return np.concatenate([np.asarray(encode(variables, jnp.asarray(x[i:i + batch_size])))
                           for i in range(0, len(x), batch_size)])


def linear_probe_accuracy(train_codes, train_labels, test_codes, test_labels, num_classes: int, *, steps: int,
                          learning_rate: float = 1e-2, weight_decay: float = 1e-4) -> float:
    """Test accuracy of multinomial logistic regression (full-batch Adam, ``steps`` steps, L2 ``weight_decay``)
    on codes standardised by the training codes' mean and standard deviation."""
    mean, std = train_codes.mean(0), train_codes.std(0) + 1e-6
    xtr = jnp.asarray((train_codes - mean) / std, jnp.float32)
    xte = jnp.asarray((test_codes - mean) / std, jnp.float32)
    ytr = jnp.asarray(train_labels)
    params = {"w": jnp.zeros((xtr.shape[1], num_classes)), "b": jnp.zeros((num_classes,))}
    opt = optax.adam(learning_rate)

    def loss(p):
        logits = xtr @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, ytr).mean() + weight_decay * jnp.sum(p["w"]**2)

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        updates, s = opt.update(g, s, p)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    predicted = np.asarray(jnp.argmax(xte @ params["w"] + params["b"], axis=1))
    return float(np.mean(predicted == np.asarray(test_labels)))


def probe(model, variables, dataset, *, steps: int, batch_size: int = 128) -> float | None:
    """The linear probe's test accuracy on the model's codes of the dataset's images, or None without an
    encoder."""
    if not hasattr(model, "encode_latent"):
        return None
    train, test = dataset.read("train"), dataset.read("test")
    key = dataset.spec.data_key
    return linear_probe_accuracy(_codes(model, variables, train[key], batch_size), train["label"],
                                 _codes(model, variables, test[key], batch_size), test["label"],
                                 dataset.spec.num_classes, steps=steps)


def latent_strips(model, variables, key, *, num_paths: int = 4) -> dict:
    """{"interpolations": [num_paths, STRIP_POINTS, *data shape], "traversals": [dims, STRIP_POINTS, *data
    shape] (the first 4 coordinates, for codes smaller than the data only)}: decoded continuous data (images
    in [0, 1])."""
    decode = jax.jit(lambda v, z: model.decode_latent(v, z))
    shape = model.latent_shape
    z0, z1 = jax.random.normal(key, (2, num_paths, int(np.prod(shape))))
    path = slerp(z0, z1, jnp.linspace(0.0, 1.0, STRIP_POINTS))  # [points, paths, Z]
    codes = jnp.swapaxes(path, 0, 1).reshape((num_paths * STRIP_POINTS,) + shape)
    data_shape = tuple(model.spec.shape)
    out = {"interpolations": np.asarray(decode(variables, codes)).reshape((num_paths, STRIP_POINTS) + data_shape)}
    if int(np.prod(shape)) < model.spec.num_dims:
        dims = min(4, int(np.prod(shape)))
        values = jnp.linspace(-3.0, 3.0, STRIP_POINTS)
        grid = jnp.zeros((dims, STRIP_POINTS, int(np.prod(shape))))
        grid = grid.at[jnp.arange(dims)[:, None], jnp.arange(STRIP_POINTS)[None, :],
                       jnp.arange(dims)[:, None]].set(values[None, :])
        out["traversals"] = np.asarray(decode(variables, grid.reshape((-1,) + shape))).reshape(
            (dims, STRIP_POINTS) + data_shape)
    return out
