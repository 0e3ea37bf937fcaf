"""Several training runs side by side (``gm-jax compare``): their results, their config differences and
their training and evaluation curves overlaid.

A run directory is what ``gm-jax train`` writes: ``config.json`` (``model``, ``dataset``, ``data_dir``,
``model_config``, ``train_config``), ``results.json`` (a flat dict, once training ends), ``metrics.jsonl``
(one JSON object per log point: ``step`` and numbers; evaluations during training add ``eval/...`` keys),
and ``evaluations.json`` (or a ``metrics.json``) when ``gm-jax evaluate`` wrote there: the numbers of each
evaluation, labelled with its features and checkpoint step (``fid [domain, step 300]``). Any other ``*.jsonl``
in the directory is read like ``metrics.jsonl``: every numeric key but ``step`` is a curve. A resumed run's config is the one it trained with last.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import numbers
import os

from gm_jax.errors import GMJaxError
from gm_jax.train.rundir import effective_model_config, effective_train_config

__all__ = ["Run", "compare", "load_run_records", "load_runs", "results_rows", "config_diff_rows", "format_table",
           "compare_table", "check_out_path", "plot_curves", "figure_pixels", "PANEL_PIXELS"]

CONFIG_FILE, RESULTS_FILE, METRICS_FILE, EVAL_METRICS_FILE = "config.json", "results.json", "metrics.jsonl", \
    "metrics.json"
EVALUATIONS_FILE = "evaluations.json"
PROVENANCE = ("seed", "num", "checkpoint_step")  # numbers in an evaluation record that are not results
# results listed first, in this order; the others follow as the runs give them
HEADLINE = ("model", "dataset", "steps", "num_params", "test_nll_nats", "test_bits_per_dim")
PANEL_PIXELS = (400, 300)  # one subplot's width and height in the PNG, at DPI
DPI = 100
MAX_COLUMNS = 3


@dataclasses.dataclass(frozen=True)
class Run:
    """One run directory, read: ``config`` flattened (``model_config.hidden``), ``results`` from
    results.json (and metrics.json), ``curves`` {metric: [(step, value), ...] sorted by step}."""

    name: str
    path: str
    config: dict
    results: dict
    curves: dict


# --------------------------------------------------------------------------------------------- reading
def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise GMJaxError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GMJaxError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _read_dict(path: str) -> dict:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise GMJaxError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _read_records(path: str) -> list[dict]:
    """The JSON objects of a ``.jsonl`` file, one per non-empty line, each with a numeric ``step``."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GMJaxError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise GMJaxError(f"{path} line {i} is not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or not _is_number(record.get("step")):
            raise GMJaxError(f"{path} line {i} must be a JSON object with a numeric 'step'")
        records.append(record)
    return records


def _curves(records: list[dict]) -> dict:
    """{metric: [(step, value)] sorted by step} of every numeric key but ``step``; a step logged twice
    (a resumed run) keeps its last value."""
    by_key: dict[str, dict] = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and _is_number(value):
                by_key.setdefault(key, {})[record["step"]] = float(value)
    return {key: sorted(points.items()) for key, points in by_key.items()}


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out


def _evaluation_label(record: dict) -> str:
    """What an evaluation's numbers were measured on, e.g. ``domain, step 300``: the same metric measured two
    ways is two rows, not one number silently replacing the other."""
    parts = [str(record["features"])] if record.get("features") else []
    if record.get("checkpoint_step") is not None:
        parts.append(f"step {record['checkpoint_step']}")
    return ", ".join(parts) or "evaluate"


def load_run_records(path: str, name: str | None = None) -> Run:
    """Reads run directory ``path``; one clear line (GMJaxError) if it is not a run or a file is corrupt."""
    if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
        raise GMJaxError(f"'{path}' is not a gm-jax run directory ({CONFIG_FILE} missing); "
                         f"`gm-jax train MODEL --workdir DIR` writes one")
    record = _read_dict(os.path.join(path, CONFIG_FILE))
    if isinstance(record.get("train_config"), dict) and isinstance(record.get("model_config"), dict):
        # the settings it ran with last (resumes applied)
        record = {**record, "train_config": effective_train_config(record), "model_config": effective_model_config(record)}
    config = _flatten({k: v for k, v in record.items() if k != "resumes"})
    results = {}
    evaluations = os.path.join(path, EVALUATIONS_FILE)
    if os.path.isfile(evaluations):  # `gm-jax evaluate` of the run: each evaluation's numbers, oldest first
        listed = _read_dict(evaluations).get("evaluations")
        if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
            raise GMJaxError(f"{evaluations} holds no list of evaluations; move it away")
        for record in listed:
            label = _evaluation_label(record)
            results.update({f"{k} [{label}]": v for k, v in record.items() if _is_number(v) and k not in PROVENANCE})
    for filename in (EVAL_METRICS_FILE, RESULTS_FILE):  # results.json wins a key both have
        if os.path.isfile(os.path.join(path, filename)):
            results.update(_read_dict(os.path.join(path, filename)))
    records = []
    for file in sorted(glob.glob(os.path.join(glob.escape(path), "*.jsonl"))):
        records += _read_records(file)
    name = name or os.path.basename(os.path.normpath(path))
    return Run(name, path, config, results, _curves(records))


def load_runs(paths) -> list[Run]:
    """:func:`load_run_records` of each path, named by its directory (by its path where two share a name)."""
    paths = list(paths)
    if not paths:
        raise GMJaxError("compare needs at least one run directory")
    normal = [os.path.normpath(p) for p in paths]
    twice = sorted({p for p in normal if normal.count(p) > 1})
    if twice:
        raise GMJaxError(f"run '{twice[0]}' is given twice")
    names = [os.path.basename(p) for p in normal]
    if len(set(names)) < len(names):
        names = normal
    return [load_run_records(p, n) for p, n in zip(paths, names)]


# -------------------------------------------------------------------------------------------- tables
def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_format_value(v) for v in value) + (",)" if len(value) == 1 else ")")
    return str(value)


def _cell(values: dict, key: str) -> str:
    return _format_value(values[key]) if key in values else "-"


def _union_keys(dicts) -> list[str]:
    keys = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    return list(keys)


def results_rows(runs: list[Run]) -> list[list[str]]:
    """One row per result key (the union over the runs; headline keys first): key, then each run's value
    ('-' where a run has none)."""
    keys = _union_keys(r.results for r in runs)
    keys = [k for k in HEADLINE if k in keys] + [k for k in keys if k not in HEADLINE]
    return [[key] + [_cell(r.results, key) for r in runs] for key in keys]


def config_diff_rows(runs: list[Run]) -> list[list[str]]:
    """One row per flattened config field whose value is not the same in every run ('-': absent)."""
    missing = object()
    rows = []
    for key in _union_keys(r.config for r in runs):
        values = [r.config.get(key, missing) for r in runs]
        if any(v != values[0] for v in values[1:]):
            rows.append([key] + [_cell(r.config, key) for r in runs])
    return rows


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Aligned columns: the first left-aligned, the others right-aligned."""
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])
                     for row in table)


def compare_table(runs: list[Run]) -> str:
    """The results table, then the table of the config fields that differ (or a line saying none do)."""
    header = ["run"] + [r.name for r in runs]
    results = results_rows(runs)
    parts = ["results", format_table(header, results) if results else "(no results.json yet)", ""]
    diffs = config_diff_rows(runs)
    if diffs:
        parts += ["config differences", format_table(["field"] + header[1:], diffs)]
    else:
        parts.append("config differences: none" + (" (one run)" if len(runs) == 1 else ""))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ plot
def check_out_path(path: str) -> None:
    """``--out``: a .png in an existing, writable directory (checked before anything is written)."""
    if os.path.splitext(path)[1].lower() != ".png":
        raise GMJaxError(f"--out must end in .png, got '{path}'")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GMJaxError(f"--out {path}: directory '{folder}' does not exist")
    if not os.access(folder, os.W_OK) or os.path.isdir(path):
        raise GMJaxError(f"--out {path}: cannot write there")


BOOKKEEPING = ("lr", "wall_s", "examples_per_s")  # curves about the run rather than the model: drawn last


def _metric_order(runs: list[Run]) -> list[str]:
    """The curves' keys: loss first, the other training curves, the evaluations (``eval/...``), then the
    bookkeeping (learning rates, wall time, examples/s); within each, in the order the runs give them."""
    keys = _union_keys(r.curves for r in runs)

    def group(key):
        if key == "loss":
            return 0
        if key.split("/")[-1] in BOOKKEEPING:
            return 3
        return 2 if key.startswith("eval") else 1
    return sorted(keys, key=lambda k: (group(k), keys.index(k)))


def figure_pixels(num_metrics: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG of ``num_metrics`` subplots (at most 3 per row)."""
    columns = min(MAX_COLUMNS, num_metrics)
    rows = math.ceil(num_metrics / columns)
    return columns * PANEL_PIXELS[0], rows * PANEL_PIXELS[1]


def plot_curves(runs: list[Run], path: str) -> list[str]:
    """Writes a PNG of one subplot per metric (step on x, one line per run, the runs named in a legend);
    returns the metrics plotted. Raises GMJaxError if no run has a curve."""
    from matplotlib.figure import Figure

    check_out_path(path)
    metrics = _metric_order(runs)
    if not metrics:
        raise GMJaxError(f"no run has {METRICS_FILE} records yet; nothing to plot (drop --out)")
    width, height = figure_pixels(len(metrics))
    columns = min(MAX_COLUMNS, len(metrics))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    axes = fig.subplots(math.ceil(len(metrics) / columns), columns, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for i, run in enumerate(runs):
            points = run.curves.get(metric)
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, color=f"C{i % 10}", label=run.name, marker="o" if len(points) <= 20 else None,
                        markersize=3)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.savefig(path, dpi=DPI)
    return metrics


# ----------------------------------------------------------------------------------------------- command
def compare(paths, out: str | None = None) -> str:
    """``gm-jax compare``: reads and checks every run (and ``out``) first, then writes the PNG of the
    curves to ``out`` if given; returns the text to print (the tables, then what was written)."""
    if out is not None:
        check_out_path(out)
    runs = load_runs(paths)
    if out is not None and not _metric_order(runs):
        raise GMJaxError(f"no run has {METRICS_FILE} records yet; nothing to plot (drop --out)")
    text = compare_table(runs)
    if out is not None:
        metrics = plot_curves(runs, out)
        text += f"\nwrote {out} ({', '.join(metrics)})"
    return text
