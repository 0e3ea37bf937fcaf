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
from gm_jax.metrics.inception import (INCEPTION_SIZE, PYTORCH_FID_SHA256, PYTORCH_FID_URL, RESIZE_MODES,  # noqa: E402
                                      convert_state_dict, convert_weights, default_inception_weights_path,
                                      download_weights, inception_apply, init_inception_variables,
                                      load_inception_variables, preprocess_for_inception, to_state_dict)
from gm_jax.metrics.torch_pickle import read_torch_state_dict  # noqa: E402

__all__ += ["RESIZE_MODES", "INCEPTION_SIZE", "PYTORCH_FID_URL", "PYTORCH_FID_SHA256", "preprocess_for_inception",
            "inception_apply", "convert_state_dict", "to_state_dict", "convert_weights", "download_weights",
            "load_inception_variables", "init_inception_variables", "default_inception_weights_path",
            "read_torch_state_dict"]
from gm_jax.metrics.domain import (DomainClassifier, domain_apply, domain_features, domain_weights_path,  # noqa: E402
                                   load_domain_classifier, save_domain_classifier, train_domain_classifier)
__all__ += ["DomainClassifier", "domain_apply", "domain_features", "domain_weights_path", "load_domain_classifier",
            "save_domain_classifier", "train_domain_classifier"]
