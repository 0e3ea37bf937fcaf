"""Domain feature network: a small classifier trained on a labelled image dataset, for FID/KID/PRDC.

Inception-v3 features are meaningless on 8x8 digits and questionable on MNIST, so the feature-space metrics
there use the penultimate layer of a classifier trained on the domain itself (the LeNet features of Lucic et
al. 2018, "Are GANs Created Equal?", and the trained-classifier features of Binkowski et al. 2018,
"Demystifying MMD GANs"). The network is :class:`gm_jax.nets.classifier.ConvClassifier` (3x3 convs, global
average pool, a 128-wide ReLU feature layer, logits); its weights are produced by ``gm-jax domain train``
(:func:`train_domain_classifier` + :func:`save_domain_classifier`) and cached under
:func:`gm_jax.metrics._features.default_weights_dir`, never shipped as a binary.

- :class:`DomainClassifier`: frozen description (input spec + network config); ``init``, ``apply``.
- :func:`domain_apply`: ``(variables, images [N,H,W,C] in [0,1]) -> {"features": [N,F], "logits": [N,K]}``,
  pure and jittable; the config is read from the parameter shapes when no classifier is given.
- :func:`domain_features`: batched features of pixels or [0,1] images (numpy out), via gm_jax.metrics.extract.
- :func:`domain_extractor`: the classifier as a :class:`gm_jax.metrics.extract.FeatureExtractor` (what
  ``gm-jax evaluate --features domain`` runs).
- :func:`train_domain_classifier`, :func:`save_domain_classifier`, :func:`load_domain_classifier`,
  :func:`domain_weights_path`.

Features do not depend on the batch (no BatchNorm, no dropout), so features of a batch of 1 equal those of
the full set up to float rounding, and streaming statistics over any batching are the same.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm
from flax import traverse_util

from gm_jax.errors import GMJaxError
from gm_jax.metrics._features import default_weights_dir, read_weights_file, save_weights_file
from gm_jax.metrics.extract import FeatureExtractor, array_source, source_features, to_unit_interval
from gm_jax.nets.classifier import ConvClassifier

__all__ = ["DomainClassifier", "domain_apply", "domain_features", "domain_extractor", "train_domain_classifier",
           "save_domain_classifier", "load_domain_classifier", "domain_weights_path"]

_FORMAT = "gm_jax.domain_classifier/1"
# Measured `gm-jax domain train` wall time (default 2000 steps, 2 busy CPU cores), quoted in the
# missing-file message; larger images cost several times more per step (minutes on a CPU).
_TRAIN_SECONDS = {"digits": 30}


@dataclasses.dataclass(frozen=True)
class DomainClassifier:
    """What a domain feature network is: the images it takes and the shape of the network.

    Attributes:
      dataset: the name of the dataset it was (or will be) trained on, e.g. ``digits``.
      image_shape: (H, W, C) of one input image.
      num_levels: pixel levels of the dataset (17 for digits, 256 for 8-bit); pixels map to
        ``pixel / (num_levels - 1)`` in [0, 1].
      num_classes: number of labels K (the logits' width).
      widths: channels of the 3x3 convs; feature_dim: width F of the penultimate (feature) layer;
      pool_above: a 2x2 max-pool follows a conv while the map is larger than this on both sides.

    ``apply(variables, images)`` is :func:`domain_apply` with this config; it is pure and jittable (the
    dataclass is hashable, so it can also be a static argument).
    """

    dataset: str
    image_shape: tuple[int, int, int]
    num_levels: int
    num_classes: int
    widths: tuple[int, ...] = (16, 32, 32)
    feature_dim: int = 128
    pool_above: int = 4

    @classmethod
    def for_spec(cls, spec, **config) -> "DomainClassifier":
        """The classifier for a labelled image :class:`~gm_jax.data.loading.DataSpec` (raises GMJaxError otherwise)."""
        _check_spec(spec)
        if "widths" in config:
            config["widths"] = tuple(int(w) for w in config["widths"])
        return cls(dataset=spec.name, image_shape=tuple(int(s) for s in spec.shape), num_levels=int(spec.num_levels),
                   num_classes=int(spec.num_classes), **config)

    @property
    def module(self) -> ConvClassifier:
        return ConvClassifier(num_classes=self.num_classes, widths=tuple(self.widths), feature_dim=self.feature_dim,
                              pool_above=self.pool_above)

    def init(self, key) -> dict:
        """Random variables ``{"params": ...}`` (flax default initialisers)."""
        # One jitted program: eager flax init compiles every initializer op separately (~9 s on a busy CPU).
        return jax.jit(self.module.init)(key, jnp.zeros((1, *self.image_shape), jnp.float32))

    def apply(self, variables, images) -> dict:
        """``images`` [N, H, W, C] float in [0, 1] -> ``{"features": [N, F], "logits": [N, K]}`` (float32)."""
        return domain_apply(variables, images, classifier=self)

    def to_unit(self, pixels):
        """Integer pixels in [0, num_levels - 1] -> float32 images in [0, 1] (works on numpy and JAX arrays)."""
        return to_unit_interval(jnp.asarray(pixels), self.num_levels)

    def config(self) -> dict:
        return {"widths": list(self.widths), "feature_dim": self.feature_dim, "pool_above": self.pool_above}


def _check_spec(spec) -> None:
    if spec.kind != "image":
        raise GMJaxError(f"domain features need an image dataset, but '{spec.name}' holds {spec.kind}; "
                         "train the domain classifier on a labelled image dataset such as digits, mnist or cifar10")
    if not spec.num_classes:
        raise GMJaxError(f"dataset '{spec.name}' has no labels, so no domain classifier can be trained on it; "
                         "use a labelled image dataset such as digits, mnist or cifar10")
    if len(spec.shape) != 3 or not spec.num_levels or spec.num_levels < 2:
        raise GMJaxError(f"dataset '{spec.name}' has image shape {spec.shape} and {spec.num_levels} pixel levels; "
                         "the domain classifier needs (H, W, C) images with at least 2 levels")


def _classifier_from_params(params) -> DomainClassifier:
    """Read widths, feature width and class count from the parameter shapes (``conv_i``/``features``/``logits``)."""
    try:
        widths, i = [], 0
        while f"conv_{i}" in params:
            widths.append(int(params[f"conv_{i}"]["kernel"].shape[-1]))
            i += 1
        in_channels = int(params["conv_0"]["kernel"].shape[-2])
        feature_dim = int(params["features"]["kernel"].shape[-1])
        num_classes = int(params["logits"]["kernel"].shape[-1])
    except (KeyError, TypeError, IndexError, AttributeError):
        raise GMJaxError("variables are not a domain classifier's (expected params conv_0.., features, logits); "
                         "create them with DomainClassifier.init, train_domain_classifier or "
                         "load_domain_classifier") from None
    # Only the channel count of the input is known from the shapes; H and W are checked by the caller.
    return DomainClassifier(dataset="", image_shape=(0, 0, in_channels), num_levels=2, num_classes=num_classes,
                            widths=tuple(widths), feature_dim=feature_dim)


def domain_apply(variables, images, classifier: DomainClassifier | None = None) -> dict:
    """Features and logits of the domain classifier. Pure and jittable.

    Args:
      variables: ``{"params": ...}`` of a :class:`DomainClassifier` (from ``init``, training or loading).
      images: [N, H, W, C] float, pixel / (num_levels - 1), i.e. in [0, 1].
      classifier: the config; when None it is read from the parameter shapes (conv widths, feature and class
        counts) with the default ``pool_above``, so weights produced by :func:`train_domain_classifier` with
        default settings need nothing else.
    Returns:
      ``{"features": [N, F] float32 (penultimate layer, after its ReLU), "logits": [N, K] float32}``.
    Raises:
      GMJaxError (at trace time): images that are not float [N, H, W, C] of the classifier's shape.
    """
    params = variables.get("params") if isinstance(variables, dict) else None
    if params is None:
        raise GMJaxError("variables must be a dict {'params': ...}; create them with DomainClassifier.init, "
                         "train_domain_classifier or load_domain_classifier")
    inferred = classifier is None
    if inferred:
        classifier = _classifier_from_params(params)
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise GMJaxError(f"domain_apply takes float images in [0, 1], got dtype {images.dtype}; convert pixels "
                         "with classifier.to_unit(pixels) (pixel / (num_levels - 1)) or use domain_features")
    expected = classifier.image_shape
    ok = images.ndim == 4 and (images.shape[-1] == expected[-1] if inferred else tuple(images.shape[1:]) == expected)
    if not ok:
        want = f"[N, H, W, {expected[-1]}]" if inferred else f"[N, {', '.join(map(str, expected))}]"
        raise GMJaxError(f"domain classifier{' for ' + classifier.dataset if classifier.dataset else ''} takes "
                         f"images {want}, got shape {tuple(images.shape)}; pass images of the dataset it was "
                         "trained on (NHWC)")
    return classifier.module.apply(variables, images)


def domain_features(classifier: DomainClassifier, variables, images, batch_size: int = 500,
                    with_logits: bool = False):
    """Domain features of many images, in batches on the device mesh, returned as numpy.

    A thin front to :func:`gm_jax.metrics.extract.source_features` (which also streams from files, datasets
    and samplers).

    Args:
      classifier, variables: from :func:`load_domain_classifier` or :func:`train_domain_classifier`.
      images: [N, H, W, C], either integer pixels in [0, num_levels - 1] (the dataset / sampler layout) or
        floats already in [0, 1].
      batch_size: images per device call.
      with_logits: also return the logits.
    Returns: features [N, F] float32 numpy, or ``(features, logits [N, K])`` with ``with_logits``.
    """
    images = np.asarray(jax.device_get(images))
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(classifier.image_shape):
        raise GMJaxError(f"domain features of '{classifier.dataset}' need images [N, "
                         f"{', '.join(map(str, classifier.image_shape))}], got shape {images.shape}; "
                         "pass samples in the dataset's layout")
    network = FeatureExtractor("domain", classifier.apply, variables, "features", "logits")
    out = source_features(network, array_source(images, classifier.num_levels), batch_size)
    return (out["features"], out["logits"]) if with_logits else out["features"]


def domain_extractor(dataset_name: str, path=None) -> FeatureExtractor:
    """The :class:`~gm_jax.metrics.extract.FeatureExtractor` of the classifier trained on ``dataset_name``
    (``gm-jax domain train``): outputs ``features`` [B, F] (FID, KID, PRDC) and ``logits`` [B, K] (IS).

    Args:
      dataset_name: e.g. ``digits``; names the default weights file (:func:`domain_weights_path`).
      path: an explicit weights file instead.
    Raises: GMJaxError when the weights are missing (with the command that creates them) or unreadable.
    """
    classifier, variables, _ = load_domain_classifier(dataset_name, path)
    return FeatureExtractor("domain", classifier.apply, variables, "features", "logits")


def train_domain_classifier(dataset, steps: int = 2000, batch_size: int = 128, learning_rate: float = 1e-3,
                            seed: int = 0, widths: Sequence[int] = (16, 32, 32), feature_dim: int = 128, *,
                            progress: bool = False):
    """Train the domain classifier on the ``train`` split of a labelled image dataset.

    Softmax cross-entropy, Adam (``optax.adam``), batches from :func:`gm_jax.data.loading.batch_indices`
    (epoch-wise shuffling, a pure function of (seed, step)), no augmentation. The training images live on the
    device as uint8 for the whole run; each step gathers its batch there.

    The steps run as a Python loop over one jitted step rather than one ``lax.scan``: on XLA:CPU convolutions
    inside a while-loop body miss the fast (Eigen) kernels -- jax-ml/jax#12868, measured here at 25x slower per
    step -- and per-step dispatch is negligible next to a step's convolutions.

    Args:
      dataset: a :class:`gm_jax.data.loading.Dataset` with an ``image`` feature and labels (``load_dataset``).
      steps, batch_size, learning_rate, seed: the optimisation; ``seed`` fixes the init and the batch order.
      widths, feature_dim: the network (see :class:`DomainClassifier`).
      progress: a progress bar on stderr.
    Returns:
      ``(variables, info)``: ``variables = {"params": ...}``; ``info`` is a JSON-able dict with ``dataset``,
      ``test_accuracy`` (on the ``test`` split, else ``validation``, else None), ``test_split``, ``steps``,
      ``train_seconds``, ``final_loss`` (mean of the last 50 steps), ``spec`` (the DataSpec fields) and
      ``config`` (network and optimisation settings).
    Raises:
      GMJaxError: an unlabelled or non-image dataset, no ``train`` split, or bad settings.
    """
    spec = dataset.spec
    classifier = DomainClassifier.for_spec(spec, widths=widths, feature_dim=int(feature_dim))
    if "train" not in dataset.splits:
        raise GMJaxError(f"dataset '{spec.name}' has no 'train' split (has {', '.join(dataset.splits)}); "
                         "the domain classifier trains on 'train'")
    if int(steps) < 1 or int(batch_size) < 1 or not float(learning_rate) > 0:
        raise GMJaxError(f"steps and batch_size must be >= 1 and learning_rate > 0, got steps={steps}, "
                         f"batch_size={batch_size}, learning_rate={learning_rate}")
    steps, batch_size, learning_rate, seed = int(steps), int(batch_size), float(learning_rate), int(seed)
    n = dataset.size("train")
    from gm_jax.data.loading import batch_indices

    batch_indices(seed, 0, n, batch_size)  # validates batch_size against the split size (GMJaxError)
    start = time.perf_counter()
    train = dataset.read("train")
    pixels = jnp.asarray(train["image"])  # integer pixels stay compact on the device
    labels = jnp.asarray(train["label"], jnp.int32)
    scale = 1.0 / (classifier.num_levels - 1)
    opt = optax.adam(learning_rate)
    variables = classifier.init(jax.random.key(seed))
    params = variables["params"]
    opt_state = opt.init(params)

    def loss_fn(p, x_all, y_all, idx):
        x = x_all[idx].astype(jnp.float32) * scale
        logits = classifier.module.apply({"params": p}, x)["logits"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y_all[idx]).mean()

    @jax.jit  # the data are arguments, not closed-over constants baked into the executable
    def step(p, s, x_all, y_all, idx):
        loss, grads = jax.value_and_grad(loss_fn)(p, x_all, y_all, idx)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    losses = []
    for t in tqdm(range(steps), desc=f"domain classifier on {spec.name}", disable=not progress, leave=False,
                  dynamic_ncols=True):
        params, opt_state, loss = step(params, opt_state, pixels, labels, batch_indices(seed, t, n, batch_size))
        if t >= steps - 50:
            losses.append(loss)
    final_loss = float(jnp.mean(jnp.stack(losses)))
    variables = {"params": jax.device_get(params)}
    train_seconds = time.perf_counter() - start

    test_split = next((s for s in ("test", "validation") if s in dataset.splits), None)
    accuracy = None
    if test_split is not None:
        test = dataset.read(test_split)
        logits = domain_features(classifier, variables, test["image"], with_logits=True)[1]
        accuracy = float(np.mean(np.argmax(logits, axis=1) == test["label"]))
    info = {
        "format": _FORMAT,
        "dataset": spec.name,
        "test_accuracy": accuracy,
        "test_split": test_split,
        "steps": steps,
        "train_seconds": round(train_seconds, 2),
        "final_loss": final_loss,
        "spec": {"name": spec.name, "kind": spec.kind, "shape": list(classifier.image_shape),
                 "num_levels": classifier.num_levels, "num_classes": classifier.num_classes},
        "config": {**classifier.config(), "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
                   "optimizer": "adam"},
    }
    return variables, info


def domain_weights_path(dataset_name: str, weights_dir: str | None = None) -> str:
    """``<weights_dir or default_weights_dir()>/domain_<name with '/' -> '_'>.npz``."""
    return os.path.join(weights_dir or default_weights_dir(), f"domain_{dataset_name.replace('/', '_')}.npz")


def save_domain_classifier(path, variables, info: dict) -> str:
    """Write variables and info to ``path`` atomically (:func:`gm_jax.metrics._features.save_weights_file`:
    flat "/"-joined parameter names plus ``__metadata__``, the JSON ``info``); returns the path."""
    for key in ("spec", "config"):
        if not isinstance(info.get(key), dict):
            raise GMJaxError(f"info must contain the '{key}' dict produced by train_domain_classifier")
    return save_weights_file(os.fspath(path), variables, {"format": _FORMAT, **info})


def load_domain_classifier(dataset_name: str, path=None):
    """Read a cached domain classifier.

    Args:
      dataset_name: e.g. ``digits``; names the default file :func:`domain_weights_path`.
      path: an explicit file instead of the default.
    Returns: ``(classifier: DomainClassifier, variables, info)``.
    Raises:
      GMJaxError: the file is missing (with the command that creates it), unreadable, or not a domain classifier.
    """
    path = os.fspath(path) if path is not None else domain_weights_path(dataset_name)
    if not os.path.isfile(path):
        secs = _TRAIN_SECONDS.get(dataset_name)
        cost = f"about {secs} s on a CPU" if secs else "a few minutes on a CPU"
        raise GMJaxError(f"no domain classifier for {dataset_name} at {path}; run "
                         f"`gm-jax domain train --dataset {dataset_name}` ({cost})")
    flat, info = read_weights_file(path, f"recreate it with `gm-jax domain train --dataset {dataset_name}`")
    if info.get("format") != _FORMAT:
        raise GMJaxError(f"'{path}' has format {info.get('format')!r}, expected {_FORMAT!r}; recreate it with "
                         f"`gm-jax domain train --dataset {dataset_name}`")
    spec, config = info["spec"], info["config"]
    classifier = DomainClassifier(dataset=info["dataset"], image_shape=tuple(spec["shape"]),
                                  num_levels=int(spec["num_levels"]), num_classes=int(spec["num_classes"]),
                                  widths=tuple(config["widths"]), feature_dim=int(config["feature_dim"]),
                                  pool_above=int(config["pool_above"]))
    variables = traverse_util.unflatten_dict(flat, sep="/")
    if _classifier_from_params(variables.get("params", {})).widths != classifier.widths:
        raise GMJaxError(f"'{path}' holds parameters that do not match its metadata; recreate it with "
                         f"`gm-jax domain train --dataset {dataset_name}`")
    return classifier, variables, info
