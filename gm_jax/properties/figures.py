"""The property table's figures, drawn from ``properties.json`` and the arrays its runs saved in
``OUT/figure_data``:

- ``samples.png``: one grid of 64 samples per family (its first seed), side by side;
- ``quality_vs_speed.png``: FID against samples per second (log scale), one point per family and sampler;
- ``strips.png``: per family with a latent code, decoded slerp interpolations between random codes (the top
  rows) and, below a gap for codes smaller than the data, single-coordinate traversals from -3 to 3;
- ``modes.png``: the samples of every family on each toy2d dataset (the mode-collapse picture).
"""

from __future__ import annotations

import math
import os

import numpy as np

from gm_jax.properties.families import FAMILIES
from gm_jax.properties.summary import summarise

__all__ = ["write_figures", "FIGURE_DATA", "figure_data_dir", "new_figure_data_dir"]

COLUMNS = 5
FIGURE_DATA = "figure_data"  # OUT/figure_data/<dataset>/<family>_s<seed>/: the arrays the figures draw


def new_figure_data_dir(out: str, dataset: str, name: str, seed: int) -> str:
    """Creates a run's figure-array folder in ``out`` (beside properties.json, so the figures redraw without
    the run directories) and returns it relative to ``out``, as the row records it."""
    relative = os.path.join(FIGURE_DATA, dataset.replace("/", "_"), f"{name}_s{seed}")
    os.makedirs(os.path.join(out, relative), exist_ok=True)
    return relative


def figure_data_dir(out: str, row: dict) -> str:
    """Where a row's figure arrays are: ``samples.npy``, ``strips.npz`` (image runs), ``points.npy`` (toy2d)."""
    return os.path.join(out, row["figure_data"])


def _first_seed_rows(rows: dict) -> dict:
    """{family (or (dataset, family)): the row of its lowest seed that did not diverge}."""
    out = {}
    for row in sorted(rows.values(), key=lambda r: r["seed"]):
        key = (row["dataset"], row["family"]) if "dataset" in row else row["family"]
        if not row["diverged"] and key not in out:
            out[key] = row
    return out


def _grid(samples: np.ndarray, num_levels: int) -> np.ndarray:
    """[N, H, W, C] integer images -> one [rows*H, cols*W] grey (or RGB) image in [0, 1], 8 per row."""
    n, h, w, c = samples.shape
    cols = 8
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * h, cols * w, c))
    for i, image in enumerate(samples.astype(np.float64) / (num_levels - 1)):
        r, q = divmod(i, cols)
        canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = image
    return canvas[..., 0] if c == 1 else canvas


def _figure(num_panels: int, panel=(2.4, 2.6)):
    from matplotlib.figure import Figure

    cols = min(COLUMNS, num_panels)
    rows = math.ceil(num_panels / cols)
    fig = Figure(figsize=(cols * panel[0], rows * panel[1]), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[num_panels:]:
        ax.set_visible(False)
    return fig, axes


def _with_file(rows: dict, out: str, name: str) -> dict:
    """The rows whose figure arrays include ``name``, mapped to that file's path."""
    paths = {key: os.path.join(figure_data_dir(out, row), name) for key, row in rows.items() if "figure_data" in row}
    return {key: path for key, path in paths.items() if os.path.isfile(path)}


def _family_panels(results: dict, out: str, name: str):
    """(first-seed rows, their ``name`` files, family names in table order) of the image runs that saved it."""
    first = _first_seed_rows(results.get("runs", {}))
    files = _with_file(first, out, name)
    return {n: first[n] for n in files}, files, [n for n in FAMILIES if n in files]


def _sample_grids(results: dict, out: str, path: str, num_levels: int) -> bool:
    rows, files, names = _family_panels(results, out, "samples.npy")
    if not names:
        return False
    fig, axes = _figure(len(names))
    for ax, name in zip(axes, names):
        samples = np.load(files[name])
        ax.imshow(_grid(samples, num_levels), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{name}\nFID {rows[name]['fid']:.3g}", fontsize=9)
        ax.axis("off")
    fig.savefig(path)
    return True


def _strip_canvas(strips) -> np.ndarray:
    """property_strips.npz -> one [rows*H, points*W] image in [0, 1]: interpolation rows, a blank row, then
    traversal rows (when saved)."""
    blocks = [strips["interpolations"]]
    if "traversals" in strips:
        blank = np.zeros((1,) + strips["interpolations"].shape[1:])  # white under gray_r
        blocks += [blank, strips["traversals"]]
    rows = np.concatenate(blocks)  # [R, points, H, W, C]
    r, p, h, w, c = rows.shape
    canvas = np.clip(rows, 0.0, 1.0).transpose(0, 2, 1, 3, 4).reshape(r * h, p * w, c)
    return canvas[..., 0] if c == 1 else canvas


def _strips(results: dict, out: str, path: str) -> bool:
    rows, files, names = _family_panels(results, out, "strips.npz")
    if not names:
        return False
    fig, axes = _figure(len(names), panel=(2.4, 3.4))
    for ax, name in zip(axes, names):
        with np.load(files[name]) as strips:
            ax.imshow(_strip_canvas(dict(strips)), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ppl = rows[name].get("ppl")
        ax.set_title(name if ppl is None else f"{name}\nPPL {ppl:.3g}", fontsize=9)
        ax.axis("off")
    fig.savefig(path)
    return True


def _quality_vs_speed(results: dict, path: str) -> bool:
    points = [(name, label, m["samples_per_s"][0], m["fid"][0])
              for name, s in summarise(results).items() for label, m in s["samplers"].items()
              if m.get("samples_per_s") and m.get("fid")]
    if not points:
        return False
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    groups = sorted({FAMILIES[n].group for n, *_ in points})
    for name, label, speed, fid in points:
        colour = f"C{groups.index(FAMILIES[name].group)}"
        ax.scatter(speed, fid, color=colour)
        ax.annotate(name if len(FAMILIES[name].samplers) == 1 else f"{name} ({label})", (speed, fid), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ref = results["reference"]["fid"]
    ax.axhline(ref, color="grey", linestyle="--", linewidth=1)
    ax.annotate("training split", (ax.get_xlim()[0], ref), fontsize=7, color="grey", xytext=(3, 3),
                textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("samples per second (log scale, after compilation)")
    ax.set_ylabel("FID on domain features (log scale; lower is better)")
    for i, group in enumerate(groups):
        ax.scatter([], [], color=f"C{i}", label=group)
    ax.legend(fontsize=8)
    fig.savefig(path)
    return True


def _modes(results: dict, out: str, path: str) -> bool:
    first = _first_seed_rows(results.get("points", {}))
    files = _with_file(first, out, "points.npy")
    rows = {key: first[key] for key in files}
    if not rows:
        return False
    keys = sorted(rows)
    fig, axes = _figure(len(keys), panel=(2.4, 2.6))
    for ax, key in zip(axes, keys):
        points = np.load(files[key])
        row = rows[key]
        ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.4)
        ax.set_xlim(-4.5, 4.5)
        ax.set_ylim(-4.5, 4.5)
        ax.set_aspect("equal")
        ax.set_title(f"{key[0]}: {key[1]}\n{row['modes_covered']}/{row['num_modes']} modes, "
                     f"{row['high_quality']:.0%} HQ", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path)
    return True


def write_figures(results: dict, out: str) -> list[str]:
    """Writes the figures that have data into ``out`` (from the arrays under ``out/figure_data``); returns
    their paths."""
    written = []
    levels = results.get("evaluator", {}).get("num_levels", 17)
    for name, draw in (("samples.png", lambda p: _sample_grids(results, out, p, levels)),
                       ("quality_vs_speed.png", lambda p: _quality_vs_speed(results, p)),
                       ("strips.png", lambda p: _strips(results, out, p)),
                       ("modes.png", lambda p: _modes(results, out, p))):
        path = os.path.join(out, name)
        if draw(path):
            written.append(path)
    return written
