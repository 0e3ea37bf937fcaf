"""Evaluation metrics (vectorised JAX, float64 accumulation)."""

from gm_jax.losses.likelihood import bits_per_dim
from gm_jax.metrics.likelihood import evaluate_log_likelihood
from gm_jax.metrics.frechet import (feature_stats, feature_stats_finalize, feature_stats_init, feature_stats_merge,
                                    feature_stats_update, fid, frechet_distance, load_stats, save_stats)
from gm_jax.metrics.class_score import inception_score
from gm_jax.metrics.mmd import kid, kid_subset_indices, mmd2_unbiased
from gm_jax.metrics.manifold import knn_radii, prdc

__all__ = ["bits_per_dim", "evaluate_log_likelihood",
           "frechet_distance", "fid", "feature_stats", "feature_stats_init", "feature_stats_update",
           "feature_stats_merge", "feature_stats_finalize", "save_stats", "load_stats",
           "inception_score", "kid", "kid_subset_indices", "mmd2_unbiased", "prdc", "knn_radii"]
