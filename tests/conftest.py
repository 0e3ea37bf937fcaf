import os

import pytest

# Datasets are prepared once per test session into a private directory, never into the user's cache.
_DATA_DIR = os.environ.setdefault("GM_JAX_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", ".pytest_data"))
# Feature-network weights (Inception, domain classifiers) never come from or go to the user's cache in tests.
os.environ["GM_JAX_WEIGHTS_DIR"] = os.path.join(os.path.dirname(__file__), "..", ".pytest_weights")


@pytest.fixture(scope="session")
def data_dir():
    return os.path.abspath(_DATA_DIR)


@pytest.fixture(scope="session")
def digits(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("digits", data_dir)
