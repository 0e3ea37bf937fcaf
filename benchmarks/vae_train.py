"""Training throughput of the VAE main job's step (examples/s) for a few batch sizes; prints a table.

    python benchmarks/vae_train.py [--steps 300]
"""

import argparse
import json
import os
import tempfile

import jax

from gm_jax.data import load_dataset
from gm_jax.models import VAE, VAEConfig
from gm_jax.train import TrainConfig, fit


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    data = load_dataset("digits")
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}")
    print(f"{'architecture':>12} {'dtype':>9} {'batch':>6} {'examples/s':>12}")
    for arch in ("mlp", "conv"):
        for dtype in ("float32", "bfloat16"):
            for batch in (128, 512):
                model = VAE(VAEConfig(architecture=arch, compute_dtype=dtype), data.spec)
                # The loop logs examples/s between log points; the last interval excludes compilation.
                cfg = TrainConfig(steps=args.steps, batch_size=batch, log_every=args.steps // 3,
                                  checkpoint_every=10**9)
                with tempfile.TemporaryDirectory() as d:
                    fit(model, data, cfg, d, progress=False, evaluate=False)
                    with open(os.path.join(d, "metrics.jsonl")) as f:
                        rate = json.loads(f.read().splitlines()[-1])["examples_per_s"]
                print(f"{arch:>12} {dtype:>9} {batch:>6} {rate:>12.0f}")


if __name__ == "__main__":
    main()
