"""Every experiment recipe's smoke config runs end to end."""

import json
import os

import numpy as np
import pytest

from experiments.toy2d import run as toy2d_run
from experiments.toy2d.config import CONFIGS


def test_toy2d_grid_covers_the_box_and_integrates_a_gaussian():
    points, area = toy2d_run.grid(100)
    assert points.shape == (10_000, 2) and np.isclose(area * 10_000, (2 * toy2d_run.EXTENT) ** 2)
    assert points[0, 1] > 0 > points[-1, 1]  # row 0 is the top of the picture
    log_p = -0.5 * (points**2).sum(-1) - np.log(2 * np.pi)
    assert np.exp(log_p).sum() * area == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow  # ~45 s (flows) and ~60 s (diffusion) on 2 cores; every model is tested on its own elsewhere
@pytest.mark.parametrize("name", ["smoke", "smoke_diffusion"])
def test_toy2d_smoke_config_runs_end_to_end(tmp_path, data_dir, name):
    cfg = CONFIGS[name]
    rows = toy2d_run.reproduce(cfg, str(tmp_path), data_dir)
    assert [(r["dataset"], r["model"]) for r in rows] == [(d, m) for d in cfg.datasets for m in cfg.models]
    for r in rows:
        assert np.isfinite(r["test_nll"]) and r["gap"] == pytest.approx(r["test_nll"] - r["true_nll"])
        # every flow is a normalised density: nearly all its mass lies in the plotted box (the diffusion
        # models are 3 steps from their initialisation here: a bound, and an ODE density of a blurry net)
        if name == "smoke":
            assert 0.9 < r["grid_mass"] < 1.01, r
        assert r["bound"] == (r["model"] == "ddpm")
    with open(tmp_path / "results.json") as f:
        assert len(json.load(f)["rows"]) == len(rows)
    table = (tmp_path / "table.md").read_text().splitlines()
    assert len(table) == 2 + len(cfg.datasets) and all(m in table[0] for m in cfg.models)
    assert os.path.getsize(tmp_path / "densities.png") > 0
