"""What the ``gm-jax`` sub-commands share: the one-line parser, ``--set`` parsing, run records and
sampler flags."""

from __future__ import annotations

import argparse
import os

from gm_jax.errors import GMJaxError
from gm_jax.train.rundir import RUN_RECORD as CONFIG_FILE

__all__ = ["CONFIG_FILE", "Parser", "parse_sets", "split_overrides", "model_entry", "configs_from_record",
           "load_run", "print_results", "sampler_kwargs", "add_sampler_flags", "check_out_path", "seed_arg"]


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise GMJaxError(f"{message} (see `{self.prog} --help`)")


def parse_sets(items) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise GMJaxError(f"--set expects field=value, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def split_overrides(sets: dict, model_cls, train_cls):
    """Routes each ``--set`` field to the model config or the train config. A name both configs have (ddpm's
    beta ``schedule`` and the learning-rate ``schedule``) goes to the model's; ``model.NAME`` and
    ``train.NAME`` route explicitly."""
    import dataclasses

    model_fields = {f.name for f in dataclasses.fields(model_cls)}
    train_fields = {f.name for f in dataclasses.fields(train_cls)}
    model_sets, train_sets = {}, {}
    for k, v in sets.items():
        prefix, _, name = k.rpartition(".")
        if prefix not in ("", "model", "train"):
            raise GMJaxError(f"--set {k}: a field is NAME, model.NAME or train.NAME")
        if name in model_fields and prefix != "train":
            model_sets[name] = v
        elif name in train_fields and prefix != "model":
            train_sets[name] = v
        else:
            where = {"model": "model", "train": "training"}.get(prefix)
            raise GMJaxError(f"unknown {where + ' ' if where else ''}config field '{name}'; model fields: "
                             f"{', '.join(sorted(model_fields))}; training fields: {', '.join(sorted(train_fields))}")
    return model_sets, train_sets


def model_entry(name: str):
    from gm_jax.models import MODELS

    if name not in MODELS:
        raise GMJaxError(f"unknown model '{name}'; available: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def configs_from_record(run: dict, config_cls, train_defaults: dict | None = None):
    """(model config, train config) of a run record as the run stands (its resumes applied); fields the record
    lacks take the config defaults (training ones ``train_defaults`` first). One line on an unknown or bad field."""
    from gm_jax.models import config_from_dict
    from gm_jax.train import TrainConfig
    from gm_jax.train.rundir import effective_model_config, effective_train_config

    run = {"model_config": {}, "train_config": {}, **run}
    return (config_from_dict(config_cls, effective_model_config(run)),
            config_from_dict(TrainConfig, {**(train_defaults or {}), **effective_train_config(run)}))


def load_run(workdir: str, data_dir: str | None, inference_sets=None):
    """Rebuilds (run record, model, dataset, train config) from a work dir written by ``train``.

    ``inference_sets`` (``--set FIELD=VALUE`` items) change the model's inference settings (a sampler's
    spacing, an estimator's size: fields marked ``inference=True``) for this command only; any other field
    would be another model and is refused in one line."""
    from gm_jax.data import load_dataset
    from gm_jax.train.rundir import read_run_record

    run = read_run_record(workdir)
    if run is None:
        raise GMJaxError(f"no gm-jax run in '{workdir}' ({CONFIG_FILE} missing); train one with "
                         f"`gm-jax train MODEL --dataset NAME --workdir {workdir}`")
    config_cls, model_cls = model_entry(run["model"])
    model_cfg, train_cfg = configs_from_record(run, config_cls)
    sets = parse_sets(inference_sets)
    if sets:
        from gm_jax.models import override
        from gm_jax.models.base import inference_fields

        free = inference_fields(config_cls)
        fixed = sorted(set(sets) - free)
        if fixed:
            raise GMJaxError(f"--set {fixed[0]}: only inference settings change a trained {run['model']} "
                             f"({', '.join(sorted(free)) or 'it has none'}); train another run to change the rest")
        model_cfg = override(model_cfg, sets)
    dataset = load_dataset(run["dataset"], data_dir or run.get("data_dir"))
    return run, model_cls(model_cfg, dataset.spec), dataset, train_cfg


def print_results(results: dict) -> None:
    for key in ("model", "dataset", "steps", "num_params", "test_nll_nats", "test_bits_per_dim"):
        if key in results:
            v = results[key]
            print(f"{key:>18}: {v:.4f}" if isinstance(v, float) else f"{key:>18}: {v}")


def sampler_kwargs(args, model, run) -> dict:
    """The sampling flags the user gave (--mode, --temperature, --sampler, --steps, --guidance), checked."""
    from gm_jax.models.base import accepts_kwarg

    kw = {}
    for name, flag in (("mode", "--mode"), ("temperature", "--temperature"), ("sampler", "--sampler"),
                       ("steps", "--steps"), ("guidance", "--guidance")):
        value = getattr(args, name)
        if value is None:
            continue
        if name in ("temperature", "guidance") and not 0 <= value < float("inf"):  # nan fails both
            raise GMJaxError(f"{flag} must be a finite number >= 0, got {value}")
        if name == "steps" and value < 1:
            raise GMJaxError(f"--steps must be >= 1, got {value}")
        if not accepts_kwarg(model.sample, name):
            raise GMJaxError(f"{run['model']} sampling takes no {flag}; drop it")
        kw[name] = value
    return kw


def add_sampler_flags(parser) -> None:
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
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE",
                        help="change an inference setting of the run for this command, e.g. timestep_spacing=quad "
                             "or eval_timesteps=0 (repeatable; default: the run's config)")


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: an integer in [0, 2**31), as jax keys and numpy seeding take."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got '{text}'") from None
    if not 0 <= seed < 2**31:
        raise argparse.ArgumentTypeError(f"--seed must be in [0, 2**31), got {seed}")
    return seed


def check_out_path(path: str, flag: str = "--out") -> None:
    """Raises one line unless ``path`` can be written: its directory exists and is writable. Checked before
    any work, so a typo costs nothing."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise GMJaxError(f"{flag} {path} is a directory; give a file name inside it")
    if not os.path.isdir(directory):
        raise GMJaxError(f"{flag} {path}: the directory {directory} does not exist; create it first")
    if not os.access(directory, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise GMJaxError(f"{flag} {path}: not writable; choose a writable location")
