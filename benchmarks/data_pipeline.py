"""Streamed training data: CIFAR-sized images per second from TFDS array_record files, with and without read-ahead.

The trainer's read-ahead pipeline (grain threads) against reading in the loop; prints a table.

    python benchmarks/data_pipeline.py [--examples 10000] [--batch 128] [--steps 100]

The data are generated here: a TFDS dataset of random 32x32x3 images and labels in array_record files, each
image compressed (zlib; the catalog's cifar10 uses PNG, whose encoder needs TensorFlow), prepared into a
temporary folder, so nothing is downloaded. Batches
are what ``gm_jax.train.feeding.Feeder`` gives the training step when data streams from disk (``--set
max_device_bytes=0``, or data over 1 GiB): the rows of step t's shuffled batch, decoded and stacked, placed on
the device. ``prefetch_batches=0`` reads each batch when the step asks for it; the default 16 reads ahead with
16 grain threads while the device trains. Each is timed reading alone, and with a training step that keeps
the device busy for ``--step-ms`` (a sleep: the host is free meanwhile, as with an accelerator), where reading
ahead hides the reads behind the step. For scale: Ho et al.'s CIFAR-10 DDPM trained at 21 steps/s of batch
128 (2,700 images/s) on a TPU v3-8.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np
import tensorflow_datasets as tfds

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gm_jax import parallel  # noqa: E402
from gm_jax.data import load_dataset  # noqa: E402
from gm_jax.train import TrainConfig  # noqa: E402
from gm_jax.train.feeding import Feeder  # noqa: E402

class RandomCifarSized(tfds.core.GeneratorBasedBuilder):
    """Random 32x32x3 uint8 images with labels in array_record files, zlib-compressed (TFDS's cifar10 stores
    PNG, whose encoder needs TensorFlow; both are decoded per example on read)."""

    VERSION = tfds.core.Version("1.0.0")
    num_examples = 10_000  # main() sets it from --examples before preparing

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(32, 32, 3), dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB),
            "label": tfds.features.ClassLabel(num_classes=10)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self.num_examples)}

    def _generate_examples(self, num):
        rng = np.random.default_rng(0)
        for i in range(num):
            yield i, {"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "label": int(i % 10)}


def images_per_second(dataset, batch: int, steps: int, prefetch: int, step_ms: float) -> float:
    """Images/s through the feeder when each training step keeps the device busy ``step_ms`` (the host waits
    in a sleep, as it waits for an accelerator; 0: the pipeline alone)."""
    cfg = TrainConfig(steps=steps, batch_size=batch, max_device_bytes=0, prefetch_batches=prefetch)
    feeder = Feeder(dataset, cfg, parallel.make_mesh())
    jax.block_until_ready(feeder.host_batches(0, 1))  # starts the threads
    start = time.perf_counter()
    for t in range(1, steps):
        jax.block_until_ready(feeder.host_batches(t, 1))
        time.sleep(step_ms / 1000)
    seconds = time.perf_counter() - start
    feeder.close()
    return batch * (steps - 1) / seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=10_000, help="examples generated (default: %(default)s)")
    p.add_argument("--batch", type=int, default=128, help="batch size (default: %(default)s)")
    p.add_argument("--steps", type=int, default=100, help="batches read per measurement (default: %(default)s)")
    p.add_argument("--step-ms", type=float, default=20.0,
                   help="milliseconds a training step keeps the device busy (default: %(default)s)")
    args = p.parse_args(argv)
    RandomCifarSized.num_examples = args.examples
    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        RandomCifarSized(data_dir=data_dir, file_format="array_record").download_and_prepare()
        dataset = load_dataset("random_cifar_sized", data_dir)
        print(f"prepared {args.examples} examples in {time.perf_counter() - start:.0f} s; {os.cpu_count()} CPU "
              f"cores; batch {args.batch}")
        print(f"| pipeline | images/s, reading only | images/s with a {args.step_ms:g} ms device step (at most "
              f"{1000 * args.batch / args.step_ms:,.0f}) |\n|---|---|---|")
        for prefetch in (0, 16):
            alone, busy = (images_per_second(dataset, args.batch, args.steps, prefetch, ms) for ms in (0, args.step_ms))
            name = "read in the loop (prefetch_batches=0)" if prefetch == 0 else \
                f"grain, {prefetch} batches ahead (the default)"
            print(f"| {name} | {alone:,.0f} | {busy:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
