"""The protocol of the property table: every family trained by the same trainer on the same split, then
measured by the same evaluator (:mod:`gm_jax.properties.measure`), seed by seed, into ``properties.json``.

Resumable: a finished (family, seed) is never redone, and a run directory whose training stopped resumes
from its checkpoint; a row or a run directory made with other settings than the config's is refused, not
reused. ``properties.json`` is rewritten (atomically) after every run, so an interrupted table keeps what it
measured.

Layout: ``WORKDIR/<dataset>/<family>_s<seed>/`` are ordinary ``gm-jax train`` run directories (``gm-jax
sample|evaluate|compare`` read them); ``OUT/properties.json`` holds every raw number, ``OUT/domain_<dataset>.npz``
the evaluator's classifier, ``OUT/figure_data/`` the samples, strips and points the figures draw.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time

import jax
import numpy as np

from gm_jax.data import load_dataset, toy2d
from gm_jax.errors import GMJaxError
from gm_jax.metrics import domain, extract
from gm_jax.metrics.coverage import mode_coverage
from gm_jax.properties import latents, measure
from gm_jax.properties.config import PropertiesConfig
from gm_jax.properties.families import FAMILIES, family
from gm_jax.properties.figures import new_figure_data_dir
from gm_jax.train import eval_variables, restore_state
from gm_jax.train.loop import TrainingDiverged, write_json

__all__ = ["RESULTS_FILE", "run_properties", "train_family", "read_results"]

RESULTS_FILE = "properties.json"
SETS_FILE = "property_sets.json"  # in each run directory: the settings it was trained with


def _say(message: str) -> None:
    print(f"properties: {message}", file=sys.stderr, flush=True)


def read_results(out: str) -> dict:
    path = os.path.join(out, RESULTS_FILE)
    if not os.path.lexists(path):
        return {}
    if not os.path.isfile(path):
        raise GMJaxError(f"{path} is not a file; move it away or use another --out")
    try:
        with open(path) as f:
            results = json.load(f)
        problem = _results_problem(results)
    except (ValueError, UnicodeDecodeError):
        problem = "not JSON"
    except OSError as e:
        raise GMJaxError(f"{path} cannot be read ({e.strerror}); fix its permissions or use another --out") from None
    if problem:
        raise GMJaxError(f"{path} is not a property-table results file ({problem}); move it away and run again")
    return results


def _results_problem(results) -> str | None:
    """What makes ``results`` unreadable as properties.json (its structure; the numbers are the writer's), or None."""
    if not isinstance(results, dict) or not {"config", "evaluator", "reference"} <= set(results):
        return "it lacks config, evaluator or reference"
    if not isinstance(results["config"], dict) or not isinstance(results["config"].get("name"), str):
        return "config has no name"
    for group, needs in (("runs", ("family", "seed", "diverged")), ("points", ("family", "dataset", "seed", "diverged"))):
        rows = results.get(group, {})
        if not isinstance(rows, dict):
            return f"{group} is not a mapping"
        for tag, row in rows.items():
            if not isinstance(row, dict) or not set(needs) <= set(row):
                return f"{group} row {tag} lacks {', '.join(needs)}"
            if row["family"] not in FAMILIES:
                return f"{group} row {tag} names an unknown family '{row['family']}'"
            if group == "runs" and not row["diverged"] and not isinstance(row.get("sampling"), dict):
                return f"runs row {tag} has no sampling measurements"
    return None


def train_family(train_command, name: str, dataset: str, sets: dict, seed: int, workdir: str) -> dict:
    """Trains ``name`` with ``train_command(argv)`` (``gm-jax train``'s argument list: the same code path and
    run directory as the CLI) unless ``workdir`` already holds the finished run; returns its results.json."""
    argv = ["train", name, "--dataset", dataset, "--workdir", workdir, "--no-progress", "--set", f"seed={seed}"]
    for field, value in sets.items():
        argv += ["--set", f"{field}={value}"]
    check_run_dir(workdir, sets)
    results_path, sets_path = os.path.join(workdir, "results.json"), os.path.join(workdir, SETS_FILE)
    if os.path.isfile(results_path):
        with open(results_path) as f:
            return json.load(f)
    with contextlib.redirect_stdout(io.StringIO()):  # the CLI's result lines; the numbers are read back below
        train_command(argv)
    write_json(sets_path, sets)
    with open(results_path) as f:
        return json.load(f)


def check_run_dir(workdir: str, sets: dict) -> None:
    """Raises one line unless ``workdir`` is absent, or was trained by the table with ``sets``: a run made
    with other settings, or not by the table, is refused rather than reused."""
    results_path, sets_path = os.path.join(workdir, "results.json"), os.path.join(workdir, SETS_FILE)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise GMJaxError(f"{workdir} is a file, not a run directory; remove it or use another --workdir")
    if os.path.isfile(sets_path):
        try:
            with open(sets_path) as f:
                trained_with = json.load(f)
        except (ValueError, UnicodeDecodeError):
            raise GMJaxError(f"{sets_path} is unreadable; remove {workdir} or use another --workdir") from None
        if trained_with != sets:
            raise GMJaxError(f"{workdir} was trained with other settings ({_settings(trained_with)}) than the "
                             f"config's ({_settings(sets)}); remove it or use another --workdir")
    elif os.path.isfile(results_path):  # a finished run the table did not train: its settings are unknown
        raise GMJaxError(f"{workdir} holds a run the property table did not train (no {SETS_FILE}); remove it or "
                         f"use another --workdir")


def _settings(sets: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(sets.items())) or "the model's defaults"


def check_rows(out: str, results: dict, cfg: PropertiesConfig) -> None:
    """A finished row of a family this config measures is reused only if it was measured with the config's
    settings (a row never mixes into a table it was not measured for); rows of families left out of the
    command are kept as they are."""
    for group, families, sets in (("runs", cfg.families, cfg.sets), ("points", cfg.point_families, cfg.point_sets)):
        for tag, row in results.get(group, {}).items():
            wanted = sets.get(row["family"], {})
            if row["family"] in families and "sets" in row and row["sets"] != wanted:
                raise GMJaxError(f"{os.path.join(out, RESULTS_FILE)}: {tag} was measured with other settings "
                                 f"({_settings(row['sets'])}) than the config's ({_settings(wanted)}); use another "
                                 f"--out")


def _wall_seconds(workdir: str) -> float | None:
    """The run's training wall clock (continued across resumes): the last ``wall_s`` of metrics.jsonl."""
    path = os.path.join(workdir, "metrics.jsonl")
    last = None
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                last = json.loads(line).get("wall_s", last)
    return last


def _restore(workdir: str, data_dir):
    from gm_jax.cli._common import load_run

    _, model, dataset, train_cfg = load_run(workdir, data_dir)
    return model, dataset, eval_variables(restore_state(model, dataset, train_cfg, workdir))


def _classifier(cfg: PropertiesConfig, dataset, out: str) -> tuple:
    """The evaluator's domain classifier, trained once into ``out`` (its test accuracy recorded)."""
    path = os.path.join(out, f"domain_{dataset.spec.name.replace('/', '_')}.npz")
    if not os.path.isfile(path):
        _say(f"training the evaluator's classifier on {dataset.spec.name} ({cfg.classifier_steps} steps)")
        variables, info = domain.train_domain_classifier(dataset, steps=cfg.classifier_steps, seed=0)
        domain.save_domain_classifier(path, variables, info)
    _, _, info = domain.load_domain_classifier(dataset.spec.name, path)
    return domain.domain_extractor(dataset.spec.name, path), info


def _image_run(cfg: PropertiesConfig, train_command, name: str, seed: int, run_dir: str, data_dir,
               evaluator: dict, out: str) -> dict:
    fam = family(name)
    try:
        results = train_family(train_command, name, cfg.dataset, cfg.sets.get(name, {}), seed, run_dir)
    except TrainingDiverged as e:  # a non-finite loss is a result: the table counts it
        return {"family": name, "seed": seed, "diverged": True, "error": str(e), "sets": cfg.sets.get(name, {})}
    t0 = time.perf_counter()
    model, dataset, variables = _restore(run_dir, data_dir)
    figures = new_figure_data_dir(out, cfg.dataset, name, seed)
    row = {"family": name, "seed": seed, "diverged": False, "run_dir": run_dir, "sets": cfg.sets.get(name, {}),
           "figure_data": figures, "likelihood": fam.likelihood,
           "steps": results["steps"], "num_params": results["num_params"], "train_seconds": _wall_seconds(run_dir),
           "test_nll_nats": results.get("test_nll_nats"), "test_bits_per_dim": results.get("test_bits_per_dim")}
    if model.has_log_prob:
        x = evaluator["test_batch"]
        row["likelihood_ms_per_example"] = measure.likelihood_cost(model, variables, x, repeats=cfg.timing_repeats)
    row["sampling"] = measure.sampling_speed(fam, model, variables, batch=cfg.speed_batch,
                                             repeats=cfg.timing_repeats)
    key = jax.random.key(seed)
    for i, (label, kwargs) in enumerate(fam.samplers.items()):  # the first is the family's default sampler
        fake = measure.draw_samples(model, variables, kwargs, cfg.num_samples, key, batch=cfg.speed_batch * 4,
                                    extractor=evaluator["extractor"])
        if i == 0:
            row.update(measure.sample_measurements(
                fake, evaluator["test"], evaluator["train"], evaluator["extractor"],
                num_classes=evaluator["num_classes"], cells=cfg.memorization_cells, key=jax.random.fold_in(key, 1)))
            np.save(os.path.join(out, figures, "samples.npy"), fake["samples"][:64])  # the figure's grid
        row["sampling"][label].update(measure.quality(fake, evaluator["test"], evaluator["extractor"]))
    if latents.has_latent(model):
        row["latent_dims"] = int(np.prod(model.latent_shape))
        row["ppl"] = latents.path_length(model, variables, evaluator["extractor"], jax.random.fold_in(key, 2),
                                         num_paths=cfg.ppl_paths)
        row["probe_accuracy"] = latents.probe(model, variables, dataset, steps=cfg.probe_steps)
        np.savez(os.path.join(out, figures, "strips.npz"),
                 **latents.latent_strips(model, variables, jax.random.fold_in(key, 3)))
    row["measure_seconds"] = time.perf_counter() - t0
    return row


def _point_run(cfg: PropertiesConfig, train_command, name: str, dataset_name: str, seed: int, run_dir: str,
               data_dir, out: str) -> dict:
    fam = family(name)
    try:
        results = train_family(train_command, name, f"toy2d/{dataset_name}", cfg.point_sets.get(name, {}), seed,
                               run_dir)
    except TrainingDiverged as e:
        return {"family": name, "dataset": dataset_name, "seed": seed, "diverged": True, "error": str(e),
                "sets": cfg.point_sets.get(name, {})}
    t0 = time.perf_counter()
    model, dataset, variables = _restore(run_dir, data_dir)
    default = next(iter(fam.samplers.values()))
    points = np.asarray(jax.device_get(jax.jit(lambda v, k: model.sample(v, k, cfg.point_samples, **default))(
        variables, jax.random.key(seed))), np.float64)
    figures = new_figure_data_dir(out, dataset_name, name, seed)
    np.save(os.path.join(out, figures, "points.npy"), points)
    finite = np.all(np.isfinite(points), axis=1)  # a non-finite sample covers no mode and is not high quality
    distances = toy2d.mode_distances(dataset_name, points[finite] if finite.any() else np.zeros((1, 2)))
    modes = mode_coverage(distances) if finite.any() else {"modes_covered": 0, "num_modes": distances.shape[1],
                                                           "high_quality": 0.0}
    row = {"family": name, "dataset": dataset_name, "seed": seed, "diverged": False, "run_dir": run_dir,
           "sets": cfg.point_sets.get(name, {}), "figure_data": figures, "modes_covered": modes["modes_covered"],
           "num_modes": modes["num_modes"], "high_quality": modes["high_quality"] * finite.mean(), "non_finite_samples": int((~finite).sum()),
           "test_nll_nats": results.get("test_nll_nats")}
    if results.get("test_nll_nats") is not None and toy2d.has_density(dataset_name):
        test = dataset.read("test")[dataset.spec.data_key]
        row["nll_gap_nats"] = results["test_nll_nats"] - float(-toy2d.log_density(dataset_name, test).mean())
    row.update(train_seconds=_wall_seconds(run_dir), measure_seconds=time.perf_counter() - t0)
    return row


def _pixel_probe(cfg: PropertiesConfig, dataset) -> float:
    """The linear probe on the pixels themselves: how linearly readable the class is without any code."""
    train, test = dataset.read("train"), dataset.read("test")
    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1)
    key = dataset.spec.data_key
    return latents.linear_probe_accuracy(flat(train[key]), train["label"], flat(test[key]), test["label"],
                                         dataset.spec.num_classes, steps=cfg.probe_steps)


def _evaluator(cfg: PropertiesConfig, out: str, data_dir) -> tuple[dict, dict]:
    dataset = load_dataset(cfg.dataset, data_dir)
    extractor, info = _classifier(cfg, dataset, out)
    keys = (extractor.features_key, extractor.logits_key)
    features = {split: extract.source_features(extractor, extract.dataset_source(dataset, split), keys=keys)
                for split in ("train", "test")}
    test = dataset.read("test")[dataset.spec.data_key]
    evaluator = {"extractor": extractor, "dataset": dataset, "test_batch": test[:cfg.speed_batch],
                 "num_classes": dataset.spec.num_classes, **features}
    return evaluator, {"dataset": dataset.spec.name, "classifier_test_accuracy": info.get("test_accuracy"),
                       "num_train": dataset.size("train"), "num_test": dataset.size("test"),
                       "num_levels": dataset.spec.num_levels}


def run_properties(cfg: PropertiesConfig, workdir: str, out: str, *, train_command,
                   data_dir: str | None = None) -> dict:
    """Trains and measures every (family, seed) of ``cfg`` not yet in ``out/properties.json``; returns the
    results (also written there after every run). ``train_command(argv)`` runs ``gm-jax train`` with that
    argument list (the CLI passes its own, so every run is an ordinary run directory)."""
    results = read_results(out)
    if results and results.get("config", {}).get("name") != cfg.name:
        raise GMJaxError(f"{os.path.join(out, RESULTS_FILE)} holds config '{results['config'].get('name')}', not "
                         f"'{cfg.name}'; use another output folder")
    from gm_jax.models import config_to_dict

    results.update({"config": config_to_dict(cfg), "gm_jax_version": _version()})
    runs, points = results.setdefault("runs", {}), results.setdefault("points", {})
    # every refusal before anything is written: rows measured with other settings, run directories trained so
    pending = [job for job in _jobs(cfg, workdir) if job[1] not in (runs if job[0] == "runs" else points)]
    check_rows(out, results, cfg)
    for _, _, _, _, _, run_dir, sets in pending:
        check_run_dir(run_dir, sets)
    os.makedirs(out, exist_ok=True)
    save = lambda: write_json(os.path.join(out, RESULTS_FILE), results)
    evaluator, results["evaluator"] = _evaluator(cfg, out, data_dir)
    if "reference" not in results:
        # as many training images as a model's samples: FID, recall and coverage depend on the set's size
        rows = np.random.default_rng(0).permutation(len(evaluator["train"][evaluator["extractor"].features_key]))
        subset = {k: v[rows[:cfg.num_samples]] for k, v in evaluator["train"].items()}
        results["reference"] = measure.reference_measurements(
            subset, evaluator["test"], evaluator["train"], evaluator["extractor"], num_classes=evaluator["num_classes"],
            cells=cfg.memorization_cells, key=jax.random.key(0))
        results["reference"]["probe_accuracy"] = _pixel_probe(cfg, evaluator["dataset"])
        save()
    for group, tag, name, dataset_name, seed, run_dir, _ in pending:
        _say(f"{dataset_name}: {name}, seed {seed}")
        if group == "runs":
            runs[tag] = _image_run(cfg, train_command, name, seed, run_dir, data_dir, evaluator, out)
        else:
            points[tag] = _point_run(cfg, train_command, name, dataset_name.split("/", 1)[1], seed, run_dir,
                                     data_dir, out)
        save()
    return results


def _jobs(cfg: PropertiesConfig, workdir: str):
    """(group, tag, family, dataset, seed, run directory, settings) of every row of ``cfg``, seed-major: a
    partial table has every family once before any twice."""
    root = os.path.abspath(workdir)
    for seed in cfg.seeds:
        for name in cfg.families:
            yield ("runs", f"{name}/{seed}", name, cfg.dataset, seed, os.path.join(root, cfg.dataset, f"{name}_s{seed}"),
                   cfg.sets.get(name, {}))
        for dataset_name in cfg.point_datasets:
            for name in cfg.point_families:
                yield ("points", f"{dataset_name}/{name}/{seed}", name, f"toy2d/{dataset_name}", seed,
                       os.path.join(root, dataset_name, f"{name}_s{seed}"), cfg.point_sets.get(name, {}))


def _version() -> str:
    import gm_jax

    return gm_jax.__version__
