"""Exact-density benchmark on the toy2d datasets: test NLL of each likelihood model next to the true one.

Every model is trained with the library's trainer on the 10,000 training points of a dataset and scored
by its exact ``log_prob`` on the 5,000 test points. The floor is the true density's NLL on the *same*
test points (``gm_jax.data.toy2d.log_density``), so the gap "model - true" is a paired Monte-Carlo
estimate of KL(p_data || p_model) >= 0 with little noise; pinwheel has no closed-form density, so only the
model NLLs are shown for it. Each model's density is also integrated on a grid (a check that it is
normalised) and drawn as a heat map next to the true density.

    python experiments/toy2d/run.py --config cpu      # the table in README.md, minutes on 2 CPU cores
    python experiments/toy2d/run.py --config smoke    # a few steps of everything (what the tests run)

Runs resume: training again into the same ``--workdir`` skips finished runs, so disjoint ``--datasets``
subsets can run in parallel processes and a last full invocation assembles the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: make `experiments` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.toy2d.config import CONFIGS, Toy2dConfig  # noqa: E402
from gm_jax.data import load_dataset, toy2d  # noqa: E402
from gm_jax.models import MODELS, override  # noqa: E402
from gm_jax.train import TrainConfig, eval_variables, fit  # noqa: E402
from gm_jax.train.loop import restore_state, write_json  # noqa: E402

EXTENT = 4.5  # heat maps and the normalisation check cover [-EXTENT, EXTENT]^2
# Models scored by a bound (ddpm: -VLB, one noise draw per point): their grid "mass" integrates the
# exponential of a noisy lower bound, which is no normalisation check (Jensen: it can exceed 1).
BOUNDS = ("ddpm",)


def grid(bins: int, extent: float = EXTENT) -> tuple[np.ndarray, float]:
    """Cell centres [bins*bins, 2] of a square grid (row 0 at the top) and the cell area."""
    step = 2 * extent / bins
    c = -extent + step * (np.arange(bins) + 0.5)
    xx, yy = np.meshgrid(c, c[::-1])
    return np.stack([xx.ravel(), yy.ravel()], -1).astype(np.float32), step * step


def heat_map(log_p: np.ndarray, bins: int) -> np.ndarray:
    """log-densities on the grid -> uint8 image (dark = high density), linear in density."""
    p = np.exp(log_p - log_p.max()).reshape(bins, bins)
    return (255 * (1 - p)).astype(np.uint8)


def _grid_log_prob(model, variables, bins: int) -> tuple[np.ndarray, float]:
    points, area = grid(bins)
    fn = jax.jit(lambda v, x: model.log_prob(v, x, jax.random.key(0)))
    log_p = np.concatenate([np.asarray(fn(variables, jnp.asarray(chunk)), np.float64)
                            for chunk in np.array_split(points, max(1, len(points) // 4096))])
    return log_p, float(np.exp(log_p).sum() * area)


def run_one(model_name: str, dataset_name: str, cfg: Toy2dConfig, workdir: str, data_dir: str | None) -> dict:
    """Trains one model on one dataset (or reuses a finished run's ``row.json``); returns its table row."""
    row_path = os.path.join(workdir, "row.json")
    if os.path.isfile(row_path):
        with open(row_path) as f:
            return json.load(f)
    config_cls, model_cls = MODELS[model_name]
    model_cfg = override(config_cls(), cfg.model_sets.get(model_name, {}))
    dataset = load_dataset(f"toy2d/{dataset_name}", data_dir)
    model = model_cls(model_cfg, dataset.spec)
    train_cfg = override(TrainConfig(**getattr(model_cls, "default_train", {})),
                         {**cfg.train_sets, **cfg.model_train_sets.get(model_name, {})})
    t0 = time.perf_counter()
    results = fit(model, dataset, train_cfg, workdir, progress=False)
    seconds = time.perf_counter() - t0
    variables = eval_variables(restore_state(model, dataset, train_cfg, workdir))
    log_p, mass = _grid_log_prob(model, variables, cfg.grid_bins)
    np.save(os.path.join(workdir, "grid_log_prob.npy"), log_p)
    row = {"model": model_name, "dataset": dataset_name, "test_nll": results["test_nll_nats"],
           "bound": model_name in BOUNDS, "grid_mass": mass, "steps": train_cfg.steps, "seconds": seconds}
    write_json(row_path, row)
    return row


def true_nll(dataset_name: str, data_dir: str | None) -> float | None:
    """The true density's mean NLL on the test points (None where it is not known)."""
    if not toy2d.has_density(dataset_name):
        return None
    test = load_dataset(f"toy2d/{dataset_name}", data_dir).read("test")["point"]
    return float(-toy2d.log_density(dataset_name, test).mean())


def reproduce(cfg: Toy2dConfig, workdir: str, data_dir: str | None = None) -> list[dict]:
    """Runs every (dataset, model) pair of ``cfg``; writes results.json, table.md and densities.png."""
    os.makedirs(workdir, exist_ok=True)
    rows, panels = [], []
    for dataset_name in cfg.datasets:
        floor = true_nll(dataset_name, data_dir)
        row_panels = []
        if toy2d.has_density(dataset_name):
            row_panels.append(heat_map(toy2d.log_density(dataset_name, grid(cfg.grid_bins)[0]), cfg.grid_bins))
        else:
            row_panels.append(np.full((cfg.grid_bins, cfg.grid_bins), 255, np.uint8))
        for model_name in cfg.models:
            run_dir = os.path.join(workdir, f"{model_name}_{dataset_name}")
            row = run_one(model_name, dataset_name, cfg, run_dir, data_dir)
            row["true_nll"] = floor
            row["gap"] = None if floor is None else row["test_nll"] - floor
            rows.append(row)
            row_panels.append(heat_map(np.load(os.path.join(run_dir, "grid_log_prob.npy")), cfg.grid_bins))
            print(format_row(row), flush=True)
        panels.append(row_panels)
    write_json(os.path.join(workdir, "results.json"), {"config": cfg.name, "rows": rows})
    with open(os.path.join(workdir, "table.md"), "w") as f:
        f.write(table(rows, cfg) + "\n")
    Image.fromarray(mosaic(panels)).save(os.path.join(workdir, "densities.png"))
    return rows


def mosaic(panels: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Rows of equally sized grey images -> one image with grey gaps."""
    h, w = panels[0][0].shape
    ncols = max(len(r) for r in panels)
    out = np.full((len(panels) * (h + gap) + gap, ncols * (w + gap) + gap), 160, np.uint8)
    for i, r in enumerate(panels):
        for j, p in enumerate(r):
            out[gap + i * (h + gap):gap + i * (h + gap) + h, gap + j * (w + gap):gap + j * (w + gap) + w] = p
    return out


def format_row(row: dict) -> str:
    floor = "-" if row["true_nll"] is None else f"{row['true_nll']:.3f}"
    gap = "-" if row["gap"] is None else f"{row['gap']:+.3f}"
    return (f"{row['dataset']:>16} {row['model']:>12} {row['test_nll']:8.3f} {floor:>8} {gap:>8} "
            f"{row['grid_mass']:7.3f} {row['seconds']:7.0f}s")


def table(rows: list[dict], cfg: Toy2dConfig) -> str:
    """A markdown table: one line per dataset, test NLL of each model (gap to the true NLL in brackets)."""
    by = {(r["dataset"], r["model"]): r for r in rows}
    head = "| dataset | true NLL | " + " | ".join(cfg.models) + " |"
    lines = [head, "|" + "---|" * (2 + len(cfg.models))]
    for d in cfg.datasets:
        cells = []
        for m in cfg.models:
            r = by[(d, m)]
            cells.append(f"{r['test_nll']:.3f}" + ("" if r["gap"] is None else f" ({r['gap']:+.3f})"))
        floor = by[(d, cfg.models[0])]["true_nll"]
        lines.append(f"| {d} | {'-' if floor is None else f'{floor:.3f}'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    p.add_argument("--workdir", default=None, help="default: runs/toy2d_<config>")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--datasets", default=None, help="comma-separated subset of the config's datasets")
    p.add_argument("--models", default=None, help="comma-separated subset of the config's models")
    args = p.parse_args(argv)
    cfg = CONFIGS[args.config]
    for field in ("datasets", "models"):
        if getattr(args, field):
            subset = tuple(getattr(args, field).split(","))
            unknown = set(subset) - set(getattr(cfg, field))
            if unknown:
                p.error(f"--{field}: {', '.join(sorted(unknown))} not in config {cfg.name}")
            cfg = dataclasses.replace(cfg, **{field: subset})
    workdir = args.workdir or os.path.join("runs", f"toy2d_{cfg.name}")
    print(f"{'dataset':>16} {'model':>12} {'test NLL':>8} {'true':>8} {'gap':>8} {'mass':>7} {'time':>8}")
    reproduce(cfg, workdir, args.data_dir)
    print(f"\n{open(os.path.join(workdir, 'table.md')).read()}\nheat maps: {os.path.join(workdir, 'densities.png')}")


if __name__ == "__main__":
    main()
