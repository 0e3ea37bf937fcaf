"""The measurements of one trained model: likelihood and its cost, sampling speed, sample quality,
class coverage and memorisation, each a function of the model, its variables and the evaluator's features.

Timings are wall clock after compilation: one call compiles (and is discarded), then the fastest of
``repeats`` calls is kept, with the result fetched to the host (``block_until_ready``).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.metrics import extract
from gm_jax.metrics.coverage import class_coverage
from gm_jax.metrics.memorization import data_copying_test
from gm_jax.metrics.suite import sample_quality
from gm_jax.properties.families import Family, network_evaluations

__all__ = ["best_time", "likelihood_cost", "sampling_speed", "draw_samples", "quality", "sample_measurements",
           "reference_measurements"]

QUALITY_METRICS = ("fid", "prdc")


def best_time(fn, *args, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn(*args)``, after one call that compiles."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def likelihood_cost(model, variables, x, *, repeats: int) -> float:
    """Milliseconds per example of ``model.log_prob`` on the batch ``x`` [B, ...] (compiled)."""
    fn = jax.jit(lambda v, x: model.log_prob(v, x, jax.random.key(0)))
    return 1e3 * best_time(fn, variables, jnp.asarray(x), repeats=repeats) / len(x)


def sampling_speed(fam: Family, model, variables, *, batch: int, repeats: int) -> dict:
    """{sampler label: {"samples_per_s", "network_evaluations", "adaptive"}} for each of the family's samplers,
    at ``batch`` samples per call (an adaptive solver's evaluations are counted on one draw of that batch)."""
    out = {}
    for label, kw in fam.samplers.items():
        fn = jax.jit(lambda v, k, kw=kw: model.sample(v, k, batch, **kw))
        seconds = best_time(fn, variables, jax.random.key(1), repeats=repeats)
        evaluations = network_evaluations(fam.name, model, kw)
        adaptive = evaluations is None and hasattr(model, "adaptive_network_evaluations")
        if adaptive:  # an adaptive solver: counted on this draw
            evaluations = model.adaptive_network_evaluations(variables, jax.random.key(1), batch, **kw)
        out[label] = {"samples_per_s": batch / seconds, "network_evaluations": evaluations, "adaptive": adaptive}
    return out


def draw_samples(model, variables, kwargs: dict, num: int, key, *, batch: int, extractor) -> dict:
    """``num`` samples in data space and their features: {"samples": [num, ...] as drawn, output name of the
    extractor: [num, D]} (batch i drawn with ``fold_in(key, i)``)."""
    levels = model.spec.num_levels if model.spec.kind == "image" else None

    def apply(ev, x):  # the extractor's outputs of the unit-interval images, and the samples themselves
        return {**extractor.apply(ev, extract.to_unit_interval(x, levels)), "samples": x}

    both = extract.FeatureExtractor(extractor.name, apply, extractor.variables, extractor.features_key,
                                    extractor.logits_key)
    return extract.sampler_features(both, lambda v, k, n: model.sample(v, k, n, **kwargs), variables, key, num,
                                    batch, keys=(extractor.features_key, extractor.logits_key, "samples"))


def quality(fake: dict, real: dict, extractor) -> dict:
    """FID, precision, recall, density and coverage of ``fake`` features against ``real`` ones."""
    return sample_quality(QUALITY_METRICS, fake, real, features_key=extractor.features_key)


def _quality(fake: dict, real: dict, extractor, num_classes: int) -> dict:
    out = quality(fake, real, extractor)
    classes = class_coverage(np.argmax(fake[extractor.logits_key], axis=-1), num_classes)
    out.update({"class_kl": classes["class_kl"], "classes_under_half": classes["classes_under_half"],
                "class_histogram": [float(p) for p in classes["histogram"]]})
    return out


def _memorization(fake: dict, real_test: dict, real_train: dict, extractor, *, cells: int, key) -> dict:
    k = extractor.features_key
    result = data_copying_test(real_train[k], real_test[k], fake[k], num_cells=cells, key=key)
    return {"data_copying_ct": result["c_t"], "data_copying_cells": result["cells_used"]}


def sample_measurements(fake: dict, real_test: dict, real_train: dict, extractor, *, num_classes: int,
                        cells: int, key) -> dict:
    """Sample quality (FID, precision, recall, density, coverage against the test split), class coverage
    of the classifier's predictions and the data-copying statistic C_T against the training split."""
    return {**_quality(fake, real_test, extractor, num_classes),
            **_memorization(fake, real_test, real_train, extractor, cells=cells, key=key)}


def reference_measurements(copies: dict, real_test: dict, real_train: dict, extractor, *, num_classes: int,
                           cells: int, key) -> dict:
    """The same numbers with training images (``copies``, features of some of the training split) as the
    "generated" set: a model that memorised its data perfectly (what copying looks like on this protocol)."""
    return sample_measurements(copies, real_test, real_train, extractor, num_classes=num_classes,
                               cells=cells, key=key)
