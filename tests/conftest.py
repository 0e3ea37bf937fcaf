import os

import pytest

# Datasets are prepared once per test session into a private directory, never into the user's cache.
_DATA_DIR = os.environ.setdefault("GM_JAX_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", ".pytest_data"))
# Feature-network weights (Inception, domain classifiers) never come from or go to the user's cache in tests.
os.environ["GM_JAX_WEIGHTS_DIR"] = os.path.join(os.path.dirname(__file__), "..", ".pytest_weights")


def pytest_configure(config):
    """One compilation cache for the session, shared by the xdist workers and the commands tests run (a fresh
    folder each session: the controller makes it, the workers inherit it through the environment), so a
    program compiled by one test is loaded by the next; never the user's cache."""
    import tempfile

    if not hasattr(config, "workerinput") and "GM_JAX_TEST_SESSION_CACHE" not in os.environ:
        os.environ["GM_JAX_TEST_SESSION_CACHE"] = tempfile.mkdtemp(prefix="gm_jax_test_jax_cache_")
    os.environ["GM_JAX_COMPILATION_CACHE"] = os.environ["GM_JAX_TEST_SESSION_CACHE"]
    from gm_jax.compilation_cache import enable_compilation_cache

    enable_compilation_cache(os.environ["GM_JAX_COMPILATION_CACHE"])


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and "GM_JAX_TEST_SESSION_CACHE" in os.environ:
        import shutil

        shutil.rmtree(os.environ.pop("GM_JAX_TEST_SESSION_CACHE"), ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir():
    return os.path.abspath(_DATA_DIR)


@pytest.fixture(scope="session")
def digits(data_dir):
    from gm_jax.data import load_dataset

    return load_dataset("digits", data_dir)
