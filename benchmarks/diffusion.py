"""DDPM U-Net throughput: training images/s and the time of one N-step ancestral sampling run; prints a table.

    python benchmarks/diffusion.py            # full size on a GPU, --tiny on CPU
    python benchmarks/diffusion.py --tiny     # small net, batch and step counts (< 2 min on CPU)
    python benchmarks/diffusion.py --full     # Ho et al.'s CIFAR-10 net (35.7M), batch 128, 1000-step
                                              # sampling of 256 32x32x3 images

The train step is one jitted function (L_simple of Ho et al. 2020 via ``gm_jax.losses.ddpm_loss``, optax
Adam, the (params, opt state) pair donated), float32 parameters with float32 or bfloat16 compute. Sampling
is ``gm_jax.samplers.ddpm_sample``: one jitted ``lax.scan`` over the N steps of an N-step linear schedule.
Every timing follows a warm-up (compiling) call and ends in ``block_until_ready``. Data are random images
in [-1, 1]: the cost does not depend on their content.
"""

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import optax

from gm_jax.losses import ddpm_loss
from gm_jax.nets import UNet
from gm_jax.processes.discrete import linear_beta_schedule, make_schedule
from gm_jax.samplers import ddpm_sample

SETTINGS = {
    # name: (net kwargs, image shape, train batch, timed train steps, sampling steps, images sampled)
    "full": (dict(), (32, 32, 3), 128, 20, 1000, 256),
    "tiny": (dict(channels=32, channel_mult=(1, 2), attention_resolutions=(4,)), (8, 8, 1), 32, 10, 100, 16),
}


def timed(fn, *args, repeats=1):
    """Seconds per call of fn(*args) after one warm-up call (which compiles)."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def bench(setting: str, dtype):
    net_kw, image_shape, batch, train_steps, sample_steps, num_samples = SETTINGS[setting]
    net = UNet(**net_kw, dtype=dtype)
    key = jax.random.key(0)
    k_data, k_init, k_train, k_sample = jax.random.split(key, 4)
    x0 = jax.random.uniform(k_data, (batch,) + image_shape, minval=-1.0, maxval=1.0)
    schedule = make_schedule(linear_beta_schedule(1000))
    params = jax.jit(net.init)(k_init, x0, jnp.zeros((batch,), jnp.int32))["params"]
    num_params = sum(p.size for p in jax.tree_util.tree_leaves(params))
    opt = optax.adam(2e-4)  # Ho et al.'s CIFAR-10 learning rate

    @functools.partial(jax.jit, donate_argnums=0)
    def train_step(state, x0, key):
        params, opt_state = state
        k_loss, k_drop = jax.random.split(key)

        def loss_fn(p):
            eps_fn = lambda x, t: net.apply({"params": p}, x, t, train=True, rngs={"dropout": k_drop})
            return jnp.mean(ddpm_loss(eps_fn, schedule, x0, k_loss))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def train(state, key):
        for k in jax.random.split(key, train_steps):
            state, loss = train_step(state, x0, k)
        return state, loss

    state = (params, opt.init(params))
    state, _ = train_step(state, x0, k_train)  # warm-up: compile
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, loss = train(state, k_train)
    jax.block_until_ready((state, loss))
    train_rate = batch * train_steps / (time.perf_counter() - start)

    sample_schedule = make_schedule(linear_beta_schedule(sample_steps))
    sample = jax.jit(lambda p, key: ddpm_sample(lambda x, t: net.apply({"params": p}, x, t), sample_schedule, key,
                                                (num_samples,) + image_shape))
    sample_s = timed(sample, state[0], k_sample)
    return num_params, batch, train_rate, sample_steps, num_samples, sample_s


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="small net and counts (default on CPU)")
    size.add_argument("--full", action="store_true", help="the CIFAR-10 net at full size (default on GPU)")
    p.add_argument("--dtypes", default="float32,bfloat16", help="compute dtypes, comma-separated")
    args = p.parse_args()
    setting = "full" if args.full or (not args.tiny and jax.default_backend() != "cpu") else "tiny"
    dev = jax.devices()[0]
    print(f"device: {dev.platform} {dev.device_kind} x{jax.device_count()}  setting: {setting}")
    print(f"{'config':>7} {'dtype':>9} {'params':>8} {'batch':>6} {'train img/s':>12} {'steps':>6} {'images':>7} "
          f"{'sample s':>9}")
    for name in args.dtypes.split(","):
        n, batch, rate, steps, num, secs = bench(setting, jnp.dtype(name))
        print(f"{setting:>7} {name:>9} {n / 1e6:>7.2f}M {batch:>6} {rate:>12.1f} {steps:>6} {num:>7} {secs:>9.2f}",
              flush=True)


if __name__ == "__main__":
    main()
