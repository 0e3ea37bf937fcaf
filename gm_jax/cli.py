"""The ``gm-jax`` command: train, sample, evaluate, inception, domain, list, config, compare.

Every user error (unknown name, bad ``--set``, missing work dir or data) prints one line on stderr and
exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from gm_jax.errors import GMJaxError

__all__ = ["main", "build_parser", "CONFIG_FILE"]

CONFIG_FILE = "config.json"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise GMJaxError(f"{message} (see `{self.prog} --help`)")


def _parse_sets(items) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise GMJaxError(f"--set expects field=value, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _split_overrides(sets: dict, model_cls, train_cls):
    """Routes each ``--set`` field to the model config or the train config (their names are disjoint)."""
    import dataclasses

    model_fields = {f.name for f in dataclasses.fields(model_cls)}
    train_fields = {f.name for f in dataclasses.fields(train_cls)}
    model_sets, train_sets = {}, {}
    for k, v in sets.items():
        if k in model_fields:
            model_sets[k] = v
        elif k in train_fields:
            train_sets[k] = v
        else:
            raise GMJaxError(f"unknown config field '{k}'; model fields: {', '.join(sorted(model_fields))}; "
                             f"training fields: {', '.join(sorted(train_fields))}")
    return model_sets, train_sets


def _model_entry(name: str):
    from gm_jax.models import MODELS

    if name not in MODELS:
        raise GMJaxError(f"unknown model '{name}'; available: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def _configs_from_record(run: dict, config_cls, train_values: dict):
    """(model config, train config) of a run record, one line on an unknown or bad field."""
    from gm_jax.models import config_from_dict
    from gm_jax.train import TrainConfig

    return config_from_dict(config_cls, run["model_config"]), config_from_dict(TrainConfig, train_values)


def _load_run(workdir: str, data_dir: str | None):
    """Rebuilds (run record, model, dataset, train config) from a work dir written by ``train``."""
    from gm_jax.data import load_dataset
    from gm_jax.train.rundir import effective_train_config, read_run_record

    run = read_run_record(workdir)
    if run is None:
        raise GMJaxError(f"no gm-jax run in '{workdir}' ({CONFIG_FILE} missing); train one with "
                         f"`gm-jax train MODEL --dataset NAME --workdir {workdir}`")
    config_cls, model_cls = _model_entry(run["model"])
    model_cfg, train_cfg = _configs_from_record(run, config_cls, effective_train_config(run))
    dataset = load_dataset(run["dataset"], data_dir or run.get("data_dir"))
    return run, model_cls(model_cfg, dataset.spec), dataset, train_cfg


def _start_record(args) -> dict | None:
    """``train --config FILE``: a run record (a run's config.json) or any part of one, checked."""
    if args.config is None:
        return None
    from gm_jax.train.rundir import read_run_record

    if not os.path.isfile(args.config):
        raise GMJaxError(f"--config {args.config}: no such file; pass a JSON file such as a run's {CONFIG_FILE}")
    return read_run_record(os.path.dirname(os.path.abspath(args.config)), os.path.basename(args.config),
                           required=("model",))


def cmd_train(args) -> int:
    from gm_jax.data import load_dataset
    from gm_jax.models import config_to_dict, override
    from gm_jax.train import TrainConfig, fit
    from gm_jax.train.checkpoint import Checkpointer
    from gm_jax.train.loop import write_json
    from gm_jax.train.rundir import check_writable, effective_train_config, read_run_record, resume_record

    start = _start_record(args)
    name = args.model or (start or {}).get("model")
    if name is None:
        raise GMJaxError("train needs a MODEL (see `gm-jax list`) or --config FILE naming one")
    if start is not None and args.model is not None and args.model != start["model"]:
        raise GMJaxError(f"--config {args.config} is a {start['model']} config, not {args.model}; drop MODEL or "
                         "the --config")
    dataset_name = args.dataset or (start or {}).get("dataset") or "digits"
    config_cls, model_cls = _model_entry(name)
    sets = _parse_sets(args.set)
    if args.steps is not None:
        sets["steps"] = str(args.steps)
    model_sets, train_sets = _split_overrides(sets, config_cls, TrainConfig)
    workdir = args.workdir or os.path.join("runs", f"{name}_{dataset_name.replace('/', '_')}")
    check_writable(workdir)
    saved = read_run_record(workdir)
    resuming = saved is not None and Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() is not None
    if resuming:  # the saved configs, with this command's overrides on top
        if (saved["model"], saved["dataset"]) != (name, dataset_name):
            raise GMJaxError(f"{workdir} holds a {saved['model']} run on {saved['dataset']}; use another --workdir")
        model_cfg, train_cfg = _configs_from_record(saved, config_cls, effective_train_config(saved))
    elif start is not None:
        model_cfg, train_cfg = _configs_from_record(
            {"model_config": {}, **start}, config_cls,
            {**getattr(model_cls, "default_train", {}), **start.get("train_config", {})})
    else:
        model_cfg, train_cfg = config_cls(), TrainConfig(**getattr(model_cls, "default_train", {}))
    model_cfg, train_cfg = override(model_cfg, model_sets), override(train_cfg, train_sets)
    run = {"model": name, "dataset": dataset_name, "data_dir": args.data_dir,
           "model_config": config_to_dict(model_cfg), "train_config": config_to_dict(train_cfg)}
    if resuming:  # refuses a change of model or seed now, before anything is loaded or written
        resume_record(saved, run["model_config"], run["train_config"], step=0)
    dataset = load_dataset(dataset_name, args.data_dir)
    model = model_cls(model_cfg, dataset.spec)

    def write_record(start_step: int):  # at the first checkpoint: the command has been accepted
        record = resume_record(saved, run["model_config"], run["train_config"], start_step) if resuming else run
        write_json(os.path.join(workdir, CONFIG_FILE), record)

    results = fit(model, dataset, train_cfg, workdir, progress=not args.no_progress, run_info=run,
                  before_first_save=write_record)
    _print_results(results)
    from gm_jax.visualize import samples_filename

    print(f"samples: {os.path.join(workdir, samples_filename(dataset.spec))}")
    return 0


def _print_results(results: dict) -> None:
    for key in ("model", "dataset", "steps", "num_params", "test_nll_nats", "test_bits_per_dim"):
        if key in results:
            v = results[key]
            print(f"{key:>18}: {v:.4f}" if isinstance(v, float) else f"{key:>18}: {v}")


def _sampler_kwargs(args, model, run) -> dict:
    """The sampling flags the user gave (--mode, --temperature, --sampler, --steps, --guidance), checked."""
    from gm_jax.models.base import accepts_kwarg

    kw = {}
    for name, flag in (("mode", "--mode"), ("temperature", "--temperature"), ("sampler", "--sampler"),
                       ("steps", "--steps"), ("guidance", "--guidance")):
        value = getattr(args, name)
        if value is None:
            continue
        if name in ("temperature", "guidance") and value < 0:
            raise GMJaxError(f"{flag} must be >= 0, got {value}")
        if name == "steps" and value < 1:
            raise GMJaxError(f"--steps must be >= 1, got {value}")
        if not accepts_kwarg(model.sample, name):
            raise GMJaxError(f"{run['model']} sampling takes no {flag}; drop it")
        kw[name] = value
    return kw


def _add_sampler_flags(parser) -> None:
    parser.add_argument("--mode", choices=("mean", "sample"),
                        help="decoder mean or a draw (VAE; default: the model's)")
    parser.add_argument("--temperature", type=float,
                        help="sampling temperature (models that take one; 0: most likely; default: the model's)")
    parser.add_argument("--sampler", help="ddpm | ddim (ddpm), pc | sde | ode (score_sde), langevin (ebm, ncsn) "
                        "(default: the run's config)")
    parser.add_argument("--steps", type=int, help="sampler steps (ddim and SDE steps, Langevin steps per level; "
                        "default: the run's config)")
    parser.add_argument("--guidance", type=float,
                        help="classifier-free guidance scale w (conditional ddpm; default: the run's config)")


def cmd_sample(args) -> int:
    import jax
    import numpy as np

    from gm_jax.train import eval_variables, restore_state
    from gm_jax.train.loop import sample_source
    from gm_jax.visualize import save_samples

    if args.num < 1:
        raise GMJaxError(f"--num must be >= 1, got {args.num}")
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".png", ".npz", ".txt"):
        raise GMJaxError(f"--out must end in .png or .npz (or .txt for text), got '{args.out}'")
    run, model, dataset, train_cfg = _load_run(args.workdir, args.data_dir)
    is_text = dataset.spec.kind == "text"
    if ext != ".npz" and (ext == ".txt") != is_text:
        raise GMJaxError(f"--out {args.out}: {run['dataset']} samples are written as "
                         f"{'.txt or .npz' if is_text else '.png or .npz'}")
    kw = _sampler_kwargs(args, model, run)
    if args.interpolate is not None:
        return _write_interpolations(args, run, model, dataset, train_cfg, kw, ext)
    state = restore_state(model, dataset, train_cfg, args.workdir)
    kw.update(sample_source(model, dataset, args.num))  # translation models: the first test images
    sample = jax.jit(lambda v, k: model.sample(v, k, args.num, **kw))
    samples = np.asarray(jax.device_get(sample(eval_variables(state), jax.random.key(args.seed))))
    if ext == ".npz":
        levels = {"num_levels": dataset.spec.num_levels} if dataset.spec.kind == "image" else {}
        np.savez(args.out, samples=samples, **levels)  # num_levels: how `gm-jax evaluate` scales the pixels
    else:
        save_samples(samples, dataset.spec, args.out)
    print(f"wrote {args.num} samples to {args.out}")
    return 0


def _write_interpolations(args, run, model, dataset, train_cfg, kw, ext) -> int:
    """``--interpolate STEPS``: --num latent paths of STEPS points each, one strip (row) per path."""
    import jax
    import numpy as np

    from gm_jax.models.base import accepts_kwarg
    from gm_jax.train import eval_variables, restore_state
    from gm_jax.visualize import save_samples_png

    if kw:
        raise GMJaxError(f"--interpolate takes no {', '.join('--' + k for k in kw)}; drop them")
    if not hasattr(model, "interpolate") or not accepts_kwarg(model.interpolate, "num_paths"):
        raise GMJaxError(f"{run['model']} has no latent interpolation; --interpolate works with GANs")
    if args.interpolate < 2:
        raise GMJaxError(f"--interpolate must be >= 2 (points per path), got {args.interpolate}")
    if ext == ".png" and dataset.spec.kind != "image":
        raise GMJaxError(f"interpolation strips are drawn for images; {run['dataset']} holds "
                         f"{dataset.spec.kind}, so write --out FILE.npz")
    state = restore_state(model, dataset, train_cfg, args.workdir)
    paths = jax.jit(lambda v, k: model.interpolate(v, k, args.num, args.interpolate))
    strips = np.asarray(jax.device_get(paths(eval_variables(state), jax.random.key(args.seed))))
    strips = np.swapaxes(strips, 0, 1)  # [num paths, steps, ...]: one row per path
    if ext == ".npz":
        np.savez(args.out, paths=strips)
    else:
        save_samples_png(strips.reshape((-1,) + strips.shape[2:]), dataset.spec, args.out, ncols=args.interpolate)
    print(f"wrote {args.num} interpolation paths of {args.interpolate} points to {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    if args.metrics is None:
        if args.workdir is None:
            raise GMJaxError("evaluate needs --workdir DIR (test NLL of a run) or --metrics LIST --fake ... "
                             "[--real ...]")
        return _evaluate_run(args)
    return _evaluate_samples(args)


def _is_run(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_FILE))


def _evaluate_samples(args) -> int:
    """``--metrics fid,is,kid,prdc,nll --real ... --fake ...``: a table on stdout and metrics.json.

    The sample-quality numbers come from :func:`gm_jax.metrics.evaluate.evaluate_sample_quality`, the test NLL
    from the trainer's :func:`gm_jax.train.evaluation` (the numbers of results.json).
    """
    import jax

    from gm_jax import parallel
    from gm_jax.metrics.evaluate import ModelSamples, evaluate_sample_quality
    from gm_jax.metrics.suite import format_table, parse_metrics
    from gm_jax.train import eval_variables, evaluation, restore_state
    from gm_jax.train.loop import write_json

    metrics = parse_metrics(args.metrics)
    if args.fake is None:
        raise GMJaxError("--metrics needs --fake: a run's work dir, a directory of images, an .npz or a dataset")
    if args.num is not None and args.num < 1:
        raise GMJaxError(f"--num must be >= 1, got {args.num}")
    mesh = parallel.make_mesh()
    run = None
    if _is_run(args.fake):
        record, model, dataset, train_cfg = _load_run(args.fake, args.data_dir)
        run = {"record": record, "model": model, "dataset": dataset, "train_cfg": train_cfg,
               "state": restore_state(model, dataset, train_cfg, args.fake, mesh)}
    elif "nll" in metrics:
        raise GMJaxError("nll needs a trained model: pass its work dir as --fake")
    elif any(getattr(args, f) is not None for f in ("mode", "temperature", "sampler", "steps", "guidance")):
        raise GMJaxError("sampling flags apply only when --fake is a run's work dir")
    results = {"fake": args.fake, "real": args.real}
    sample_metrics = [m for m in metrics if m != "nll"]
    if sample_metrics:
        if args.real and _is_run(args.real):
            raise GMJaxError(f"--real '{args.real}' is a run; real examples come from a dataset, a directory or an "
                             ".npz")
        fake = args.fake
        if run is not None:  # samples are drawn inside the extraction step
            fake = ModelSamples(run["model"], eval_variables(run["state"]), run["dataset"].spec,
                                sample_kwargs=_sampler_kwargs(args, run["model"], run["record"]),
                                name=run["record"]["model"])
        results.update(evaluate_sample_quality(
            sample_metrics, fake=fake, real=args.real, features=args.features, weights=args.weights,
            resize=args.resize, domain_dataset=args.domain_dataset, num=args.num, batch_size=args.batch_size,
            key=jax.random.key(args.seed), data_dir=args.data_dir, save_real_stats=args.save_real_stats, mesh=mesh,
            progress=True))
        if args.save_real_stats and results["num_real"] is not None:
            print(f"wrote the real features' statistics (mu, sigma) to {args.save_real_stats}")
    if "nll" in metrics:
        if not run["model"].has_log_prob:
            raise GMJaxError(f"{run['record']['model']} has no likelihood; drop nll from --metrics")
        # the trainer's evaluation: the numbers of results.json
        results.update(evaluation(run["model"], run["dataset"], run["state"], run["train_cfg"], mesh))
    out_path = args.out or os.path.join(args.fake if run is not None else ".", "metrics.json")
    write_json(out_path, results)
    print(format_table({k: v for k, v in results.items() if v is not None}))
    print(f"wrote {out_path}")
    return 0


def _evaluate_run(args) -> int:
    import jax

    from gm_jax import parallel
    from gm_jax.models import num_params
    from gm_jax.train import evaluation, restore_state
    from gm_jax.train.loop import write_json

    run, model, dataset, train_cfg = _load_run(args.workdir, args.data_dir)
    state = restore_state(model, dataset, train_cfg, args.workdir)
    results_path = os.path.join(args.workdir, "results.json")
    results = {}
    if os.path.isfile(results_path):
        with open(results_path) as f:
            results = json.load(f)
    results.update({"model": run["model"], "dataset": run["dataset"], "steps": int(jax.device_get(state.step)),
                    "num_params": num_params(state.params)})
    if not model.has_log_prob:
        print(f"{run['model']} has no likelihood; nothing to evaluate yet", file=sys.stderr)
    results.update(evaluation(model, dataset, state, train_cfg, parallel.make_mesh()))
    write_json(results_path, results)
    _print_results(results)
    return 0


def cmd_inception(args) -> int:
    """``inception convert SRC.pth [DST]`` (checks the SHA-256) or ``inception download [DST]``."""
    from gm_jax.metrics import inception_weights

    wanted = (1, 2) if args.action == "convert" else (0, 1)
    if len(args.paths) not in wanted:
        raise GMJaxError(f"usage: gm-jax inception convert pt_inception-2015-12-05-6726825d.pth [DST] (the file is at "
                         f"{inception_weights.PYTORCH_FID_URL}) or gm-jax inception download [DST]")
    if args.action == "convert":
        dst = inception_weights.convert_weights(args.paths[0], args.paths[1] if len(args.paths) > 1 else None)
    else:
        dst = inception_weights.download_weights(args.paths[0] if args.paths else None)
    print(f"wrote FID Inception weights to {dst}")
    return 0


def cmd_domain(args) -> int:
    """``domain train --dataset NAME``: trains and caches the classifier behind ``--features domain``."""
    import time

    from gm_jax.data import load_dataset
    from gm_jax.metrics import domain

    dataset = load_dataset(args.dataset, args.data_dir)
    kw = {} if args.steps is None else {"steps": args.steps}
    t0 = time.time()
    variables, info = domain.train_domain_classifier(dataset, seed=args.seed, progress=True, **kw)
    path = args.out or domain.domain_weights_path(args.dataset)
    domain.save_domain_classifier(path, variables, info)
    print(f"test accuracy {info['test_accuracy']:.4f} after {info['steps']} steps ({time.time() - t0:.0f} s); "
          f"wrote {path}")
    return 0


def cmd_list(args) -> int:
    from gm_jax.data import EMBEDDED
    from gm_jax.models import MODELS

    print("models:   " + ", ".join(sorted(MODELS)))
    print("datasets: " + ", ".join(EMBEDDED) + " (embedded); any TFDS catalog name (mnist, cifar10, ...) "
          "when prepared or downloadable")
    return 0


def cmd_config(args) -> int:
    """``config MODEL``: every model-config and training field with its type, default and meaning."""
    from gm_jax.models import format_config
    from gm_jax.train.config import TrainConfig

    config_cls, model_cls = _model_entry(args.model)
    own = getattr(model_cls, "default_train", {})
    print(format_config(config_cls, f"{args.model}: model config ({config_cls.__name__}); --set FIELD=VALUE"))
    print()
    print(format_config(TrainConfig(**own), "training (TrainConfig)" +
                        (f"; {args.model} sets {', '.join(sorted(own))}" if own else "")))
    return 0


def cmd_compare(args) -> int:
    """``compare RUN [RUN ...] [--out FILE.png]``: results and config differences; curves to --out."""
    from gm_jax.runs import compare

    print(compare(args.runs, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gm-jax", description="Deep generative models in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (resumes from --workdir when it holds a run)")
    t.add_argument("model", nargs="?", help="a model name (see `gm-jax list`; default: the --config file's)")
    t.add_argument("--dataset", help="embedded dataset or TFDS catalog name (default: the --config file's, else "
                   "digits)")
    t.add_argument("--config", metavar="FILE.json", help="start from this config (a run's config.json, or any "
                   "part of one: model, dataset, model_config, train_config; default: the model's defaults)")
    t.add_argument("--steps", type=int, help="training steps (default: the model's; see `gm-jax config MODEL`)")
    t.add_argument("--workdir", help="run directory; resumes the run it holds (default: runs/MODEL_DATASET)")
    t.add_argument("--data-dir", help="dataset cache (default: $GM_JAX_DATA_DIR or ~/.cache/gm_jax/datasets)")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a config field (repeatable; default: none; fields: `gm-jax config MODEL`)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    t.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("--workdir", required=True, help="a run directory written by `gm-jax train` (required)")
    s.add_argument("--num", type=int, default=64, help="samples to draw (default: %(default)s)")
    s.add_argument("--out", required=True,
                   help="FILE.png (grid), FILE.txt (text data) or FILE.npz (array 'samples') (required)")
    _add_sampler_flags(s)
    s.add_argument("--interpolate", type=int, metavar="STEPS",
                   help="write --num latent interpolation strips (slerp) of STEPS images instead (GANs; default: off)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    s.add_argument("--data-dir", help="dataset cache (default: the run's, else $GM_JAX_DATA_DIR or "
                   "~/.cache/gm_jax/datasets)")
    s.set_defaults(fn=cmd_sample)

    e = sub.add_parser("evaluate", help="test NLL of a run (--workdir), or sample-quality metrics (--metrics)")
    e.add_argument("--workdir", help="a run: its test NLL is written to its results.json (default: none)")
    e.add_argument("--metrics", help="comma-separated: fid, is, kid, prdc, nll (default: none: the test NLL of "
                   "--workdir)")
    e.add_argument("--real", help="DIR of images | FILE.npz (examples, or FID statistics mu/sigma) | DATASET[:SPLIT] "
                   "(default: none)")
    e.add_argument("--fake", help="a run's work dir (samples are drawn) | DIR of images | FILE.npz | DATASET[:SPLIT] "
                   "(default: none; required with --metrics)")
    e.add_argument("--features", choices=("inception", "domain", "raw"),
                   help="feature network (default: inception for images, raw for points)")
    e.add_argument("--num", type=int,
                   help="examples per side (default: all; samples: as many as real, <= 50,000); nll: the test split")
    e.add_argument("--batch-size", type=int, default=200, help="examples per feature batch (default: %(default)s)")
    e.add_argument("--resize", default="tf1", choices=("tf1", "pytorch_fid"),
                   help="Inception input resize: tf1 (TTUR/torch-fidelity) or pytorch_fid (default: %(default)s)")
    e.add_argument("--weights", help="feature-network weights file (default: the cache of `gm-jax inception|domain`)")
    e.add_argument("--domain-dataset", help="dataset whose classifier gives --features domain (default: the run's "
                   "dataset, or the --real dataset)")
    e.add_argument("--save-real-stats", metavar="FILE.npz",
                   help="also write mu and sigma of the real features (pytorch-fid's layout; reuse as --real; "
                   "default: not written)")
    e.add_argument("--out", help="metrics.json path (default: in the run's work dir, else here)")
    e.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    _add_sampler_flags(e)
    e.add_argument("--data-dir", help="dataset cache (default: the run's, else $GM_JAX_DATA_DIR or "
                   "~/.cache/gm_jax/datasets)")
    e.set_defaults(fn=cmd_evaluate)

    inc = sub.add_parser("inception", help="get the FID InceptionV3 weights (pytorch-fid's file, converted)")
    inc.add_argument("action", choices=("convert", "download"), help="convert a .pth file or download it")
    inc.add_argument("paths", nargs="*", metavar="PATH",
                     help="convert SRC.pth [DST] | download [DST]; DST defaults to the weights cache")
    inc.set_defaults(fn=cmd_inception)

    dom = sub.add_parser("domain", help="train the classifier behind --features domain and cache its weights")
    dom.add_argument("action", choices=("train",), help="train (the only action)")
    dom.add_argument("--dataset", default="digits", help="a labelled image dataset (default: %(default)s)")
    dom.add_argument("--steps", type=int, help="training steps (default: 2000)")
    dom.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    dom.add_argument("--out", help="weights file (default: the weights cache)")
    dom.add_argument("--data-dir", help="dataset cache (default: $GM_JAX_DATA_DIR or ~/.cache/gm_jax/datasets)")
    dom.set_defaults(fn=cmd_domain)

    lst = sub.add_parser("list", help="list models and datasets")
    lst.set_defaults(fn=cmd_list)

    cfg = sub.add_parser("config", help="every config and training field of a model: type, default, meaning")
    cfg.add_argument("model", help="a model name (see `gm-jax list`)")
    cfg.set_defaults(fn=cmd_config)

    cmp = sub.add_parser("compare", help="results and config differences of runs; their curves overlaid")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run directories written by `gm-jax train`")
    cmp.add_argument("--out", metavar="FILE.png",
                     help="write the training and evaluation curves here (default: none, tables only)")
    cmp.set_defaults(fn=cmd_compare)
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except GMJaxError as e:
        if hasattr(e, "exit_code"):  # TrainingStopped: a signal ended training after a checkpoint
            print(f"gm-jax: {e}", file=sys.stderr)
            return e.exit_code
        print(f"gm-jax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gm-jax: interrupted; the latest checkpoint is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
