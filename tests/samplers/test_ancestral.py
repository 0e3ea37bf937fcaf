"""ancestral_sample driven by a hand-written model with known conditionals: frequencies match the exact joint."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.distributions import categorical_sample
from gm_jax.samplers import ancestral_sample

K = 3
N = 20_000
RNG = np.random.default_rng(0)
P0 = RNG.dirichlet(np.ones(K))  # p(first)
T1 = RNG.dirichlet(np.ones(K), size=K)  # p(second | first)
T2 = RNG.dirichlet(np.ones(K), size=(K, K))  # p(third | first, second)


def _chain(perm, temperature=1.0):
    """A 3-variable categorical chain filled in the order ``perm``: the callable and its exact joint [K, K, K]."""
    p0, t1, t2 = (p ** (1 / temperature) / (p ** (1 / temperature)).sum(-1, keepdims=True) for p in (P0, T1, T2))
    a, b, c = perm
    joint = np.zeros((K, K, K))
    for x in itertools.product(range(K), repeat=3):
        joint[x] = p0[x[a]] * t1[x[a], x[b]] * t2[x[a], x[b], x[c]]

    def logits_fn(canvas):  # canvas int [B, 3] -> logits [B, 3, K]
        out = jnp.zeros(canvas.shape + (K,))
        out = out.at[:, a].set(jnp.log(P0))
        out = out.at[:, b].set(jnp.log(T1)[canvas[:, a]])
        return out.at[:, c].set(jnp.log(T2)[canvas[:, a], canvas[:, b]])

    return logits_fn, joint


def _assert_frequencies_match(samples, probs):
    """Chi-square over the joint's cells (cells expecting < 5 pooled): a ~6 sigma tolerance."""
    idx = np.ravel_multi_index(np.asarray(samples).T, probs.shape)
    counts = np.bincount(idx, minlength=probs.size)
    p, n = probs.ravel(), len(idx)
    keep = p * n >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(p[keep] * n, p[~keep].sum() * n)
    chi2, dof = float(((obs - exp) ** 2 / np.maximum(exp, 1e-12)).sum()), len(obs) - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof), (chi2, dof)


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 0, 1)])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_frequencies_match_the_exact_joint(perm, temperature):
    logits_fn, joint = _chain(perm, temperature)
    sample = jax.jit(lambda key: ancestral_sample(logits_fn, key, jnp.zeros((N, 3), jnp.int32), jnp.array(perm),
                                                  temperature=temperature))
    samples = sample(jax.random.key(1))
    assert samples.shape == (N, 3) and samples.dtype == jnp.int32
    _assert_frequencies_match(samples, joint)


def test_temperature_zero_is_the_greedy_path_and_low_temperature_concentrates_on_it():
    logits_fn, _ = _chain((0, 1, 2))
    a = int(np.argmax(P0))
    b = int(np.argmax(T1[a]))
    greedy = [a, b, int(np.argmax(T2[a, b]))]
    run = jax.jit(lambda key, t: ancestral_sample(logits_fn, key, jnp.zeros((64, 3), jnp.int32), temperature=t))
    np.testing.assert_array_equal(run(jax.random.key(0), 0.0), np.tile(greedy, (64, 1)))
    cold = run(jax.random.key(0), 0.02)  # the same compiled loop: temperature is a traced argument
    assert float((cold == jnp.array(greedy)).all(1).mean()) > 0.95


def test_a_partly_given_canvas_is_completed_from_the_conditional():
    logits_fn, joint = _chain((0, 1, 2))
    given = jnp.zeros((N, 3), jnp.int32).at[:, 0].set(2)
    samples = jax.jit(lambda key: ancestral_sample(logits_fn, key, given, jnp.array([1, 2])))(jax.random.key(3))
    assert bool((samples[:, 0] == 2).all())
    _assert_frequencies_match(samples[:, 1:], joint[2] / joint[2].sum())


def test_vector_positions_with_a_custom_draw_and_pytree_params():
    """Positions holding 2 values each (like a pixel's channels), parameters as a dict: the second position
    copies the first and adds a Bernoulli bit, so its values are determined by the drawn first position."""

    def params_fn(canvas):  # canvas [B, 2, 2]
        b = canvas.shape[0]
        base = jnp.zeros((b, 2, 2)).at[:, 1].set(canvas[:, 0])
        return {"base": base, "logit": jnp.full((b, 2), 0.0)}

    def draw(key, p, t):
        bit = jax.random.bernoulli(key, jax.nn.sigmoid(p["logit"] / t)).astype(jnp.float32)
        return p["base"] + bit[:, None]

    out = ancestral_sample(params_fn, jax.random.key(0), jnp.zeros((4000, 2, 2)), draw_fn=draw)
    first, second = np.asarray(out[:, 0]), np.asarray(out[:, 1])
    assert set(np.unique(first)) <= {0.0, 1.0} and np.all(first[:, 0] == first[:, 1])
    np.testing.assert_array_equal(second - first, np.broadcast_to(second[:, :1] - first[:, :1], second.shape))
    assert abs(float((second - first)[:, 0].mean()) - 0.5) < 0.05


def test_categorical_sample_temperature():
    logits = jnp.log(jnp.array([0.2, 0.5, 0.3]))
    assert int(categorical_sample(jax.random.key(0), logits, 0.0)) == 1
    draws = categorical_sample(jax.random.key(1), jnp.broadcast_to(logits, (N, 3)), 2.0)
    tempered = np.array([0.2, 0.5, 0.3]) ** 0.5
    _assert_frequencies_match(np.asarray(draws)[:, None], tempered / tempered.sum())
