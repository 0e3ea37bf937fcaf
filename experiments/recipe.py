"""Paper recipes (issue 16): one model on one dataset with every setting the paper fixes, each beside its
source, and the paper's evaluation protocol.

A recipe is data (:class:`Recipe`); its folder ``experiments/<method>_<dataset>/`` holds ``config.py``
(``CONFIGS``: ``paper`` and a ``smoke`` config of the same code path), ``__main__.py`` (calls :func:`main`)
and a README with the paper's numbers beside ours. A recipe runs the library's own commands, so its run
directory is an ordinary gm-jax run (``gm-jax sample|evaluate|compare`` read it):

1. ``gm-jax train MODEL --dataset D --set field=value ...`` with the recipe's settings (resumable), then
2. ``gm-jax evaluate --metrics ... --fake RUN --out RUN/recipe_eval_<recipe>_<name>.json`` for each sample-quality
   evaluation of the paper (sampler, sample count, reference set, features and resize as flags), and the
   test NLL of ``results.json`` (the trainer's evaluation, under the recipe's likelihood settings);
3. ``RUN/recipe.json``: every number, and a table of the paper's numbers beside ours on stdout.

    python -m experiments.ddpm_cifar10 --describe             # the resolved config and parameter count
    python -m experiments.ddpm_cifar10 --data-dir DIR         # train and evaluate by the paper's protocol
    python -m experiments.ddpm_cifar10 --config smoke         # the same path, tiny, on the embedded digits
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping

from gm_jax.data import DataSpec
from gm_jax.errors import GMJaxError

__all__ = ["Setting", "Evaluation", "Published", "Recipe", "smoke", "reproduce", "check_run", "comparison_table",
           "main", "CIFAR10", "MNIST", "DIGITS", "TINY_UNET"]

# The datasets recipes name, described without loading them (so --describe needs no data).
CIFAR10 = DataSpec(name="cifar10", kind="image", shape=(32, 32, 3), num_levels=256, num_classes=10)
MNIST = DataSpec(name="mnist", kind="image", shape=(28, 28, 1), num_levels=256, num_classes=10)
DIGITS = DataSpec(name="digits", kind="image", shape=(8, 8, 1), num_levels=17, num_classes=10)
RESULTS_FILE = "recipe.json"
SAMPLER_FLAGS = ("--sampler", "--steps", "--guidance", "--temperature", "--mode")
# the smoke configs' U-Net (ddpm, ddim, iddpm, score_sde, ncsn): one level of 8 channels, no attention
TINY_UNET = {"channels": "8", "channel_mult": "1", "num_res_blocks": "1", "attention_resolutions": ""}
SMOKE_TRAIN = {"steps": "2", "batch_size": "8", "warmup_steps": "1", "checkpoint_every": "2", "log_every": "1",
               "num_samples": "4", "eval_batch_size": "64", "eval_max_examples": "32"}


@dataclasses.dataclass(frozen=True)
class Setting:
    """A config value (as ``--set`` takes it) and where it comes from (paper section, official code file)."""

    value: str
    source: str


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One evaluation of the paper's protocol.

    ``metrics`` ``nll`` reads the test NLL the trainer wrote (results.json); anything else (``fid,is``, ...)
    runs ``gm-jax evaluate --metrics METRICS --fake RUN`` with ``flags`` (reference set, sample count,
    features, resize, sampler and steps). ``translate`` > 0 (translation models): the fake side is the
    model's translations of the first ``translate`` test images, written by ``gm-jax sample --out``.
    """

    name: str
    metrics: str
    flags: tuple[str, ...] = ()
    source: str = ""
    translate: int = 0


@dataclasses.dataclass(frozen=True)
class Published:
    """A number the paper reports: ``metric`` of evaluation ``evaluation`` (a key of its results, e.g.
    ``fid``, ``is_mean``, ``test_bits_per_dim``)."""

    label: str
    evaluation: str
    metric: str
    value: float
    source: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A paper's model, data, training and evaluation. ``model_sets`` / ``train_sets``: field -> Setting of
    the model's config and of ``TrainConfig``; fields not named keep gm-jax's defaults for the model.
    ``deviations``: each way the recipe differs from the paper, in a sentence. ``paper_num_params``: the
    parameter count the paper or its code states, when it states one."""

    name: str
    paper: str
    model: str
    dataset: str
    spec: DataSpec
    model_sets: Mapping[str, Setting]
    train_sets: Mapping[str, Setting]
    evaluations: tuple[Evaluation, ...] = ()
    published: tuple[Published, ...] = ()
    deviations: tuple[str, ...] = ()
    paper_num_params: int | None = None

    def __post_init__(self):
        names = [e.name for e in self.evaluations]
        if len(set(names)) != len(names):
            raise GMJaxError(f"recipe {self.name}: evaluation names repeat: {names}")
        missing = sorted({p.evaluation for p in self.published} - set(names))
        if missing:
            raise GMJaxError(f"recipe {self.name}: published numbers name unknown evaluations {missing}")

    def replace(self, **changes) -> "Recipe":
        """A copy with ``changes``; ``model_sets``/``train_sets`` given here are merged over the recipe's."""
        for field in ("model_sets", "train_sets"):
            if field in changes:
                changes[field] = {**getattr(self, field), **changes[field]}
        return dataclasses.replace(self, **changes)

    def configs(self):
        """(model config, train config) with the recipe's settings over the model's defaults."""
        from gm_jax.models import MODELS, override
        from gm_jax.train import TrainConfig

        if self.model not in MODELS:
            raise GMJaxError(f"recipe {self.name}: unknown model '{self.model}'")
        config_cls, model_cls = MODELS[self.model]
        model_cfg = override(config_cls(), {k: s.value for k, s in self.model_sets.items()})
        train_cfg = override(TrainConfig(**getattr(model_cls, "default_train", {})),
                             {k: s.value for k, s in self.train_sets.items()})
        return model_cfg, train_cfg

    def build_model(self):
        from gm_jax.models import MODELS

        return MODELS[self.model][1](self.configs()[0], self.spec)

    def num_params(self) -> int:
        """The network's parameter count, from shapes alone (nothing is allocated or computed)."""
        import jax
        import jax.numpy as jnp

        from gm_jax.models import num_params

        model = self.build_model()
        example = {self.spec.data_key: jnp.zeros((1, *self.spec.shape), jnp.int32)}
        if self.spec.num_classes:
            example["label"] = jnp.zeros((1,), jnp.int32)
        shapes = jax.eval_shape(model.init, jax.random.key(0), example)
        return num_params(shapes["params"])

    def describe(self) -> str:
        """The resolved configs (every field; the recipe's settings with their sources) and the parameter
        count, as text."""
        from gm_jax.models.describe import describe_config

        model_cfg, train_cfg = self.configs()
        lines = [f"{self.name}: {self.paper}", f"model {self.model} on {self.dataset} {self.spec.shape}"]
        for title, cfg, sets in (("model", model_cfg, self.model_sets), ("training", train_cfg, self.train_sets)):
            lines.append(f"\n{title} ({type(cfg).__name__})")
            rows = [(r.name, r.default, sets[r.name].source if r.name in sets else "gm-jax default")
                    for r in describe_config(cfg)]
            width = [max(len(row[i]) for row in rows) for i in range(2)]
            lines += [f"  {n.ljust(width[0])}  {v.ljust(width[1])}  {src}" for n, v, src in rows]
        n = self.num_params()
        stated = "" if self.paper_num_params is None else \
            f" (paper: {self.paper_num_params:,}; {'equal' if n == self.paper_num_params else 'DIFFERENT'})"
        lines.append(f"\nparameters: {n:,}{stated}")
        if self.evaluations:
            lines.append("\nevaluation")
            for e in self.evaluations:
                flags = " ".join(e.flags)
                lines.append(f"  {e.name}: {e.metrics} {flags}".rstrip() + (f"  [{e.source}]" if e.source else ""))
        if self.deviations:
            lines.append("\ndifferences from the paper")
            lines += [f"  - {d}" for d in self.deviations]
        return "\n".join(lines)


def smoke(recipe: Recipe, model_sets: Mapping[str, str], *, sampler_flags: Mapping[str, tuple[str, ...]] = {},
          dataset: str = "digits", spec: DataSpec = DIGITS, real: str = "digits:test") -> Recipe:
    """The ``smoke`` config of ``recipe``: the same model, training and evaluation code on an embedded dataset
    (``dataset``, described by ``spec``; the digits unless a recipe needs another layout), with ``model_sets``
    (tiny widths) over the paper's, two training steps, and each sample-quality evaluation cut to FID of 16
    samples (or translations) against ``real`` on raw pixels (no feature-network weights), keeping the
    paper's sampler flags unless ``sampler_flags`` (evaluation name -> flags) replaces them."""

    def small(e: Evaluation) -> Evaluation:
        if e.metrics == "nll":
            return e
        kept = sampler_flags.get(e.name)
        if kept is None:
            kept = tuple(a for i in range(0, len(e.flags) - 1, 2) if e.flags[i] in SAMPLER_FLAGS
                         for a in e.flags[i:i + 2])
        return dataclasses.replace(e, metrics="fid", flags=("--real", real, "--num", "16", "--features", "raw", *kept),
                                   translate=16 if e.translate else 0,
                                   source=f"smoke: FID of 16 samples on raw pixels (the paper's: {e.source})")

    return recipe.replace(dataset=dataset, spec=spec, paper_num_params=None,
                          model_sets={k: Setting(v, "smoke") for k, v in model_sets.items()},
                          train_sets={k: Setting(v, "smoke") for k, v in SMOKE_TRAIN.items()},
                          evaluations=tuple(small(e) for e in recipe.evaluations))


# ------------------------------------------------------------------------------------------------ running
def _gm_jax(argv: list[str]) -> None:
    from gm_jax.cli import main as gm_jax_main

    code = gm_jax_main(argv)
    if code != 0:
        raise SystemExit(code)


def _train(recipe: Recipe, workdir: str, data_dir: str | None, progress: bool) -> None:
    """``gm-jax train`` with the recipe's settings; a run already at its last step is not touched."""
    from gm_jax.train import Checkpointer

    _, train_cfg = recipe.configs()
    checkpoints = os.path.join(workdir, "checkpoints")
    if os.path.isfile(os.path.join(workdir, "results.json")) and os.path.isdir(checkpoints) and \
            Checkpointer(checkpoints).latest_step() == train_cfg.steps:
        return
    sets = [f"model.{k}={s.value}" for k, s in recipe.model_sets.items()] + \
        [f"train.{k}={s.value}" for k, s in recipe.train_sets.items()]
    _gm_jax(["train", recipe.model, "--dataset", recipe.dataset, "--workdir", workdir,
             *(["--data-dir", data_dir] if data_dir else []), *[a for s in sets for a in ("--set", s)],
             *([] if progress else ["--no-progress"])])


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
        if not isinstance(value, dict):
            raise TypeError
        return value
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
        raise GMJaxError(f"{path} is damaged (not a JSON object); move it away and run again") from None


def check_run(recipe: Recipe, workdir: str, *, evaluate_only: bool) -> None:
    """Raises one line unless ``workdir`` is empty or holds a run of ``recipe``: its model and dataset, and,
    unless ``evaluate_only`` (a converted checkpoint has its own settings), the recipe's settings apart from
    inference ones. Without this a finished run of another model would be evaluated under this recipe's name."""
    from gm_jax.models import MODELS, config_to_dict
    from gm_jax.models.base import inference_fields
    from gm_jax.train.rundir import read_run_record

    record = read_run_record(workdir)
    if record is None:
        return
    if (record["model"], record["dataset"]) != (recipe.model, recipe.dataset):
        raise GMJaxError(f"{workdir} holds a {record['model']} run on {record['dataset']}, not recipe {recipe.name}'s "
                         f"{recipe.model} on {recipe.dataset}; use another --workdir")
    if evaluate_only:
        return
    model_cfg, train_cfg = recipe.configs()
    free = inference_fields(MODELS[recipe.model][0])
    for section, wanted in (("model_config", config_to_dict(model_cfg)), ("train_config", config_to_dict(train_cfg))):
        for field, value in wanted.items():
            have = record[section].get(field)
            if field not in free and have != value:
                raise GMJaxError(f"{workdir} holds a {recipe.model} run with {field}={have}, not recipe "
                                 f"{recipe.name}'s {value}; use another --workdir (or --evaluate-only to score it)")


def _inference_sets(recipe: Recipe) -> list[str]:
    """``--set`` flags of the recipe's inference settings (sampler spacing, estimator sizes): they apply to
    a run trained elsewhere too (a converted checkpoint, or the DDPM a DDIM recipe samples)."""
    from gm_jax.models import MODELS
    from gm_jax.models.base import inference_fields

    free = inference_fields(MODELS[recipe.model][0])
    return [a for k, s in recipe.model_sets.items() if k in free for a in ("--set", f"{k}={s.value}")]


def _evaluate(recipe: Recipe, evaluation: Evaluation, workdir: str, data_dir: str | None, weights: str | None,
              progress: bool, trained: bool) -> dict:
    common = [*_inference_sets(recipe), *(["--data-dir", data_dir] if data_dir else []),
              *([] if progress else ["--no-progress"])]
    if evaluation.metrics == "nll":
        path = os.path.join(workdir, "results.json")
        results = _read_json(path)
        if not trained or "test_nll_nats" not in results:  # not the trainer's own evaluation: evaluate now
            _gm_jax(["evaluate", "--workdir", workdir, *common])
            results = _read_json(path)
        return {k: results[k] for k in ("test_nll_nats", "test_bits_per_dim") if k in results}
    out = os.path.join(workdir, f"recipe_eval_{recipe.name}_{evaluation.name}.json")
    fake = workdir
    if evaluation.translate:  # a translation model: score its translations of the test images
        fake = os.path.join(workdir, f"recipe_translations_{recipe.name}_{evaluation.name}.npz")
        if not os.path.isfile(fake) or not os.path.isfile(out):
            _gm_jax(["sample", "--workdir", workdir, "--out", fake, "--num", str(evaluation.translate), *common])
    if not os.path.isfile(out):
        _gm_jax(["evaluate", "--metrics", evaluation.metrics, "--fake", fake, "--out", out, *evaluation.flags,
                 *(["--weights", weights] if weights else []), *common])
    return _read_json(out)


def comparison_table(recipe: Recipe, results: Mapping[str, dict]) -> str:
    """Markdown: each published number beside ours ("not yet run" where the evaluation has not run)."""
    lines = ["| number | paper | ours | source |", "|---|---|---|---|"]
    for p in recipe.published:
        ours = results.get(p.evaluation, {}).get(p.metric)
        ours = "not yet run" if ours is None else f"{ours:.4g}"
        lines.append(f"| {p.label} | {p.value:g} | {ours} | {p.source} |")
    return "\n".join(lines)


def reproduce(recipe: Recipe, workdir: str, *, config: str, data_dir: str | None = None, weights: str | None = None,
              progress: bool = True, train: bool = True) -> dict:
    """Trains (or resumes; ``train=False``: not) and evaluates ``recipe`` into ``workdir``; returns what
    ``recipe.json`` holds."""
    from gm_jax.data import load_dataset
    from gm_jax.train.loop import write_json

    spec = load_dataset(recipe.dataset, data_dir).spec
    if spec != recipe.spec:
        raise GMJaxError(f"{recipe.dataset} loads as {spec}, but recipe {recipe.name} is written for {recipe.spec}")
    if train:
        _train(recipe, workdir, data_dir, progress)
    results = {e.name: _evaluate(recipe, e, workdir, data_dir, weights, progress, train)
               for e in recipe.evaluations}
    record = {"recipe": recipe.name, "config": config, "dataset": recipe.dataset, "paper": recipe.paper,
              "num_params": recipe.num_params(),
              "evaluations": results,
              "published": [dataclasses.asdict(p) | {"ours": results[p.evaluation].get(p.metric)}
                            for p in recipe.published]}
    write_json(os.path.join(workdir, RESULTS_FILE), record)
    return record


def main(configs: Mapping[str, Recipe], argv=None, *, prog: str | None = None) -> int:
    """The command line of a recipe folder: ``--describe``, or train and evaluate ``--config``."""
    import sys

    from gm_jax.cli._common import Parser
    from gm_jax.data.loading import check_data_dir
    from gm_jax.train.rundir import check_writable

    name = next(iter(configs.values())).name
    parser = Parser(prog=prog or f"python -m experiments.{name}",
                    description=f"{next(iter(configs.values())).paper}: train and evaluate by the paper's protocol")
    default = next(iter(configs))
    parser.add_argument("--config", choices=tuple(configs), default=default,
                        help=f"the paper's settings ({', '.join(c for c in configs if c != 'smoke')}), or smoke: the "
                             f"same code path, tiny, on embedded data (default: {default})")
    parser.add_argument("--describe", action="store_true",
                        help="print the resolved config and parameter count; train nothing, read no data")
    parser.add_argument("--workdir", help="the run directory (default: runs/recipe_NAME_CONFIG); resumes")
    parser.add_argument("--data-dir", help="dataset cache (default: $GM_JAX_DATA_DIR or ~/.cache/gm_jax/datasets)")
    parser.add_argument("--weights", help="feature-network weights for FID/IS (default: the cache of "
                                          "`gm-jax inception`)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the run in --workdir as it is (e.g. a published checkpoint from `gm-jax "
                             "convert`); train nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    try:
        args = parser.parse_args(argv)
        recipe = configs[args.config]
        if args.describe:
            print(recipe.describe())
            return 0
        check_data_dir(args.data_dir)
        if args.weights is not None and not os.path.isfile(args.weights):
            raise GMJaxError(f"--weights {args.weights}: no such file; pass the Inception weights file "
                             "(`gm-jax inception --help`)")
        workdir = args.workdir or os.path.join("runs", f"recipe_{recipe.name}_{args.config}")
        check_writable(workdir)
        check_run(recipe, workdir, evaluate_only=args.evaluate_only)
        if args.evaluate_only and not os.path.isfile(os.path.join(workdir, "results.json")):
            raise GMJaxError(f"--evaluate-only: {workdir} holds no finished run (results.json); train it first or "
                             "convert a checkpoint into it (`gm-jax convert`)")
        record = reproduce(recipe, workdir, config=args.config, data_dir=args.data_dir, weights=args.weights,
                           progress=not args.no_progress, train=not args.evaluate_only)
    except GMJaxError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    if args.config == "smoke":
        print(f"smoke run: two training steps on the embedded {recipe.dataset}; its numbers test the code path and "
              "are not comparable with the paper's")
    print(comparison_table(recipe, record["evaluations"]))
    print(f"wrote {os.path.join(workdir, RESULTS_FILE)}")
    return 0
