"""Two-domain (unpaired translation) datasets: the TFDS ``cycle_gan/*`` layout, splits ``trainA``, ``trainB``,
``testA`` and ``testB`` of single images, read as one dataset whose examples hold an image of each domain.

:func:`two_domain_splits` makes the ``train`` and ``test`` splits from the four: example i holds ``image``
= A[i mod n_A] and ``image_b`` = B[(i * s) mod n_B], s the smallest integer > 1 coprime to n_B, so over any
n_B consecutive examples every B image appears once and the two sides are never aligned by index. The four
single-domain splits stay readable under their own names (``--real cycle_gan/horse2zebra:testB``).

``digits2inverted`` is an embedded dataset in that layout (no download): domain A the digits, domain B the
inverted digits (x -> 16 - x) of other images, for tests and smoke runs of the CycleGAN recipe.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow_datasets as tfds

__all__ = ["TWO_DOMAIN_SPLITS", "UnalignedPairs", "two_domain_splits", "Digits2inverted"]

TWO_DOMAIN_SPLITS = ("trainA", "trainB", "testA", "testB")


class UnalignedPairs:
    """A random-access source of {"image": A image, "image_b": B image} (see the module doc)."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.stride = next(s for s in range(2, len(b) + 2) if math.gcd(s, len(b)) == 1)

    def __len__(self):
        return max(len(self.a), len(self.b))

    def __getitem__(self, i):
        i = int(i)
        return {"image": self.a[i % len(self.a)]["image"], "image_b": self.b[(i * self.stride) % len(self.b)]["image"]}


def two_domain_splits(splits) -> dict:
    """``splits`` (TWO_DOMAIN_SPLITS -> sources of {"image", ...}) -> {"train", "test"} pair sources plus the
    four single-domain splits."""
    return {"train": UnalignedPairs(splits["trainA"], splits["trainB"]),
            "test": UnalignedPairs(splits["testA"], splits["testB"]), **{k: splits[k] for k in TWO_DOMAIN_SPLITS}}


class Digits2inverted(tfds.core.GeneratorBasedBuilder):
    """Digits (domain A) and inverted digits (domain B), unpaired, in the cycle_gan layout; from the embedded
    digits (no download). Each domain takes alternate images of the digits' train and test splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "A: even rows, B: inverted odd rows of each digits split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=2),  # the domain, as in cycle_gan/*
            }),
            metadata=tfds.core.MetadataDict(num_levels=17),
        )

    def _split_generators(self, dl_manager):
        from gm_jax.data.digits import NUM_LEVELS, read_digits, split_indices

        del dl_manager
        images, _ = read_digits()
        out = {}
        for split, idx in split_indices(len(images)).items():
            out[f"{split}A"] = self._generate_examples(images[idx[0::2]], 0)
            out[f"{split}B"] = self._generate_examples(NUM_LEVELS - 1 - images[idx[1::2]], 1)
        return out

    def _generate_examples(self, images, domain):
        for i, image in enumerate(images):
            yield i, {"image": image.astype(np.uint8), "label": domain}
