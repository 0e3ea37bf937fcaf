"""Datasets (TFDS builders for the embedded ``digits``, ``shakespeare`` and ``toy2d/*``), loading and
preprocessing."""

from gm_jax.data.augment import random_hflip
from gm_jax.data.loading import EMBEDDED, DataSpec, Dataset, batch_indices, default_data_dir, load_dataset
from gm_jax.data.preprocess import binarize, dequantize, from_centres, quantize, to_centres

__all__ = [
    "EMBEDDED", "DataSpec", "Dataset", "batch_indices", "default_data_dir", "load_dataset",
    "binarize", "dequantize", "from_centres", "quantize", "random_hflip", "to_centres",
]
