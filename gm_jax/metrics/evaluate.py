"""Sample-quality evaluation end to end: examples or a model's samples -> features -> FID, IS, KID, PRDC.

:func:`evaluate_sample_quality` is what ``gm-jax evaluate --metrics fid,is,kid,prdc`` runs (the command only
parses its flags, prints and writes ``metrics.json``). Each side is one of

- a :class:`~gm_jax.metrics.extract.RowSource`, or its text form (:func:`row_source`): a directory of image
  files, an ``.npz`` of examples, or ``DATASET[:SPLIT]``;
- for the real side also an ``.npz`` of FID statistics ``mu``/``sigma`` (pytorch-fid's layout; FID only);
- for the generated side also a trained model (:class:`ModelSamples`), whose samples are drawn and embedded
  on the devices batch by batch (:func:`model_features`) and never gathered as images.

Both sides go through one feature network (:func:`feature_extractor`: the FID Inception, a domain classifier
or the raw data) and then :func:`gm_jax.metrics.suite.sample_quality`. Test NLL needs the model's
likelihood, not samples: see :func:`gm_jax.train.evaluation`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from gm_jax import parallel
from gm_jax.errors import GMJaxError
from gm_jax.metrics import extract
from gm_jax.metrics._features import open_npz
from gm_jax.metrics.domain import domain_extractor
from gm_jax.metrics.frechet import feature_stats, load_stats, save_stats
from gm_jax.metrics.suite import check_real_given, parse_metrics, sample_quality
from gm_jax.models.base import accepts_kwarg

__all__ = ["FEATURES", "DEFAULT_NUM_SAMPLES", "MAX_NUM_SAMPLES", "ModelSamples", "row_source",
           "read_fid_stats", "feature_extractor", "model_features", "evaluate_sample_quality"]

FEATURES = ("inception", "domain", "raw")
# Samples drawn from a model when no count is given: as many as the real examples, else 10,000; at most 50,000
# (the usual FID sample size).
DEFAULT_NUM_SAMPLES = 10_000
MAX_NUM_SAMPLES = 50_000


@dataclasses.dataclass(frozen=True)
class ModelSamples:
    """A trained model as the generated side of an evaluation.

    Attributes:
      model: a gm-jax model; ``model.sample(variables, key, n, **sample_kwargs)`` returns ``n`` examples in
        the dataset's layout (integer pixel levels [n, H, W, C], or points [n, D]).
      variables: the variables to sample with (e.g. ``gm_jax.train.eval_variables(state)``).
      spec: the :class:`~gm_jax.data.DataSpec` of the model's dataset (``kind`` image or points; image pixels
        are divided by ``num_levels - 1`` into [0, 1]).
      sample_kwargs: sampler options passed to ``model.sample`` (``sampler``, ``steps``, ``temperature``, ...).
      name: what error messages call the model (e.g. its registry name ``dcgan``).
    """

    model: Any
    variables: Any
    spec: Any
    sample_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    name: str = "the model"

    def check(self) -> None:
        """Raises GMJaxError unless the model draws images or points unconditionally."""
        if self.spec.kind not in ("image", "points"):
            raise GMJaxError(f"{self.spec.name} holds {self.spec.kind}; sample-quality metrics need images or "
                             "points (use --metrics nll)")
        if accepts_kwarg(self.model.sample, "source"):
            raise GMJaxError(f"{self.name} translates test images; write them with `gm-jax sample --out "
                             "FILE.npz` and pass that file as --fake")


def row_source(text: str, *, data_dir: str | None = None, what: str = "source") -> extract.RowSource:
    """Examples named by text: a directory of image files, ``FILE.npz``, or ``DATASET[:SPLIT]`` (split default
    ``train``; loaded with :func:`gm_jax.data.load_dataset` from ``data_dir``).

    ``what`` names the argument in error messages (e.g. ``--real``). A path that starts with ``/``, ``.`` or
    ``~`` and does not exist raises GMJaxError instead of being taken for a dataset name.
    """
    if os.path.isdir(text):
        return extract.directory_source(text)
    if text.endswith(".npz"):
        return extract.npz_source(text)
    if text.startswith(("/", ".", "~")):
        raise GMJaxError(f"{what} '{text}': no such directory or .npz file")
    from gm_jax.data.loading import load_dataset  # TFDS is imported only when a dataset is named

    name, _, split = text.partition(":")
    return extract.dataset_source(load_dataset(name, data_dir), split or "train")


def read_fid_stats(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mu [D], sigma [D, D])`` when ``path`` is an ``.npz`` file holding FID statistics ``mu`` and ``sigma``
    (pytorch-fid's layout, or :func:`gm_jax.metrics.save_stats`), else None. Statistics are checked by
    :func:`~gm_jax.metrics.load_stats` (shapes, finite, sigma PSD); a file that is not a readable ``.npz`` raises
    GMJaxError."""
    if not path.endswith(".npz") or not os.path.isfile(path):
        return None
    with open_npz(path, "write examples with np.savez(path, images=x), statistics with save_stats") as f:
        is_stats = "mu" in f.files and "sigma" in f.files
    return load_stats(path) if is_stats else None


def feature_extractor(kind: str | None = None, *, example_shape: Sequence[int], weights: str | None = None,
                      resize: str = "tf1", domain_dataset: str | None = None) -> extract.FeatureExtractor:
    """The feature network of an evaluation.

    Args:
      kind: ``inception`` (the FID InceptionV3, pool3 features and IS logits), ``domain`` (the classifier
        trained by ``gm-jax domain train`` on ``domain_dataset``) or ``raw`` (the flattened examples);
        None picks ``raw`` for points (``example_shape`` of length 1) and ``inception`` for images.
      example_shape: the shape of one example, e.g. (H, W, C) or (D,).
      weights: a weights file instead of the default cache (inception and domain).
      resize: the Inception resize convention, ``tf1`` or ``pytorch_fid`` (see :mod:`gm_jax.metrics.inception`).
      domain_dataset: the dataset whose classifier gives ``domain`` features.
    """
    kind = kind or ("raw" if len(example_shape) == 1 else "inception")
    if kind == "raw":
        return extract.raw_extractor()
    if kind == "inception":
        return extract.inception_extractor(weights, resize)
    if kind == "domain":
        if not domain_dataset:
            raise GMJaxError("--features domain needs the classifier's dataset: --domain-dataset NAME (or a dataset "
                             "as --real, or a run as --fake)")
        return domain_extractor(domain_dataset, weights)
    raise GMJaxError(f"unknown --features '{kind}'; use {', '.join(FEATURES[:-1])} or {FEATURES[-1]}")


def model_features(extractor: extract.FeatureExtractor, samples: ModelSamples, *, num: int, key,
                   batch_size: int = 200, mesh=None, keys: Sequence[str] | None = None,
                   progress: bool = False) -> dict[str, np.ndarray]:
    """Features of ``num`` samples of a model, drawn inside the extraction step
    (:func:`gm_jax.metrics.extract.sampler_features`: batch i uses ``fold_in(key, i)``, then one fold per device).

    Returns: {output name: float32 [num, D]} for ``keys`` (default: the extractor's features and logits).
    """
    samples.check()
    model, kw = samples.model, dict(samples.sample_kwargs)
    levels = samples.spec.num_levels if samples.spec.kind == "image" else None

    def sample_fn(variables, k, n):
        return extract.to_unit_interval(model.sample(variables, k, n, **kw), levels)

    return extract.sampler_features(extractor, sample_fn, samples.variables, key, num, batch_size, mesh, keys,
                                    progress=progress)


def evaluate_sample_quality(metrics: str | Sequence[str], *, fake: str | extract.RowSource | ModelSamples,
                            real: str | extract.RowSource | None = None,
                            features: str | extract.FeatureExtractor | None = None,
                            weights: str | None = None, resize: str = "tf1", domain_dataset: str | None = None,
                            num: int | None = None, batch_size: int = 200, key=None, data_dir: str | None = None,
                            save_real_stats: str | None = None, mesh=None, progress: bool = False) -> dict:
    """Sample-quality metrics of generated examples against real ones, from inputs to numbers.

    Args:
      metrics: names among ``fid``, ``is``, ``kid``, ``prdc`` (a list or ``"fid,kid"``); ``nll`` is ignored.
      fake: the generated side: :class:`ModelSamples`, a RowSource, or its text form (:func:`row_source`).
      real: the real side: a RowSource, its text form, or an ``.npz`` of FID statistics (:func:`read_fid_stats`;
        serves FID only). KID, PRDC and FID without statistics need real examples.
      features, weights, resize, domain_dataset: the feature network (:func:`feature_extractor`), or
        ``features`` a :class:`~gm_jax.metrics.extract.FeatureExtractor` of your own. With
        ``features="domain"`` and no ``domain_dataset``, the model's dataset (``fake`` a model) or the
        dataset named by ``real`` is used.
      num: examples per side (default: all; a model's samples: as many as the real examples, else
        :data:`DEFAULT_NUM_SAMPLES`, at most :data:`MAX_NUM_SAMPLES`).
      batch_size: examples per device step (padded to a multiple of the devices).
      key: PRNG key of the model's samples and of KID's subsets (default ``jax.random.key(0)``).
      data_dir: where named datasets are prepared (:func:`gm_jax.data.load_dataset`).
      save_real_stats: also write ``mu``, ``sigma`` of the real features to this ``.npz`` (reusable as ``real``);
        nothing is written when the real side is not examples.
      mesh: the device mesh (default :func:`gm_jax.parallel.make_mesh`).
      progress: progress bars on stderr while features are computed.
    Returns: a flat dict: ``features`` (the network's name), ``num_fake``, ``num_real`` (None without real
      examples), ``resize`` (Inception only), then the metrics of :func:`gm_jax.metrics.suite.sample_quality`
      (fid; is_mean, is_std; kid_mean, kid_std; precision, recall, density, coverage).
    Raises: GMJaxError for unknown names, missing inputs or an unsuitable model, before any features are made.
    """
    metrics = parse_metrics(metrics) if isinstance(metrics, str) else parse_metrics(",".join(metrics))
    metrics = tuple(m for m in metrics if m != "nll")
    if num is not None and num < 1:
        raise GMJaxError(f"--num must be >= 1, got {num}")
    mesh = mesh or parallel.make_mesh()
    key = jax.random.key(0) if key is None else key

    real_stats = read_fid_stats(real) if isinstance(real, str) and real else None
    real_source = None
    if real and real_stats is None:
        real_source = row_source(real, data_dir=data_dir, what="--real") if isinstance(real, str) else real
    check_real_given(metrics, real_source is not None, real_stats is not None)
    model = fake if isinstance(fake, ModelSamples) else None
    if model is not None:
        model.check()  # before any features are computed
        fake_source = None
    else:
        fake_source = row_source(fake, data_dir=data_dir, what="--fake") if isinstance(fake, str) else fake
    if domain_dataset is None and features == "domain":
        if model is not None:
            domain_dataset = model.spec.name
        elif isinstance(real, str) and real and not os.path.exists(real):
            domain_dataset = real.partition(":")[0]
    example_shape = tuple(model.spec.shape) if model is not None else (fake_source or real_source).shape
    extractor = features if isinstance(features, extract.FeatureExtractor) else feature_extractor(
        features, example_shape=example_shape, weights=weights, resize=resize, domain_dataset=domain_dataset)
    fake_shape = tuple(model.spec.shape) if model is not None else tuple(fake_source.shape)
    if real_source is not None and extractor.name != "inception" and tuple(real_source.shape) != fake_shape:
        # the Inception resizes any image; raw and domain features compare examples of one shape
        raise GMJaxError(f"--fake examples have shape {fake_shape} and --real {tuple(real_source.shape)}; "
                         f"{extractor.name} features need one shape: resize or convert one side")
    if "is" in metrics and extractor.logits_key is None:  # before any features are computed
        raise GMJaxError("is needs class logits; use --features inception or domain")
    keys = tuple(k for k in (extractor.features_key, extractor.logits_key if "is" in metrics else None) if k)

    real_features = None
    if real_source is not None:
        real_features = extract.source_features(extractor, real_source, batch_size, mesh, keys, num=num,
                                                progress=progress)
        if save_real_stats and jax.process_index() == 0:  # one writer in a multi-process job
            save_stats(save_real_stats, *feature_stats(real_features[extractor.features_key]))
    if model is not None:
        n = num or min(len(real_features[extractor.features_key]) if real_features else DEFAULT_NUM_SAMPLES,
                       MAX_NUM_SAMPLES)
        fake_features = model_features(extractor, model, num=n, key=key, batch_size=batch_size, mesh=mesh, keys=keys,
                                       progress=progress)
    else:
        fake_features = extract.source_features(extractor, fake_source, batch_size, mesh, keys, num=num,
                                                progress=progress)
    out = {"features": extractor.name, "num_fake": len(fake_features[extractor.features_key]),
           "num_real": len(real_features[extractor.features_key]) if real_features else None}
    if extractor.name == "inception":
        out["resize"] = resize
    out.update(sample_quality(metrics, fake_features, real_features, features_key=extractor.features_key,
                              logits_key=extractor.logits_key, real_stats=real_stats, key=key))
    return out
