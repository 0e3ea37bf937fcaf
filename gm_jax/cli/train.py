"""``gm-jax train``: checks a command against the work dir's run, then trains (:func:`gm_jax.train.fit`)."""

from __future__ import annotations

import os

from gm_jax.cli._common import CONFIG_FILE, configs_from_record, model_entry, parse_sets, print_results, \
    split_overrides
from gm_jax.errors import GMJaxError

__all__ = ['cmd_train']


def _start_record(args) -> dict | None:
    """``train --config FILE``: a run record (a run's config.json) or any part of one, checked."""
    if args.config is None:
        return None
    from gm_jax.train.rundir import read_run_record

    if not os.path.isfile(args.config):
        raise GMJaxError(f"--config {args.config}: no such file; pass a JSON file such as a run's {CONFIG_FILE}")
    return read_run_record(os.path.dirname(os.path.abspath(args.config)), os.path.basename(args.config),
                           required=())


def cmd_train(args) -> int:
    import jax

    from gm_jax.data import load_dataset
    from gm_jax.models import config_to_dict, override
    from gm_jax.train import TrainConfig, fit
    from gm_jax.train.checkpoint import Checkpointer
    from gm_jax.train.loop import write_json
    from gm_jax.models.base import inference_fields
    from gm_jax.train.rundir import check_writable, read_run_record, resume_record

    start = _start_record(args)
    name = args.model or (start or {}).get("model")
    if name is None:
        raise GMJaxError("train needs a MODEL (see `gm-jax list`) or --config FILE naming one")
    if start is not None and args.model is not None and start.get("model", args.model) != args.model:
        raise GMJaxError(f"--config {args.config} is a {start['model']} config, not {args.model}; drop MODEL or "
                         "the --config")
    dataset_name = args.dataset or (start or {}).get("dataset") or "digits"
    config_cls, model_cls = model_entry(name)
    sets = parse_sets(args.set)
    if args.steps is not None:
        sets["steps"] = str(args.steps)
    model_sets, train_sets = split_overrides(sets, config_cls, TrainConfig)
    workdir = args.workdir or os.path.join("runs", f"{name}_{dataset_name.replace('/', '_')}")
    check_writable(workdir)
    saved = read_run_record(workdir)
    resuming = saved is not None and Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() is not None
    if resuming:  # the saved configs, with this command's overrides on top
        if (saved["model"], saved["dataset"]) != (name, dataset_name):
            raise GMJaxError(f"{workdir} holds a {saved['model']} run on {saved['dataset']}; use another --workdir")
        model_cfg, train_cfg = configs_from_record(saved, config_cls)
    elif start is not None:
        model_cfg, train_cfg = configs_from_record(start, config_cls, getattr(model_cls, "default_train", {}))
    else:
        model_cfg, train_cfg = config_cls(), TrainConfig(**getattr(model_cls, "default_train", {}))
    model_cfg, train_cfg = override(model_cfg, model_sets), override(train_cfg, train_sets)
    run = {"model": name, "dataset": dataset_name, "data_dir": args.data_dir,
           "model_config": config_to_dict(model_cfg), "train_config": config_to_dict(train_cfg)}
    free = inference_fields(config_cls)
    if resuming:  # refuses a change of model or seed now, before anything is loaded or written
        resume_record(saved, run["model_config"], run["train_config"], 0, inference_fields=free)
    dataset = load_dataset(dataset_name, args.data_dir)
    model = model_cls(model_cfg, dataset.spec)

    def write_record(start_step: int):  # at the first checkpoint: the command has been accepted
        if jax.process_index() != 0:  # one writer in a multi-process job
            return
        record = resume_record(saved, run["model_config"], run["train_config"], start_step,
                               inference_fields=free) if resuming else run
        write_json(os.path.join(workdir, CONFIG_FILE), record)

    results = fit(model, dataset, train_cfg, workdir, progress=not args.no_progress, run_info=run,
                  before_first_save=write_record)
    if jax.process_index() != 0:
        return 0
    print_results(results)
    from gm_jax.visualize import samples_filename

    print(f"samples: {os.path.join(workdir, samples_filename(dataset.spec))}")
    return 0
