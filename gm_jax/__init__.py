"""gm-jax: deep generative models in JAX.

A model is three pure functions (see DESIGN.md): a loss, a sampler and, where the family has one, a
log-likelihood. The maths lives in :mod:`gm_jax.losses` and :mod:`gm_jax.samplers` and takes callables
and arrays; :mod:`gm_jax.models` binds Flax networks to it; :mod:`gm_jax.train` runs any model.

The subpackages and modules of ``__all__`` are attributes that load on first use (``import gm_jax;
gm_jax.losses.elbo``), so ``import gm_jax`` itself imports nothing heavy (no JAX).
"""

import importlib

__version__ = "0.1.0"

__all__ = ["data", "distributions", "errors", "flows", "losses", "metrics", "models", "nets", "parallel",
           "processes", "runs", "samplers", "shapes", "train", "visualize"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")  # binds it as a module attribute too
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
