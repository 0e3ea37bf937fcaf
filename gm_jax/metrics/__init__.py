"""Evaluation metrics (vectorised JAX, float64 accumulation)."""

from gm_jax.losses.likelihood import bits_per_dim
from gm_jax.metrics.likelihood import evaluate_log_likelihood

__all__ = ["bits_per_dim", "evaluate_log_likelihood"]
