import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.nets.made import MADE, made_orderings


def _dependency(model, params, x, context):
    """ordering -> |d out[0, i, p] / d x[0, j]| as [D, P, D], by jax.jacobian of the whole map (one
    compilation, the ordering a traced index)."""
    jac = jax.jit(lambda k: jax.jacobian(lambda x: model.apply({"params": params}, x, context, k)[0])(x))
    return lambda k: np.abs(np.asarray(jac(k)[:, :, 0, :]))


@pytest.mark.parametrize("hidden,num_orderings,d,use_context", [
    ((16, 16), 3, 5, False),
    ((12,), 4, 4, True),
    ((), 2, 3, False),
    ((8,), 1, 1, True),
], ids=["deep-3orders", "context-4orders", "linear", "one-dim"])
def test_made_outputs_depend_only_on_earlier_inputs(hidden, num_orderings, d, use_context):
    # tanh: no dead ReLUs, so every allowed dependency shows in the Jacobian.
    model = MADE(num_params=2, hidden=hidden, num_orderings=num_orderings, order_seed=3, activation=jnp.tanh)
    x = jax.random.normal(jax.random.key(0), (1, d))
    context = jax.random.normal(jax.random.key(1), (1, 3)) if use_context else None
    # Random non-zero biases too, so no dependency vanishes by an accident of the init (jitted with an
    # rbg key: XLA:CPU compiles threefry slowly for every weight tensor).
    params = jax.jit(lambda k: jax.tree_util.tree_map(lambda p: p + 0.3 * jax.random.normal(k, p.shape),
                                                      model.init(k, x, context)["params"]))(
        jax.random.key(2, impl="rbg"))
    positions = model.positions(d)
    assert positions.shape == (num_orderings, d)
    np.testing.assert_array_equal(positions[0], np.arange(d))
    dependency = _dependency(model, params, x, context)
    for k in range(num_orderings):
        assert sorted(positions[k]) == list(range(d))
        dep = dependency(k)
        allowed = positions[k][None, :] < positions[k][:, None]  # [i, j]: pos(j) < pos(i)
        forbidden = ~allowed[:, None, :].repeat(2, axis=1)
        assert dep[forbidden].max(initial=0.0) == 0.0, f"ordering {k} leaks"
        if d > 1:
            # Every allowed pair is actually used (masks are not over-restrictive).
            assert (dep[allowed[:, None, :].repeat(2, axis=1)] > 0).all()
    if use_context:
        jc = jax.jacobian(lambda c: model.apply({"params": params}, x, c, 0)[0])(context)
        assert float(jnp.abs(jc).min()) > 0.0


def test_made_traced_ordering_and_orderings_differ():
    model = MADE(num_params=1, hidden=(16,), num_orderings=3)
    x = jax.random.normal(jax.random.key(0), (4, 6))
    params = model.init(jax.random.key(1), x)["params"]
    apply = jax.jit(lambda k: model.apply({"params": params}, x, None, k))
    for k in range(3):
        np.testing.assert_allclose(apply(k), model.apply({"params": params}, x, None, k), rtol=1e-6)
    pos = made_orderings(6, 3, seed=0)
    np.testing.assert_array_equal(pos, model.positions(6))
    assert len({tuple(p) for p in pos}) == 3


def test_made_zero_init_output_and_dtype():
    model = MADE(num_params=3, hidden=(8,), zero_init_output=True, dtype=jnp.bfloat16)
    x = jnp.ones((2, 4))
    v = model.init(jax.random.key(0), x)
    out = model.apply(v, x)
    assert out.shape == (2, 4, 3) and out.dtype == jnp.bfloat16
    assert float(jnp.abs(out).max()) == 0.0
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(v))
