"""The `shakespeare` dataset: Tiny Shakespeare as windows of character tokens.

The text is the 1,115,394-character "Tiny Shakespeare" file of Andrej Karpathy's char-rnn
(https://github.com/karpathy/char-rnn, data/tinyshakespeare/input.txt): a concatenation of Shakespeare's
plays, which are in the public domain. It is embedded in this package as
``resources/shakespeare.txt.gz``; nothing is downloaded.

Tokens are characters: the vocabulary is the sorted set of the characters of the whole text (65 of them),
token i is ``VOCABULARY[i]``. The first 90% of the text (by characters) is the training text and the
last 10% the test text; each is cut into non-overlapping windows of ``SEQ_LEN`` characters (the tail
shorter than a window is dropped), so no window crosses the boundary. Each example is
``{"text": int32 [SEQ_LEN]}``, and the examples of a split are stored in text order.
The builder metadata holds ``num_levels`` (the vocabulary size) and ``vocabulary`` (the string itself),
so a model can decode its samples (:func:`decode`).
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources

import numpy as np
import tensorflow_datasets as tfds

from gm_jax.errors import GMJaxError

__all__ = ["Shakespeare", "SEQ_LEN", "TRAIN_FRACTION", "read_text", "vocabulary_of", "encode", "decode",
           "split_texts", "windows"]

SEQ_LEN = 256
TRAIN_FRACTION = 0.9


@functools.lru_cache(maxsize=1)
def read_text() -> str:
    """The embedded Tiny Shakespeare text (1,115,394 characters)."""
    raw = importlib.resources.files("gm_jax.data").joinpath("resources/shakespeare.txt.gz").read_bytes()
    return gzip.decompress(raw).decode("utf-8")


def vocabulary_of(text: str) -> str:
    """The sorted set of the characters of ``text``: the string whose i-th character is token i."""
    return "".join(sorted(set(text)))


def encode(text: str, vocabulary: str) -> np.ndarray:
    """Characters -> tokens int32 [len(text)]; a character outside ``vocabulary`` raises GMJaxError."""
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise GMJaxError(f"characters {''.join(unknown)!r} are not in the vocabulary {vocabulary!r}; "
                         "remove them from the text")
    return np.array([index[c] for c in text], np.int32)


def decode(tokens, vocabulary: str) -> str:
    """Tokens [T] (integers < len(vocabulary)) -> the string they spell."""
    return "".join(vocabulary[int(t)] for t in np.asarray(tokens).reshape(-1))


def split_texts(text: str) -> dict[str, str]:
    """The fixed split: the first ``TRAIN_FRACTION`` of the characters for train, the rest for test."""
    boundary = int(len(text) * TRAIN_FRACTION)
    return {"train": text[:boundary], "test": text[boundary:]}


def windows(tokens: np.ndarray, seq_len: int = SEQ_LEN) -> np.ndarray:
    """Non-overlapping windows [len(tokens) // seq_len, seq_len] of a token stream (the tail is dropped)."""
    n = len(tokens) // seq_len
    return np.asarray(tokens[:n * seq_len]).reshape(n, seq_len)


class Shakespeare(tfds.core.GeneratorBasedBuilder):
    """Tiny Shakespeare as non-overlapping windows of character tokens, prepared from the embedded copy."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": f"Windows of {SEQ_LEN} characters; first 90% of the text train, last 10% test."}

    def _info(self) -> tfds.core.DatasetInfo:
        vocabulary = vocabulary_of(read_text())
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Tensor(shape=(SEQ_LEN,), dtype=np.int32),
            }),
            disable_shuffling=True,  # keep the windows in text order
            metadata=tfds.core.MetadataDict(num_levels=len(vocabulary), vocabulary=vocabulary),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the data ships with the package
        text = read_text()
        vocabulary = vocabulary_of(text)
        return {split: self._generate_examples(windows(encode(part, vocabulary)))
                for split, part in split_texts(text).items()}

    def _generate_examples(self, token_windows):
        for i, w in enumerate(token_windows):
            yield i, {"text": w}
