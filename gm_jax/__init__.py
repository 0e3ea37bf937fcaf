"""gm-jax: deep generative models in JAX.

A model is three pure functions (see DESIGN.md): a loss, a sampler and, where the family has one, a
log-likelihood. The maths lives in :mod:`gm_jax.losses` and :mod:`gm_jax.samplers` and takes callables
and arrays; :mod:`gm_jax.models` binds Flax networks to it; :mod:`gm_jax.train` runs any model.
"""

__version__ = "0.1.0"
