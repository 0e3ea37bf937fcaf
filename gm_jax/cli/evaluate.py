"""``gm-jax evaluate``: the test NLL of a run, or sample-quality metrics of a run, files or a dataset."""

from __future__ import annotations

import json
import os

from gm_jax.cli._common import CONFIG_FILE, check_out_path, load_run, parse_sets, print_results, sampler_kwargs
from gm_jax.errors import GMJaxError
from gm_jax.train.rundir import check_writable

EVALUATIONS_FILE = "evaluations.json"
EVALUATIONS_WHAT = "an evaluations file (a JSON object with a list of objects under 'evaluations')"
# what makes two evaluations the same kind: a new one replaces an old one only when all of these agree
KIND_FIELDS = ("metrics", "checkpoint_step", "features", "resize", "sampler", "sets", "num", "num_real", "real",
               "seed")

__all__ = ['cmd_evaluate']


def cmd_evaluate(args) -> int:
    if args.metrics is None:
        if args.workdir is None:
            raise GMJaxError("evaluate needs --workdir DIR (test NLL of a run) or --metrics LIST --fake ... "
                             "[--real ...]")
        return _evaluate_run(args)
    return _evaluate_samples(args)


def _is_run(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_FILE))


def _provenance(args, metrics, run) -> dict:
    """What an evaluation's numbers depend on besides the data: written beside them."""
    import datetime

    import gm_jax

    out = {"metrics": list(metrics), "seed": args.seed, "num": args.num, "gm_jax_version": gm_jax.__version__,
           "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if run is not None:
        out["checkpoint_step"] = int(run["state"].step)
        out["sampler"] = sampler_kwargs(args, run["model"], run["record"])
        if args.set:
            out["sets"] = parse_sets(args.set)
    return out


def read_json_object(path: str, what: str, list_key: str | None = None):
    """The JSON object in ``path`` ({} if there is none); with ``list_key``, the list of objects under that
    key. One line if the file is not that, so a broken file is found before any work."""
    if not os.path.isfile(path):
        return [] if list_key else {}
    try:
        with open(path) as f:
            value = json.load(f)
        if list_key:
            value = value[list_key]
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                raise TypeError
        elif not isinstance(value, dict):
            raise TypeError
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise GMJaxError(f"{path} is not {what}; move it away and evaluate again") from None
    return value


def record_evaluation(path: str, record: dict) -> None:
    """Adds ``record`` to the run's ``evaluations.json`` (``{"evaluations": [...]}``), replacing only an
    earlier evaluation of the same kind (:data:`KIND_FIELDS`), so evaluations of other kinds stay."""
    from gm_jax.train.loop import write_json

    kept = read_json_object(path, EVALUATIONS_WHAT, "evaluations")
    kind = lambda r: tuple(json.dumps(r.get(k), sort_keys=True) for k in KIND_FIELDS)
    kept = [r for r in kept if kind(r) != kind(record)]
    write_json(path, {"evaluations": kept + [record]})


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
    fake_is_run = _is_run(args.fake)
    if args.out:
        check_out_path(args.out)
    elif fake_is_run:
        check_writable(args.fake, "--fake")
        read_json_object(os.path.join(args.fake, EVALUATIONS_FILE), EVALUATIONS_WHAT, "evaluations")
    else:
        check_out_path("metrics.json", "--out (default ./metrics.json)")
    if args.save_real_stats:
        check_out_path(args.save_real_stats, "--save-real-stats")
    if args.step is not None and not fake_is_run:
        raise GMJaxError("--step picks a checkpoint of a run; it applies only when --fake is a run's work dir")
    mesh = parallel.make_mesh()
    run = None
    if fake_is_run:
        record, model, dataset, train_cfg = load_run(args.fake, args.data_dir, args.set)
        run = {"record": record, "model": model, "dataset": dataset, "train_cfg": train_cfg,
               "state": restore_state(model, dataset, train_cfg, args.fake, mesh, step=args.step)}
    elif "nll" in metrics:
        raise GMJaxError("nll needs a trained model: pass its work dir as --fake")
    elif any(getattr(args, f) is not None for f in ("mode", "temperature", "sampler", "steps", "guidance", "set")):
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
                                sample_kwargs=sampler_kwargs(args, run["model"], run["record"]),
                                name=run["record"]["model"])
        results.update(evaluate_sample_quality(
            sample_metrics, fake=fake, real=args.real, features=args.features, weights=args.weights,
            resize=args.resize, domain_dataset=args.domain_dataset, num=args.num, batch_size=args.batch_size,
            key=jax.random.key(args.seed), data_dir=args.data_dir, save_real_stats=args.save_real_stats, mesh=mesh,
            progress=not args.no_progress))
        if args.save_real_stats and results["num_real"] is not None and jax.process_index() == 0:
            print(f"wrote the real features' statistics (mu, sigma) to {args.save_real_stats}")
    if "nll" in metrics:
        if not run["model"].has_log_prob:
            raise GMJaxError(f"{run['record']['model']} has no likelihood; drop nll from --metrics")
        # the trainer's evaluation: the numbers of results.json
        results.update(evaluation(run["model"], run["dataset"], run["state"], run["train_cfg"], mesh,
                                  progress=not args.no_progress))
    if jax.process_index() != 0:  # every process computed (collectives); the first reports and writes
        return 0
    print(format_table({k: v for k, v in results.items() if v is not None}))
    results.update(_provenance(args, metrics, run))
    if args.out or run is None:
        out_path = args.out or "metrics.json"
        write_json(out_path, results)
    else:
        out_path = os.path.join(args.fake, EVALUATIONS_FILE)
        record_evaluation(out_path, results)
    print(f"wrote {out_path}")
    return 0


def _evaluate_run(args) -> int:
    import jax

    from gm_jax import parallel
    from gm_jax.models import num_params
    from gm_jax.train import evaluation, restore_state
    from gm_jax.train.loop import write_json

    from gm_jax.train import Checkpointer

    run, model, dataset, train_cfg = load_run(args.workdir, args.data_dir, args.set)
    check_writable(args.workdir)
    results_path = os.path.join(args.workdir, "results.json")
    results = read_json_object(results_path, "a results file (a JSON object)")
    read_json_object(os.path.join(args.workdir, EVALUATIONS_FILE), EVALUATIONS_WHAT, "evaluations")
    if not model.has_log_prob:
        raise GMJaxError(f"{run['model']} has no likelihood to evaluate; for sample quality use --metrics fid,prdc "
                         f"--fake {args.workdir} --real {run['dataset']}:test")
    state = restore_state(model, dataset, train_cfg, args.workdir, step=args.step)
    step = int(jax.device_get(state.step))
    # every process opens the checkpoints (orbax synchronises the processes there) and computes (collectives)
    latest = Checkpointer(os.path.join(args.workdir, "checkpoints")).latest_step()
    numbers = evaluation(model, dataset, state, train_cfg, parallel.make_mesh(), progress=not args.no_progress)
    if jax.process_index() != 0:  # the first process reports and writes
        return 0
    if step != latest:  # an older checkpoint
        record = {"model": run["model"], "dataset": run["dataset"], **numbers,
                  **_provenance(args, ["nll"], {"state": state, "model": model, "record": run})}
        record_evaluation(os.path.join(args.workdir, EVALUATIONS_FILE), record)
        print_results({"model": run["model"], "dataset": run["dataset"], "steps": step, **numbers})
        print(f"wrote {os.path.join(args.workdir, EVALUATIONS_FILE)}")
        return 0
    results.update({"model": run["model"], "dataset": run["dataset"], "steps": step,
                    "num_params": num_params(state.params), **numbers})
    if args.set:
        results["nll_sets"] = parse_sets(args.set)
    write_json(results_path, results)
    print_results(results)
    return 0
