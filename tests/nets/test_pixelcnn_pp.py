"""PixelCNN++ (Salimans et al. 2017): its parameter count against the official network's, its exact
autoregressive structure, dropout and class conditioning."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.errors import GMJaxError
from gm_jax.models import num_params
from gm_jax.nets.pixelcnn_pp import PixelCNNPlusPlus


def official_num_params(nr_filters, nr_resnet, nr_logistic_mix, num_classes=0):
    """The trainable variables of openai/pixel-cnn's ``model_spec`` on RGB images, counted from its code
    (``pixel_cnn_pp/model.py``, ``nn.py``): every conv, deconv and nin is weight-normalised (V, g, b);
    concat_elu doubles a layer's input channels; a conditional model adds hw [classes, 2F] per block."""
    f = nr_filters
    wn = lambda kh, kw, cin, cout: kh * kw * cin * cout + 2 * cout  # V, g, b
    block = lambda kh, kw, shortcut: (wn(kh, kw, 2 * f, f) + (wn(1, 1, 2 * shortcut, f) if shortcut else 0)
                                      + wn(kh, kw, 2 * f, 2 * f) + num_classes * 2 * f)
    n = wn(2, 3, 4, f) + wn(1, 3, 4, f) + wn(2, 1, 4, f)  # x padded with a channel of ones
    n += 3 * nr_resnet * (block(2, 3, 0) + block(2, 2, f))  # up pass
    n += 2 * (wn(2, 3, f, f) + wn(2, 2, f, f))  # strided convs
    n += (nr_resnet + 2 * (nr_resnet + 1)) * (block(2, 3, f) + block(2, 2, 2 * f))  # down pass
    n += 2 * (wn(2, 3, f, f) + wn(2, 2, f, f))  # deconvs
    return n + wn(1, 1, f, 10 * nr_logistic_mix)  # the nin head


@pytest.mark.parametrize("features,num_resnet,mix,classes", [(160, 5, 10, 0), (32, 2, 5, 10)])
def test_parameter_count_equals_the_official_networks(features, num_resnet, mix, classes):
    net = PixelCNNPlusPlus(3, features=features, num_resnet=num_resnet, num_mixtures=mix, num_classes=classes)
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)), jnp.zeros((1,), jnp.int32))
    assert num_params(shapes["params"]) == official_num_params(features, num_resnet, mix, classes)


H = W = 8
C = 3


@pytest.fixture(scope="module")
def net_and_variables():
    net = PixelCNNPlusPlus(C, features=4, num_resnet=1, num_mixtures=2, dropout=0.5, num_classes=3)
    x = jax.random.uniform(jax.random.key(0), (1, H, W, C), minval=-1.0, maxval=1.0)
    # random values in the init's shapes: compiling the network's own init takes longer than these tests
    shapes = jax.eval_shape(net.init, jax.random.key(1), x, jnp.array([0]))
    leaves, tree = jax.tree_util.tree_flatten(shapes)
    rng = np.random.default_rng(1)  # numpy: a jax.random call per leaf shape would compile each
    v = tree.unflatten([jnp.asarray(0.5 * rng.normal(size=s.shape), s.dtype) for s in leaves])
    return net, v, x


def test_params_depend_exactly_on_the_earlier_pixels(net_and_variables):
    net, v, x = net_and_variables
    jac = jax.jit(jax.jacfwd(lambda x: net.apply(v, x, jnp.array([1]))))(x)
    # [H, W, H, W, C]: |d params of pixel (i, j) / d x[k, l, c]| summed over each output's parameter axes
    dep = sum(np.abs(np.asarray(j)).reshape(H, W, -1, H, W, C).sum(2) for j in jax.tree_util.tree_leaves(jac))
    order = np.arange(H * W).reshape(H, W)
    for i, j in itertools.product(range(H), range(W)):
        d = dep[i, j].sum(-1)
        assert not np.any(d[order >= order[i, j]]), f"pixel {(i, j)} depends on itself or a later pixel"
        # no blind spot: the pixel to the left and the three above (the receptive field is finite, so far
        # pixels may be out of reach of this small network)
        near = [(i, j - 1), (i - 1, j - 1), (i - 1, j), (i - 1, j + 1)]
        near = [(a, b) for a, b in near if 0 <= a < H and 0 <= b < W]
        assert all(d[a, b] > 0 for a, b in near), f"pixel {(i, j)} misses a neighbour before it"
    assert np.all(dep[H - 1, W - 1].sum(-1)[:H - 1] > 0)  # the last pixel sees every row above it


def test_dropout_acts_in_training_only_and_labels_condition(net_and_variables):
    net, v, x = net_and_variables
    xx = jnp.concatenate([x, x])  # each example of a batch is computed on its own
    apply = jax.jit(lambda y, key, train: net.apply(v, xx, y, train, rngs={"dropout": key}), static_argnums=2)
    key = lambda seed: jax.random.key(seed, impl="rbg")  # as the model draws dropout (threefry compiles slowly)
    train = apply(jnp.array([0, 0]), key(2), True)
    e1, e2 = (apply(jnp.array([0, 2]), key(seed), False) for seed in (2, 3))
    # in training the two copies of x get different dropout masks; in evaluation the key does nothing
    assert float(jnp.abs(train["means"][0] - train["means"][1]).max()) > 1e-5
    np.testing.assert_array_equal(e1["means"], e2["means"])
    assert float(jnp.abs(e1["means"][0] - e1["means"][1]).max()) > 1e-5  # the label conditions


def test_weight_norm_makes_outputs_invariant_to_the_directions_scale(net_and_variables):
    net, v, x = net_and_variables
    scaled = jax.tree_util.tree_map_with_path(
        lambda path, p: 3.0 * p if "kernel" in jax.tree_util.keystr(path) and "scale" not in jax.tree_util.keystr(path)
        else p, v)
    apply = jax.jit(lambda v: net.apply(v, x, jnp.array([1])))
    a, b = apply(v), apply(scaled)
    np.testing.assert_allclose(a["means"], b["means"], rtol=1e-4, atol=1e-5)


def test_image_sides_must_be_multiples_of_four():
    net = PixelCNNPlusPlus(1, features=4, num_resnet=1)
    with pytest.raises(GMJaxError, match="multiples of 4"):
        jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 28, 30, 1)))


def test_the_recipe_network_is_the_official_size():
    from experiments.pixelcnn_pp_cifar10.config import CONFIGS

    assert CONFIGS["paper"].num_params() == official_num_params(160, 5, 10) == 53_659_080
