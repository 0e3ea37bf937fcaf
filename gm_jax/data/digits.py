"""The `digits` dataset: 1,797 8x8 handwritten digits with 17 grey levels (0..16) and labels.

The data is the copy of the UCI "Optical Recognition of Handwritten Digits" test set that scikit-learn
ships (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), embedded in this package as
``resources/digits.csv.gz`` (64 pixel columns then the label, one image per row). The train/test split
is fixed: a permutation drawn once with ``numpy.random.default_rng(0)``; the first 360 images of it form
the test set and the remaining 1,437 the training set.
"""

from __future__ import annotations

import gzip
import importlib.resources

import numpy as np
import tensorflow_datasets as tfds

__all__ = ["Digits", "read_digits", "split_indices", "NUM_LEVELS", "NUM_TEST", "SPLIT_SEED"]

NUM_LEVELS = 17
NUM_TEST = 360
SPLIT_SEED = 0


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Returns all images [1797, 8, 8, 1] uint8 in 0..16 and labels [1797] int64, in file order."""
    raw = importlib.resources.files("gm_jax.data").joinpath("resources/digits.csv.gz").read_bytes()
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), delimiter=",", dtype=np.int64)
    images = table[:, :64].reshape(-1, 8, 8, 1).astype(np.uint8)
    return images, table[:, 64]


def split_indices(num: int) -> dict[str, np.ndarray]:
    """The fixed train/test split: indices into the file order."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(num)
    return {"test": np.sort(perm[:NUM_TEST]), "train": np.sort(perm[NUM_TEST:])}


class Digits(tfds.core.GeneratorBasedBuilder):
    """8x8 digits with 17 grey levels, prepared from the copy embedded in gm_jax (no download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Fixed 1437/360 train/test split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(num_levels=NUM_LEVELS),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the data ships with the package
        images, labels = read_digits()
        return {
            split: self._generate_examples(images[idx], labels[idx], idx)
            for split, idx in split_indices(len(images)).items()
        }

    def _generate_examples(self, images, labels, ids):
        for image, label, i in zip(images, labels, ids):
            yield int(i), {"image": image, "label": int(label)}
