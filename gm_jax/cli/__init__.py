"""The ``gm-jax`` command: train, sample, evaluate, inception, domain, list, config, compare, properties.

Every user error (unknown name, bad ``--set``, missing work dir or data, unwritable output) prints one line on
stderr and exits with status 2; a training stopped by SIGTERM or Ctrl-C saves a checkpoint and exits with
128 + the signal number; a process of a multi-process job whose peer died says so in one line and exits with 1.
Each sub-command lives in its own module; this one builds the parser.
"""

from __future__ import annotations

import argparse
import os
import sys

from gm_jax.cli._common import CONFIG_FILE, Parser, add_sampler_flags, seed_arg
from gm_jax.cli.convert import cmd_convert
from gm_jax.cli.evaluate import cmd_evaluate
from gm_jax.cli.properties import add_properties_parser
from gm_jax.cli.sample import cmd_sample
from gm_jax.cli.tools import cmd_compare, cmd_config, cmd_domain, cmd_inception, cmd_list
from gm_jax.cli.train import cmd_train
from gm_jax.compilation_cache import enable_compilation_cache, resolve_compilation_cache
from gm_jax.errors import GMJaxError

__all__ = ["main", "build_parser", "CONFIG_FILE"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="gm-jax", description="Deep generative models in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

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
                   help="override a config field, NAME or model.NAME / train.NAME when both configs have NAME (repeatable; "
                        "default: none; fields: `gm-jax config MODEL`)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    t.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("--workdir", required=True, help="a run directory written by `gm-jax train` (required)")
    s.add_argument("--num", type=int, default=64, help="samples to draw (default: %(default)s)")
    s.add_argument("--out", required=True,
                   help="FILE.png (grid), FILE.txt (text data) or FILE.npz (array 'samples') (required)")
    add_sampler_flags(s)
    s.add_argument("--interpolate", type=int, metavar="STEPS",
                   help="write --num latent interpolation strips (slerp) of STEPS images instead (GANs; default: off)")
    s.add_argument("--batch-size", type=int, default=16,
                   help="samples drawn at once; the bar advances per batch, and the samples depend on the seed and "
                   "this (default: %(default)s; larger is faster on accelerators)")
    s.add_argument("--seed", type=seed_arg, default=0, help="random seed (default: %(default)s)")
    s.add_argument("--step", type=int, help="the checkpoint to sample (default: the newest intact one)")
    s.add_argument("--data-dir", help="dataset cache (default: the run's, else $GM_JAX_DATA_DIR or "
                   "~/.cache/gm_jax/datasets)")
    s.add_argument("--no-progress", action="store_true", help="no progress bars (default: shown)")
    s.set_defaults(fn=cmd_sample)

    c = sub.add_parser("convert", help="a published checkpoint -> a gm-jax run directory (sample, evaluate)")
    c.add_argument("format", choices=("diffusers-ddpm",),
                   help="diffusers-ddpm: a diffusers UNet2DModel DDPM (google/ddpm-cifar10-32's layout)")
    c.add_argument("source", help="the diffusers pipeline folder, its unet/ folder or its .safetensors file")
    c.add_argument("--workdir", required=True, help="the new run directory, empty or absent (required)")
    c.add_argument("--dataset", default="cifar10", help="the dataset the model was trained on (default: cifar10)")
    c.add_argument("--data-dir", help="dataset cache (default: $GM_JAX_DATA_DIR or ~/.cache/gm_jax/datasets)")
    c.set_defaults(fn=cmd_convert)

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
    e.add_argument("--out", help="write the numbers to this JSON file (default: added to the run's evaluations.json, "
                   "else ./metrics.json)")
    e.add_argument("--seed", type=seed_arg, default=0, help="random seed (default: %(default)s)")
    e.add_argument("--step", type=int, help="the run's checkpoint to evaluate (default: the newest intact one)")
    add_sampler_flags(e)
    e.add_argument("--data-dir", help="dataset cache (default: the run's, else $GM_JAX_DATA_DIR or "
                   "~/.cache/gm_jax/datasets)")
    e.add_argument("--no-progress", action="store_true", help="no progress bars (default: shown)")
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
    dom.add_argument("--seed", type=seed_arg, default=0, help="random seed (default: %(default)s)")
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

    add_properties_parser(sub, build_parser)
    for name in ("train", "sample", "evaluate"):  # the commands that run as several processes of one job
        sub.choices[name].add_argument(
            "--coordinator", metavar="HOST:PORT|auto",
            help="run as one process of a multi-process job: process 0's address, or auto (what jax.distributed "
                 "detects: SLURM, TPU pods, ...) (default: a single process)")
        sub.choices[name].add_argument("--num-processes", type=int,
                                       help="processes in the job (with --coordinator HOST:PORT; default: none)")
        sub.choices[name].add_argument("--process-id", type=int,
                                       help="this process's index, 0..N-1 (with --coordinator HOST:PORT; default: "
                                            "none)")
    for name in ("train", "sample", "evaluate", "convert", "domain", "properties"):  # the commands that compile
        sub.choices[name].add_argument(
            "--compilation-cache", metavar="DIR|off",
            help="keep compiled programs here, so a second run does not compile them again, or off (default: "
                 "$GM_JAX_COMPILATION_CACHE, else ~/.cache/gm_jax/jax_cache)")
    return p


def _leave_job(args, detail: str) -> None:
    """A collective of a multi-process job failed because another process died: one line, then exit 1 at
    once (the orderly shutdown would wait minutes for the dead process, and JAX's own error poller would
    abort this one with a stack trace)."""
    import jax

    where = f"; the newest checkpoint in {args.workdir} is kept" if args.command == "train" else ""
    print(f"gm-jax: error: process {jax.process_index()} of {jax.process_count()}: the job lost a process "
          f"({detail}){where}; see the other processes' logs, then start all of them again with the "
          "same command", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def main(argv=None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        if hasattr(args, "coordinator"):
            from gm_jax.parallel import check_same_command, initialize_processes

            initialize_processes(args.coordinator, args.num_processes, args.process_id)
            if args.coordinator is not None:  # what may differ between processes: their id, local folders, bars
                local = ("process_id", "fn", "data_dir", "compilation_cache", "no_progress")
                check_same_command(repr(sorted((k, v) for k, v in vars(args).items() if k not in local)))
        if hasattr(args, "compilation_cache"):
            cache = resolve_compilation_cache(args.compilation_cache)
            if args.compilation_cache is not None:  # the commands this one runs (properties -> train) follow it
                os.environ["GM_JAX_COMPILATION_CACHE"] = args.compilation_cache
            if cache is not None:
                enable_compilation_cache(cache)
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
    except BrokenPipeError:  # `gm-jax config vae | head`: the reader left; nothing to report
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as e:  # noqa: BLE001 -- only a lost peer is handled; anything else keeps its traceback
        if getattr(args, "coordinator", None) is None:
            raise
        from gm_jax.parallel import lost_peer

        if lost_peer(e) is None:
            raise
        _leave_job(args, lost_peer(e))

