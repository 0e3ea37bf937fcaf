import dataclasses
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gm_jax.data import DataSpec, load_dataset
from gm_jax.errors import GMJaxError
from gm_jax.models import MODELS, CharLM, CharLMConfig
from gm_jax.models.charlm import top_k_logits
from gm_jax.nets import CausalTransformer

TINY = CharLMConfig(num_layers=1, num_heads=2, embed_dim=16, mlp_ratio=2)


@pytest.fixture(scope="module")
def shakespeare(data_dir):
    return load_dataset("shakespeare", data_dir)


_LMS = {}


def _tiny_lm(vocab: str, seq_len: int, seed=0):
    """A one-layer model on a hand-built spec (memoised) with jitted ``logits``/``log_prob`` attached
    (the two-layer cache is tested on the network itself)."""
    if (vocab, seq_len, seed) not in _LMS:
        model = CharLM(TINY, DataSpec("tiny", "text", (seq_len,), len(vocab), 0, vocab))
        v = model.init(jax.random.key(seed), {"text": jnp.zeros((1, seq_len), jnp.int32)})
        model.logits = jax.jit(model.logits)
        model.log_prob = jax.jit(model.log_prob)
        _LMS[vocab, seq_len, seed] = model, v
    return _LMS[vocab, seq_len, seed]


_SAMPLERS = {}


def _sample_fn(model, num, top_k=0, prompt=""):
    """jit of model.sample with a traced temperature (one compilation per model, num, top_k, prompt)."""
    key = (id(model), num, top_k, prompt)
    if key not in _SAMPLERS:
        _SAMPLERS[key] = jax.jit(lambda v, k, t: model.sample(v, k, num, temperature=t, top_k=top_k, prompt=prompt))
    return _SAMPLERS[key]


# ------------------------------------------------------------------------------------------- transformer
@pytest.fixture(scope="module")
def net_and_params():
    net = CausalTransformer(num_tokens=7, vocab_size=6, max_len=9, num_layers=2, num_heads=2, embed_dim=8)
    tokens = jax.random.randint(jax.random.key(0), (2, 9), 0, 7)
    return net, jax.jit(net.init)(jax.random.key(1), tokens), tokens


def test_transformer_is_exactly_causal(net_and_params):
    net, v, tokens = net_and_params
    h = net.apply(v, tokens[:1], method=net.embed)  # [1, T, D]
    jac = jax.jit(jax.jacobian(lambda e: net.apply(v, e, method=net.from_embeddings)))(h)[0, :, :, 0]  # [T, V, T, D]
    dependence = np.abs(np.asarray(jac)).sum(axis=(1, 3))  # [t, s]: how much logits at t move with input s
    t, s = np.indices(dependence.shape)
    assert (dependence[s > t] == 0).all()  # exactly zero, not merely small
    assert (dependence[s <= t] > 1e-6).all()


def test_position_embeddings_start_at_the_sinusoids():
    from gm_jax.nets.transformer import sinusoidal_init

    table = np.asarray(sinusoidal_init(None, (50, 6)))
    t, i = 37, 2  # entries (t, 2i) and (t, 2i + 1) for the angle t / 10000^(2i / D)
    angle = t / 10000 ** (2 * i / 6)
    np.testing.assert_allclose(table[t, 2 * i:2 * i + 2], [np.sin(angle), np.cos(angle)], rtol=1e-6)
    np.testing.assert_allclose(table[:, 0], np.sin(np.arange(50)), atol=1e-6)


def test_cached_decoding_reproduces_the_full_forward(net_and_params):
    net, v, tokens = net_and_params
    full = net.apply(v, tokens)
    step = jax.jit(lambda c, tok, pos: net.apply(v, tok, pos, c, method=net.decode))
    cache, outs = net.init_cache(2), []
    for pos in range(tokens.shape[1]):
        logits, cache = step(cache, tokens[:, pos:pos + 1], pos)
        outs.append(logits)
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)
    # A prefix of several tokens at once, then the rest, gives the same logits too.
    @jax.jit
    def in_two_chunks(tokens):
        first, cache = net.apply(v, tokens[:, :4], 0, net.init_cache(2), method=net.decode)
        rest, _ = net.apply(v, tokens[:, 4:], 4, cache, method=net.decode)
        return jnp.concatenate([first, rest], 1)

    np.testing.assert_allclose(in_two_chunks(tokens), full, atol=1e-5)


# ------------------------------------------------------------------------------------------------ charlm
def test_interface_shapes_finite_values_and_units(shakespeare):
    assert MODELS["charlm"] == (CharLMConfig, CharLM)
    model = CharLM(TINY, shakespeare.spec)
    batch = {k: jnp.asarray(v) for k, v in shakespeare.read("train", np.arange(4)).items()}
    v = model.init(jax.random.key(0), batch)
    loss, metrics, state = jax.jit(model.loss)(v, batch, jax.random.key(1))
    assert state == {} and np.isfinite(float(loss))
    assert float(loss) == pytest.approx(float(metrics["nll_nats"]) / 256, rel=1e-6)
    assert float(metrics["nll_nats"]) == pytest.approx(float(metrics["bits_per_dim"]) * 256 * np.log(2), rel=1e-6)
    lp = jax.jit(model.log_prob)(v, batch["text"])
    assert lp.shape == (4,) and bool(jnp.isfinite(lp).all())
    s = jax.jit(lambda v, k: model.sample(v, k, 3, prompt="ROMEO:"))(v, jax.random.key(2))
    assert s.shape == (3, 256) and s.dtype == jnp.int32 and int(s.min()) >= 0 and int(s.max()) < 65
    assert all(model.decode(row).startswith("ROMEO:") for row in np.asarray(s))


def test_log_prob_is_the_sum_of_per_token_log_probs_of_the_shifted_logits():
    model, v = _tiny_lm("abcd", 6, seed=6)
    x = jax.random.randint(jax.random.key(3), (5, 6), 0, 4)
    logits = np.asarray(model.logits(v, x), np.float64)  # [B, T, V]: position t predicts x_t
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_softmax, np.asarray(x)[..., None], -1)[..., 0].sum(-1)
    np.testing.assert_allclose(model.log_prob(v, x), expected, rtol=1e-5)
    # The prediction of x_t reads x_<t only: changing x_3 leaves positions <= 3 alone and moves position 4.
    y = x.at[:, 3].set((x[:, 3] + 1) % 4)
    changed = np.abs(np.asarray(model.logits(v, y)) - logits).max(axis=(0, 2))
    assert (changed[:4] == 0).all() and changed[4] > 1e-4


def test_probabilities_of_all_sequences_sum_to_one():
    model, v = _tiny_lm("xyz", 3)
    every = jnp.asarray(list(itertools.product(range(3), repeat=3)), jnp.int32)  # all 27 windows
    total = float(jnp.exp(model.log_prob(v, every)).sum())
    assert total == pytest.approx(1.0, abs=1e-5)


def _exact_probs(model, v, temperature):
    """Probabilities [V**T] of every window under the tempered conditionals, by enumeration."""
    t, k = model.seq_len, model.vocab_size
    every = jnp.asarray(list(itertools.product(range(k), repeat=t)), jnp.int32)
    logp = jax.nn.log_softmax(model.logits(v, every) / temperature, axis=-1)
    return every, np.exp(np.asarray(jnp.take_along_axis(logp, every[..., None], -1)[..., 0].sum(-1), np.float64))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sample_frequencies_match_the_models_conditionals(temperature):
    model, v = _tiny_lm("pqr", 2, seed=4)
    every, probs = _exact_probs(model, v, temperature)
    n = 20_000
    s = _sample_fn(model, n)(v, jax.random.key(5), temperature)
    counts = np.zeros(len(every))
    np.add.at(counts, np.asarray(s[:, 0] * 3 + s[:, 1]), 1)
    stderr = np.sqrt(probs * (1 - probs) / n)
    assert (np.abs(counts / n - probs) < 5 * stderr + 1e-3).all(), (counts / n, probs)
    if temperature == 1.0:
        assert probs.max() / probs.min() > 2  # the conditionals are far from uniform: the test can fail


def test_lower_temperature_sharpens_the_distribution():
    model, v = _tiny_lm("pqr", 2, seed=4)
    entropy = lambda p: float(-(p * np.log(p)).sum())
    assert entropy(_exact_probs(model, v, 0.5)[1]) < entropy(_exact_probs(model, v, 1.0)[1])


@pytest.mark.parametrize("temperature,top_k,prompt", [(1.0, 0, "c"), (0.0, 0, "c"), (0.7, 2, "ba")])
def test_cached_sampling_equals_sampling_with_the_full_forward(temperature, top_k, prompt):
    model, v = _tiny_lm("abcd", 6, seed=6)
    key, num = jax.random.key(7), 4
    got = np.asarray(_sample_fn(model, num, top_k, prompt)(v, key, temperature))
    # Oracle: re-run the full causal forward on the prefix drawn so far, with the same per-step keys.
    keys = jax.random.split(key, model.seq_len)
    x = np.zeros((num, model.seq_len), np.int32)
    for t in range(model.seq_len):
        logits = top_k_logits(model.logits(v, jnp.asarray(x))[:, t], top_k)
        if t < len(prompt):
            x[:, t] = "abcd".index(prompt[t])
        elif temperature == 0:
            x[:, t] = np.asarray(jnp.argmax(logits, -1))
        else:
            x[:, t] = np.asarray(jax.random.categorical(keys[t], logits / temperature))
    np.testing.assert_array_equal(got, x)
    if top_k == 2:  # each drawn token is one of the two most likely under its prefix
        logits = np.asarray(model.logits(v, jnp.asarray(x)))
        rank = (logits > np.take_along_axis(logits, x[..., None], -1)).sum(-1)
        assert (rank[:, len(prompt):] < 2).all()


def test_bfloat16_compute_matches_float32():
    model32, v = _tiny_lm("xyz", 3)
    model16 = CharLM(dataclasses.replace(model32.config, compute_dtype="bfloat16"), model32.spec)
    x = jnp.asarray(list(itertools.product(range(3), repeat=3)), jnp.int32)
    lp16 = jax.jit(model16.log_prob)(v, x)
    assert lp16.dtype == jnp.float32
    np.testing.assert_allclose(lp16, model32.log_prob(v, x), atol=0.1)
    s = jax.jit(lambda v, k: model16.sample(v, k, 4, temperature=0.0))(v, jax.random.key(0))
    assert s.shape == (4, 3) and s.dtype == jnp.int32


def test_bad_input_is_rejected(shakespeare, digits):
    with pytest.raises(GMJaxError, match="use --dataset shakespeare"):
        CharLM(TINY, digits.spec)
    with pytest.raises(GMJaxError, match="divisible by num_heads"):
        CharLM(CharLMConfig(embed_dim=10, num_heads=4), shakespeare.spec)
    with pytest.raises(GMJaxError, match="num_layers must be >= 1"):
        CharLMConfig(num_layers=0).validate()
    model, v = _tiny_lm("xyz", 3)
    with pytest.raises(GMJaxError, match=r"characters 'c' are not in the vocabulary"):
        model.sample(v, jax.random.key(0), 2, prompt="xyc")
    with pytest.raises(GMJaxError, match="at most 3 fit a window"):
        model.sample(v, jax.random.key(0), 2, prompt="xyzx")
    with pytest.raises(GMJaxError, match="temperature must be >= 0"):
        model.sample(v, jax.random.key(0), 2, temperature=-1.0)
    with pytest.raises(GMJaxError, match="unconditional"):
        model.log_prob(v, jnp.zeros((1, 3), jnp.int32), None, labels=jnp.zeros(1))
    with pytest.raises(GMJaxError, match=r"token windows \[B, 3\]"):
        model.logits(v, jnp.zeros((1, 4), jnp.int32))


@pytest.mark.slow  # ~14 s; the CLI's train/sample path is tested on the VAE and GANs in tests/test_cli.py
def test_fit_through_the_cli_end_to_end(data_dir, tmp_path, capsys):
    """`gm-jax train` runs `fit` (train steps, checkpoint, samples.txt, test NLL); then `gm-jax sample`."""
    from gm_jax.cli import main

    workdir = str(tmp_path / "run")
    sets = [f"--set={kv}" for kv in ("num_layers=1", "num_heads=2", "embed_dim=16", "mlp_ratio=2", "batch_size=4",
                                      "log_every=1", "num_samples=2", "eval_max_examples=16", "eval_batch_size=16")]
    assert main(["train", "charlm", "--dataset", "shakespeare", "--steps", "3", "--workdir", workdir,
                 "--data-dir", data_dir, "--no-progress", *sets]) == 0
    out = capsys.readouterr().out
    assert "test_bits_per_dim" in out and "samples.txt" in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model"] == "charlm" and results["num_test_examples"] == 16
    assert 0 < results["test_bits_per_dim"] < 7  # a few steps from log2(65) = 6.02 bits/char
    assert (tmp_path / "run" / "samples.txt").read_text().startswith("--- sample 0 ---\n")
    assert main(["sample", "--workdir", workdir, "--num", "3", "--temperature", "0.5",
                 "--out", str(tmp_path / "s.txt")]) == 0
    blocks = (tmp_path / "s.txt").read_text().split("--- sample ")
    assert len(blocks) == 4 and all(len(b.split("\n", 1)[1]) == 256 + 2 for b in blocks[1:])
    capsys.readouterr()
    assert main(["sample", "--workdir", workdir, "--out", str(tmp_path / "s.png")]) == 2
    assert "written as .txt or .npz" in capsys.readouterr().err
