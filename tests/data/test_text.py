import numpy as np
import pytest

from gm_jax.data import load_dataset
from gm_jax.data import text as T
from gm_jax.errors import GMJaxError


@pytest.fixture(scope="module")
def shakespeare(data_dir):
    return load_dataset("shakespeare", data_dir)


def test_embedded_text_is_tiny_shakespeare():
    text = T.read_text()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\nBefore we proceed any further")
    vocab = T.vocabulary_of(text)
    assert len(vocab) == 65 and vocab == "".join(sorted(vocab)) and "\n" in vocab and " " in vocab


def test_spec_fields(shakespeare):
    spec = shakespeare.spec
    assert spec.kind == "text" and spec.data_key == "text" and spec.shape == (T.SEQ_LEN,)
    assert spec.num_levels == 65 and spec.num_classes == 0 and spec.num_dims == T.SEQ_LEN
    assert spec.vocabulary == T.vocabulary_of(T.read_text())


def test_windows_decode_to_the_exact_source_text_and_splits_do_not_overlap(shakespeare):
    text = T.read_text()
    boundary = int(len(text) * 0.9)
    vocab = shakespeare.spec.vocabulary
    train, test = shakespeare.read("train"), shakespeare.read("test")
    assert set(train) == {"text"} and train["text"].dtype == np.int32
    assert len(train["text"]) == boundary // T.SEQ_LEN == shakespeare.size("train")
    assert len(test["text"]) == (len(text) - boundary) // T.SEQ_LEN == shakespeare.size("test")
    # In order, the train windows spell the start of the text and the test windows the text after the
    # boundary: no window crosses it, so the splits share no character position.
    decoded_train = T.decode(train["text"], vocab)
    decoded_test = T.decode(test["text"], vocab)
    assert decoded_train == text[:len(train["text"]) * T.SEQ_LEN]
    assert decoded_test == text[boundary:boundary + len(test["text"]) * T.SEQ_LEN]
    assert len(decoded_train) <= boundary
    # Random access reads the same windows.
    np.testing.assert_array_equal(shakespeare.read("test", [3, 1])["text"], test["text"][[3, 1]])


def test_encode_decode_round_trip_and_unknown_characters():
    vocab = "\n abc"
    tokens = T.encode("ab c\na", vocab)
    assert tokens.dtype == np.int32 and tokens.tolist() == [2, 3, 1, 4, 0, 2]
    assert T.decode(tokens, vocab) == "ab c\na"
    with pytest.raises(GMJaxError, match=r"characters 'Z~' are not in the vocabulary"):
        T.encode("aZb~", vocab)
    np.testing.assert_array_equal(T.windows(np.arange(10), 3), np.arange(9).reshape(3, 3))
