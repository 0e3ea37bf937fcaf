"""Evaluation during training, every ``eval_every`` steps: cheap held-out numbers logged against the step.

Each evaluation gives, on the first ``eval_examples`` test examples (the train split when there is no test
split), with the sampling (EMA) parameters:

- ``eval/<metric>``: the means of the model's own training loss and metrics (``eval/loss``; a GAN's
  ``eval/generator/loss``, ``eval/discriminator/loss``), for every model;
- ``eval/test_nll_nats``, ``eval/test_bits_per_dim``: the test likelihood (bound) of models with ``log_prob``, as
  the final evaluation computes it (a diffusion model's bound is an unbiased estimate over
  ``eval_timesteps`` sampled steps when that is set);
- optionally sample-quality metrics (``eval_sample_metrics``, e.g. ``fid,prdc``) of ``eval_num_samples``
  samples against the same real examples, whose features are computed once, at the start.

Samples drawn from one fixed key are saved per evaluation (``samples/step_NNNNNNN.png``), so the same noise
shows how the model changes.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from gm_jax.data.loading import Dataset
from gm_jax.errors import GMJaxError
from gm_jax.metrics import extract
from gm_jax.metrics.evaluate import feature_extractor
from gm_jax.metrics.likelihood import evaluate_log_likelihood
from gm_jax.metrics.suite import parse_metrics, sample_quality
from gm_jax.models.base import param_groups
from gm_jax.train.config import TrainConfig

__all__ = ["PeriodicEvaluator", "evaluation_samples_path"]


class PeriodicEvaluator:
    """``evaluator(variables, step) -> {"eval/NAME": float}``; everything that can fail (features, real
    data) is set up at construction, before training starts."""

    def __init__(self, model, dataset: Dataset, cfg: TrainConfig, mesh):
        self.model, self.dataset, self.cfg, self.mesh = model, dataset, cfg, mesh
        self.split = "test" if dataset.size("test") else "train"
        self.num = min(cfg.eval_examples, dataset.size(self.split))
        self.batch_size = min(cfg.eval_batch_size, self.num)
        rows = dataset.read(self.split, np.arange(self.num))
        # the last batch may be smaller (one more compilation): every one of the eval_examples counts
        self.batches = [{k: jnp.asarray(v[i:i + self.batch_size]) for k, v in rows.items()}
                        for i in range(0, self.num, self.batch_size)]
        self.key = jax.random.key(cfg.seed + 3)
        self._loss = jax.jit(self._group_losses)
        self.metrics = parse_metrics(cfg.eval_sample_metrics) if cfg.eval_sample_metrics else ()
        self.metrics = tuple(m for m in self.metrics if m != "nll")
        self.extractor = self.real = None
        if self.metrics:
            if dataset.spec.kind not in ("image", "points"):
                raise GMJaxError(f"eval_sample_metrics needs images or points; {dataset.spec.name} holds "
                                 f"{dataset.spec.kind}; set eval_sample_metrics=''")
            kind = cfg.eval_features
            if kind == "auto":
                kind = "raw" if dataset.spec.kind == "points" else "domain"
            self.extractor = feature_extractor(kind, example_shape=tuple(dataset.spec.shape),
                                               domain_dataset=dataset.spec.name)
            self.real = extract.source_features(self.extractor, extract.dataset_source(dataset, self.split),
                                                cfg.eval_batch_size, mesh, num=self.num)
            levels = dataset.spec.num_levels if dataset.spec.kind == "image" else None
            # one function object for every evaluation, so its compiled sampler is reused
            self._sample_fn = lambda v, k, n: extract.to_unit_interval(model.sample(v, k, n), levels)

    def _group_losses(self, variables, batch, key):
        out = {}
        for group, _ in param_groups(self.model):
            kw = {} if group is None else {"group": group}
            loss, metrics, _ = self.model.loss(variables, batch, key, **kw)
            prefix = "" if group is None else f"{group}/"
            out.update({f"{prefix}{k}": v for k, v in {"loss": loss, **metrics}.items()})
        return out

    def __call__(self, variables, step: int) -> dict:
        key = jax.random.fold_in(self.key, step)
        sums = {}
        for i, batch in enumerate(self.batches):
            size = len(next(iter(batch.values())))
            for k, v in jax.device_get(self._loss(variables, batch, jax.random.fold_in(key, i))).items():
                sums[k] = sums.get(k, 0.0) + float(v) * size  # a batch mean, weighted by its examples
        out = {f"eval/{k}": v / self.num for k, v in sums.items()}
        if self.model.has_log_prob:
            nll = evaluate_log_likelihood(self.model, variables, self.dataset, jax.random.fold_in(key, len(self.batches)), self.mesh,
                                          self.cfg.eval_batch_size, self.num, split=self.split, progress=False)
            out.update({"eval/test_nll_nats": nll["test_nll_nats"], "eval/test_bits_per_dim": nll["test_bits_per_dim"]})
        if self.metrics:
            fake = extract.sampler_features(self.extractor, self._sample_fn, variables, self.key,
                                            self.cfg.eval_num_samples, self.cfg.eval_batch_size, self.mesh)
            quality = sample_quality(self.metrics, fake, self.real, features_key=self.extractor.features_key,
                                     logits_key=self.extractor.logits_key, key=self.key)
            out.update({f"eval/{k}": float(v) for k, v in quality.items()})
        return out


def evaluation_samples_path(workdir: str, step: int, filename: str) -> str:
    """``workdir/samples/step_NNNNNNN<ext>``: the samples of the evaluation at ``step``."""
    return os.path.join(workdir, "samples", f"step_{step:07d}{os.path.splitext(filename)[1]}")
