"""Evaluation metrics (vectorised JAX, float64 where it matters) and the feature networks they run on.

- Metric maths on feature arrays: ``frechet_distance``/``fid`` and streaming ``feature_stats_*``,
  ``inception_score``, ``kid``, ``prdc``; likelihoods: ``bits_per_dim``, ``evaluate_log_likelihood``.
- Properties beyond quality: ``class_coverage`` and ``mode_coverage`` (mode collapse), ``data_copying_test``
  (memorisation, with ``kmeans`` cells) and ``perceptual_path_length`` (latent smoothness).
- Feature networks: the FID InceptionV3 (``inception_apply`` in :mod:`~gm_jax.metrics.inception`; weights via
  ``convert_weights`` / ``download_weights`` in :mod:`~gm_jax.metrics.inception_weights`) and a classifier
  trained on the domain (``DomainClassifier``, ``train_domain_classifier``, ``domain_extractor``).
- Extraction: :mod:`gm_jax.metrics.extract` streams examples from files, datasets or samplers through a network
  over the device mesh; :func:`gm_jax.metrics.suite.sample_quality` turns features into the reported numbers;
  :func:`gm_jax.metrics.evaluate.evaluate_sample_quality` runs both, from inputs to numbers (``gm-jax evaluate``).
"""

from gm_jax.losses.likelihood import bits_per_dim
from gm_jax.metrics.class_score import inception_score
from gm_jax.metrics.coverage import class_coverage, mode_coverage
from gm_jax.metrics.domain import (DomainClassifier, domain_apply, domain_extractor, domain_features,
                                   domain_weights_path, load_domain_classifier, save_domain_classifier,
                                   train_domain_classifier)
from gm_jax.metrics.evaluate import (ModelSamples, evaluate_sample_quality, feature_extractor, model_features,
                                     read_fid_stats, row_source)
from gm_jax.metrics.extract import (FeatureExtractor, array_source, dataset_source, directory_source,
                                    inception_extractor, npz_source, raw_extractor, sampler_features,
                                    source_features)
from gm_jax.metrics.frechet import (feature_stats, feature_stats_finalize, feature_stats_init, feature_stats_merge,
                                    feature_stats_update, fid, frechet_distance, load_stats, save_stats)
from gm_jax.metrics.inception import INCEPTION_SIZE, RESIZE_MODES, inception_apply, preprocess_for_inception
from gm_jax.metrics.inception_weights import (PYTORCH_FID_SHA256, PYTORCH_FID_URL, convert_state_dict,
                                              convert_weights, default_inception_weights_path, download_weights,
                                              init_inception_variables, load_inception_variables, to_state_dict)
from gm_jax.metrics.likelihood import evaluate_log_likelihood
from gm_jax.metrics.manifold import knn_radii, prdc
from gm_jax.metrics.memorization import data_copying_test, kmeans
from gm_jax.metrics.mmd import kid, kid_subset_indices, mmd2_unbiased
from gm_jax.metrics.path_length import perceptual_path_length
from gm_jax.metrics.suite import METRICS, sample_quality
from gm_jax.metrics.torch_pickle import read_torch_state_dict

__all__ = [
    "bits_per_dim", "evaluate_log_likelihood",
    "frechet_distance", "fid", "feature_stats", "feature_stats_init", "feature_stats_update",
    "feature_stats_merge", "feature_stats_finalize", "save_stats", "load_stats",
    "inception_score", "kid", "kid_subset_indices", "mmd2_unbiased", "prdc", "knn_radii",
    "class_coverage", "mode_coverage", "data_copying_test", "kmeans", "perceptual_path_length",
    "RESIZE_MODES", "INCEPTION_SIZE", "preprocess_for_inception", "inception_apply",
    "PYTORCH_FID_URL", "PYTORCH_FID_SHA256", "convert_state_dict", "to_state_dict", "convert_weights",
    "download_weights", "load_inception_variables", "init_inception_variables", "default_inception_weights_path",
    "read_torch_state_dict",
    "DomainClassifier", "domain_apply", "domain_features", "domain_weights_path", "load_domain_classifier",
    "save_domain_classifier", "train_domain_classifier", "domain_extractor",
    "FeatureExtractor", "array_source", "dataset_source", "directory_source", "npz_source", "source_features",
    "sampler_features", "raw_extractor", "inception_extractor",
    "METRICS", "sample_quality",
    "evaluate_sample_quality", "ModelSamples", "row_source", "read_fid_stats", "feature_extractor", "model_features",
]
