"""Trains a small VAE on digits in its own process (for device-count and kill/resume tests).

Usage: python run_training.py WORKDIR STEPS [--stream-delay S] [--save-params FILE.npz] [key=value ...]
XLA_FLAGS may force several host devices before jax is imported.
"""

import sys
import time

import jax
import numpy as np

from gm_jax.data import load_dataset
from gm_jax.models import VAE, VAEConfig
from gm_jax.train import TrainConfig, fit, restore_state


def main(argv):
    workdir, steps = argv[0], int(argv[1])
    rest = argv[2:]
    delay, out, sets = 0.0, None, {}
    while rest:
        a = rest.pop(0)
        if a == "--stream-delay":
            delay = float(rest.pop(0))
        elif a == "--save-params":
            out = rest.pop(0)
        else:
            k, v = a.split("=")
            sets[k] = type(getattr(TrainConfig, k))(v)
    dataset = load_dataset("digits")
    if delay:  # stream from disk and slow each read, so a test can kill the run mid-way
        read = dataset.read
        dataset.read = lambda *a, **k: (time.sleep(delay), read(*a, **k))[1]
        sets["max_device_bytes"] = 0
    cfg = TrainConfig(steps=steps, batch_size=32, log_every=10, checkpoint_every=10, lr=3e-3, **sets)
    model = VAE(VAEConfig(hidden=(32,), latent_dim=4), dataset.spec)
    fit(model, dataset, cfg, workdir, progress=False, evaluate=False)
    if out:
        state = restore_state(model, dataset, cfg, workdir)
        leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
        np.savez(out, **{jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}, devices=jax.device_count())


if __name__ == "__main__":
    main(sys.argv[1:])
