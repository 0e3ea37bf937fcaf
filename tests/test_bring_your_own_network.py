"""Proof by use: every family's public maths driven by hand-written pure-JAX networks (dicts of arrays, no
Flax), trained a few hundred steps with optax on 2-D data, with a result asserted (sample moments, a
likelihood against its closed form), not just shapes. The data is N(MU, diag(STD^2)), whose density,
entropy and moments are exact.
"""

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gm_jax.losses import (contrastive_divergence_loss, ddpm_loss, discriminator_loss, dsm_loss, elbo,
                           generator_loss, gradient_penalty, iwae_bound, sde_dsm_loss)
from gm_jax.processes import VPSDE, geometric_noise_levels, linear_beta_schedule, make_schedule
from gm_jax.samplers import (ancestral_sample, annealed_langevin_sample, ddim_sample, ddpm_sample, langevin_sample,
                             ode_log_likelihood, reverse_sde_sample)

MU = jnp.array([1.0, -1.0])
STD = jnp.array([0.5, 0.3])
# -E[log N(x; MU, STD^2)]: the entropy, the best NLL any model can reach.
ENTROPY = float(jnp.sum(jnp.log(STD)) + 1.0 + math.log(2 * math.pi))


def data(key, n=256):
    return MU + STD * jax.random.normal(key, (n, 2))


def mlp_init(key, sizes):
    """A plain MLP: a list of (W, b) with LeCun-normal weights."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [(jax.random.normal(k, (m, n)) / math.sqrt(m), jnp.zeros(n)) for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.silu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def fit(loss_fn, params, steps, lr=3e-3, key=jax.random.key(0)):
    """Adam on ``loss_fn(params, key) -> scalar`` for ``steps`` steps, one jitted scan."""
    opt = optax.adam(lr)

    @jax.jit
    def run(params, key):
        def step(carry, k):
            p, s = carry
            g = jax.grad(loss_fn)(p, k)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, steps))[0][0]

    return run(params, key)


def assert_moments(x, mean_tol=0.15, std_rtol=0.25):
    x = np.asarray(x)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x.mean(0), MU, atol=mean_tol)
    np.testing.assert_allclose(x.std(0), STD, rtol=std_rtol)


def test_the_functional_core_does_not_import_flax():
    code = ("import sys, gm_jax.losses, gm_jax.samplers, gm_jax.processes, gm_jax.distributions; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'flax'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


# ------------------------------------------------------------------------------------------ diffusion
def test_ddpm_loss_and_samplers_with_a_plain_mlp():
    schedule = make_schedule(linear_beta_schedule(50))
    net = lambda p, x, t: mlp(p, jnp.concatenate([x, (t[:, None] / 50.0), jnp.sin(t[:, None] / 8.0)], -1))
    loss = lambda p, k: ddpm_loss(lambda x, t: net(p, x, t), schedule, data(jax.random.fold_in(k, 1)), k).mean()
    params = fit(loss, mlp_init(jax.random.key(1), [4, 64, 64, 2]), 600)
    eps_fn = lambda x, t: net(params, x, t)
    assert_moments(ddpm_sample(eps_fn, schedule, jax.random.key(2), (2000, 2)))
    assert_moments(ddim_sample(eps_fn, schedule, jax.random.key(3), (2000, 2), num_steps=25))


def test_sde_dsm_reverse_sde_and_ode_likelihood_with_a_plain_mlp():
    sde = VPSDE()
    net = lambda p, x, t: mlp(p, jnp.concatenate([x, t[:, None], jnp.sin(6 * t[:, None])], -1))
    # The network is the score itself: near t = 0 that is the simple affine map -(x - MU) / STD^2, where a
    # noise-predicting net divided by s(t) would need its small outputs ~100 times more accurate.
    score = lambda p: (lambda x, t: net(p, x, t))
    loss = lambda p, k: sde_dsm_loss(score(p), sde, data(jax.random.fold_in(k, 1)), k, eps=1e-3).mean()
    params = fit(loss, mlp_init(jax.random.key(4), [4, 64, 64, 2]), 600)
    nll = -ode_log_likelihood(score(params), sde, data(jax.random.key(6), 500), None, eps=1e-3, trace="exact",
                              num_steps=50).mean()
    assert ENTROPY - 0.1 < float(nll) < ENTROPY + 0.15, (float(nll), ENTROPY)
    # A few hundred steps leave the small-t score slightly too steep: the spread is loose, the mean exact.
    assert_moments(reverse_sde_sample(score(params), sde, jax.random.key(5), (2000, 2), num_steps=200), std_rtol=0.4)


def test_dsm_and_annealed_langevin_with_a_plain_mlp():
    sigmas = geometric_noise_levels(2.0, 0.05, 8)
    net = lambda p, x, s: mlp(p, jnp.concatenate([x, jnp.log(s)[:, None]], -1))
    score = lambda p: (lambda x, s: net(p, x, s) / s[:, None])
    loss = lambda p, k: dsm_loss(score(p), sigmas, data(jax.random.fold_in(k, 1)), k).mean()
    params = fit(loss, mlp_init(jax.random.key(7), [3, 64, 64, 2]), 600)
    x0 = 2.0 * jax.random.normal(jax.random.key(8), (2000, 2))
    assert_moments(annealed_langevin_sample(score(params), sigmas, jax.random.key(9), x0, steps_per_sigma=50,
                                            step_lr=1e-4))


# ------------------------------------------------------------------------------------------------ VAE
def test_elbo_and_iwae_with_plain_encoder_and_decoder():
    """A 2-D latent with an affine decoder can represent the data exactly: the IWAE bound ends near the
    entropy and above the ELBO."""
    def encode(p):
        return lambda x: tuple(jnp.split(mlp(p["enc"], x), 2, axis=-1))

    def log_likelihood(p):
        def ll(x, z):
            mean = z @ p["dec_w"] + p["dec_b"]
            return jnp.sum(-0.5 * ((x - mean) / jnp.exp(p["log_s"])) ** 2 - p["log_s"] - 0.5 * math.log(2 * math.pi), -1)
        return ll

    params = {"enc": mlp_init(jax.random.key(10), [2, 32, 4]), "dec_w": jnp.eye(2), "dec_b": jnp.zeros(2),
              "log_s": jnp.zeros(2)}
    loss = lambda p, k: -elbo(encode(p), log_likelihood(p), data(jax.random.fold_in(k, 1)), k).mean()
    params = fit(loss, params, 800)
    x = data(jax.random.key(11), 500)
    bound = -iwae_bound(encode(params), log_likelihood(params), x, jax.random.key(12), k=64).mean()
    elbo_nll = -elbo(encode(params), log_likelihood(params), x, jax.random.key(13)).mean()
    assert ENTROPY - 0.1 < float(bound) < ENTROPY + 0.25 and float(bound) <= float(elbo_nll) + 0.02


# ------------------------------------------------------------------------------------------------ GAN
def test_gan_losses_and_gradient_penalty_with_plain_networks():
    """An affine generator against an MLP critic (WGAN-GP, Gulrajani et al. 2017) learns the data's moments."""
    def losses(params, key):
        k_z, k_x, k_gp = jax.random.split(key, 3)
        real = data(k_x)
        fake = jax.random.normal(k_z, (256, 2)) * params["g_scale"] + params["g_shift"]
        critic = lambda x: mlp(params["d"], x)[:, 0]
        fake_d = jax.lax.stop_gradient(fake)
        d_loss = discriminator_loss(critic(real), critic(fake_d), kind="wasserstein") + \
            10.0 * gradient_penalty(critic, real, fake_d, k_gp)
        critic_frozen = lambda x: mlp(jax.lax.stop_gradient(params["d"]), x)[:, 0]
        g_loss = generator_loss(critic_frozen(fake), kind="wasserstein")
        return d_loss.mean() + g_loss.mean()

    params = {"d": mlp_init(jax.random.key(14), [2, 64, 64, 1]), "g_scale": jnp.ones(2), "g_shift": jnp.zeros(2)}
    # One optimizer on the sum: the critic's gradient comes from d_loss only, the generator's from g_loss only.
    params = fit(losses, params, 3000, lr=3e-3)
    x = jax.random.normal(jax.random.key(15), (2000, 2)) * params["g_scale"] + params["g_shift"]
    assert_moments(x, mean_tol=0.2, std_rtol=0.4)


# ----------------------------------------------------------------------------------------------- flow
def test_coupling_flow_with_a_plain_conditioner():
    """Two affine couplings (Dinh et al. 2017) whose conditioner is a hand-written MLP: exact NLL near the
    entropy after training, and reverse-flow samples with the data's moments."""
    from gm_jax import flows
    from gm_jax.samplers import reverse_flow_sample

    def init_last_zero(key, x):  # zero output layer: a fresh coupling is the identity
        params = mlp_init(key, [2, 64, 4])
        return params[:-1] + [(jnp.zeros_like(params[-1][0]), params[-1][1])]

    cond = flows.Conditioner(init_last_zero, lambda p, x: mlp(p, x).reshape(x.shape + (2,)))
    flow = flows.chain(*[flows.affine_coupling(cond, "half", parity=i % 2) for i in range(4)])
    params = flow.init(jax.random.key(18), data(jax.random.key(19)))
    loss = lambda p, k: -flows.flow_log_prob(flow, p, data(k)).mean()
    params = fit(loss, params, 600)
    nll = -float(flows.flow_log_prob(flow, params, data(jax.random.key(20), 2000)).mean())
    assert ENTROPY - 0.1 < nll < ENTROPY + 0.1, (nll, ENTROPY)
    assert_moments(reverse_flow_sample(lambda z: flow.inverse(params, z)[0], jax.random.key(21), (2000, 2)))


# ------------------------------------------------------------------------------------ autoregressive
def test_ancestral_sampling_of_a_plain_conditional_table():
    """p(x1) p(x2 | x1) over {0, 1}^2 from a logits table: samples reproduce the joint."""
    joint = np.array([[0.1, 0.2], [0.3, 0.4]])
    p1 = joint.sum(1)
    cond = joint / p1[:, None]

    def conditional_fn(canvas):
        first = jnp.broadcast_to(jnp.log(jnp.asarray(p1)), (canvas.shape[0], 2))
        second = jnp.log(jnp.asarray(cond))[canvas[:, 0]]
        return jnp.stack([first, second], axis=1)  # [B, 2 positions, 2 classes]

    x = ancestral_sample(conditional_fn, jax.random.key(16), jnp.zeros((20000, 2), jnp.int32))
    counts = np.zeros((2, 2))
    np.add.at(counts, (np.asarray(x[:, 0]), np.asarray(x[:, 1])), 1)
    np.testing.assert_allclose(counts / counts.sum(), joint, atol=0.015)


# ----------------------------------------------------------------------------------------------- EBM
def test_contrastive_divergence_and_langevin_with_a_plain_energy():
    """A quadratic energy E(x) = ½ (x - m)^T diag(exp(-2 s)) (x - m) trained by CD with Langevin negatives
    moves its minimum to the data mean."""
    energy = lambda p: (lambda x: 0.5 * jnp.sum(((x - p["m"]) * jnp.exp(-p["s"])) ** 2, -1))

    def loss(p, k):
        k_x, k_neg = jax.random.split(k)
        x_neg = langevin_sample(energy(jax.lax.stop_gradient(p)), k_neg, jnp.zeros((256, 2)), num_steps=40,
                                step_size=0.02)
        return contrastive_divergence_loss(energy(p), data(k_x), x_neg, alpha=0.0).mean()

    params = fit(loss, {"m": jnp.zeros(2), "s": jnp.zeros(2)}, 400, lr=2e-2)
    np.testing.assert_allclose(params["m"], MU, atol=0.2)
    x = langevin_sample(energy(params), jax.random.key(17), jnp.zeros((2000, 2)), num_steps=400, step_size=0.01)
    assert_moments(x, mean_tol=0.2, std_rtol=0.35)
