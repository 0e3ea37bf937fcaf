"""``gm-jax compare``: run directories made by hand (no training), their tables, the curves' PNG and the
one-line errors (exit 2, nothing written)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from gm_jax import runs
from gm_jax.cli import main
from gm_jax.errors import GMJaxError


def make_run(root, name, *, lr=1e-3, hidden=(256, 256), results=None, records=None, extra_files=None):
    """A run directory as ``gm-jax train`` leaves it: config.json, results.json, metrics.jsonl."""
    path = root / name
    path.mkdir()
    config = {"model": "vae", "dataset": "digits", "data_dir": None,
              "model_config": {"latent_dim": 16, "hidden": list(hidden)}, "train_config": {"lr": lr, "steps": 300}}
    (path / "config.json").write_text(json.dumps(config))
    if results is not None:
        (path / "results.json").write_text(json.dumps(results))
    if records is not None:
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for filename, text in (extra_files or {}).items():
        (path / filename).write_text(text)
    return str(path)


def train_records(scale=1.0):
    return [{"step": s, "examples_per_s": 900.0, "loss": scale * 100.0 / s, "kl": 3.0} for s in (100, 200, 300)]


@pytest.fixture
def two_runs(tmp_path):
    a = make_run(tmp_path, "vae_a", results={"steps": 300, "test_nll_nats": 95.5, "num_params": 1234},
                 records=train_records())
    b = make_run(tmp_path, "vae_b", lr=3e-4, hidden=(512,),
                 results={"steps": 300, "test_nll_nats": 93.25, "num_params": 1234, "train_seconds_this_run": 12.5},
                 records=train_records(0.5) + [{"step": 300, "eval_nll": 91.0}])
    return a, b


def rows_by_key(rows):
    return {row[0]: row[1:] for row in rows}


def test_results_table_lists_the_union_of_result_keys(two_runs):
    loaded = runs.load_runs(two_runs)
    assert [r.name for r in loaded] == ["vae_a", "vae_b"]
    rows = runs.results_rows(loaded)
    assert [row[0] for row in rows[:3]] == ["steps", "num_params", "test_nll_nats"]  # headline keys first
    table = rows_by_key(rows)
    assert table["test_nll_nats"] == ["95.5", "93.25"]
    assert table["train_seconds_this_run"] == ["-", "12.5"]


def test_results_include_the_sample_metrics_that_evaluate_wrote(tmp_path):
    path = make_run(tmp_path, "gan", results={"steps": 10}, extra_files={"metrics.json": json.dumps({"fid": 3.25})})
    assert rows_by_key(runs.results_rows([runs.load_run_records(path)])) == {"steps": ["10"], "fid": ["3.25"]}


def test_evaluations_are_labelled_with_their_features_and_checkpoint(tmp_path):
    evaluations = {"evaluations": [
        {"metrics": ["fid"], "features": "domain", "checkpoint_step": 300, "seed": 0, "num": None, "fid": 2.5},
        {"metrics": ["fid"], "features": "inception", "checkpoint_step": 300, "seed": 0, "num": 64, "fid": 40.0},
        {"metrics": ["nll"], "checkpoint_step": 200, "seed": 0, "num": None, "test_nll_nats": 97.0}]}
    path = make_run(tmp_path, "gan", results={"steps": 300, "test_nll_nats": 95.0},
                    extra_files={"evaluations.json": json.dumps(evaluations)})
    table = rows_by_key(runs.results_rows([runs.load_run_records(path)]))
    # the same metric measured two ways is two rows; the step-300 results.json number stays unlabelled
    assert table == {"steps": ["300"], "test_nll_nats": ["95"], "fid [domain, step 300]": ["2.5"],
                     "fid [inception, step 300]": ["40"], "test_nll_nats [step 200]": ["97"]}


def test_curves_are_ordered_loss_training_evaluation_then_bookkeeping(tmp_path):
    records = [{"step": 10, "examples_per_s": 5.0, "lr": 1e-3, "eval/loss": 3.0, "kl": 1.0, "wall_s": 2.0,
                "loss": 4.0, "generator/lr": 1e-4, "eval/fid": 9.0, "recon": 3.0}]
    run = runs.load_run_records(make_run(tmp_path, "r", records=records))
    assert runs._metric_order([run]) == ["loss", "kl", "recon", "eval/loss", "eval/fid", "examples_per_s", "lr",
                                         "wall_s", "generator/lr"]


def test_config_table_lists_only_the_fields_that_differ(two_runs, tmp_path):
    c = make_run(tmp_path, "vae_c")
    with open(os.path.join(c, "config.json")) as f:
        config = json.load(f)
    del config["model_config"]["latent_dim"]  # an older run without a field: '-'
    with open(os.path.join(c, "config.json"), "w") as f:
        json.dump(config, f)
    table = rows_by_key(runs.config_diff_rows(runs.load_runs([*two_runs, c])))
    assert table == {"model_config.latent_dim": ["16", "16", "-"],
                     "model_config.hidden": ["(256, 256)", "(512,)", "(256, 256)"],
                     "train_config.lr": ["0.001", "0.0003", "0.001"]}


def test_compare_table_prints_both_tables(two_runs):
    text = runs.compare_table(runs.load_runs(two_runs))
    lines = text.splitlines()
    assert lines[0] == "results" and lines[1].split() == ["run", "vae_a", "vae_b"]
    assert "config differences" in lines
    diff = lines[lines.index("config differences") + 1:]
    assert [line.split()[0] for line in diff] == ["field", "model_config.hidden", "train_config.lr"]
    assert len({len(line) for line in lines[1:lines.index("")]}) == 1  # aligned columns


def test_one_run_or_equal_configs_have_no_differences(tmp_path):
    a = make_run(tmp_path, "a", results={"steps": 1})
    b = make_run(tmp_path, "b")
    assert runs.compare_table(runs.load_runs([a])).endswith("config differences: none (one run)")
    assert runs.compare_table(runs.load_runs([a, b])).endswith("config differences: none")
    assert rows_by_key(runs.results_rows(runs.load_runs([a, b]))) == {"steps": ["1", "-"]}


def test_runs_with_the_same_folder_name_are_named_by_path(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = make_run(tmp_path / "x", "vae"), make_run(tmp_path / "y", "vae")
    assert [r.name for r in runs.load_runs([a, b])] == [os.path.normpath(a), os.path.normpath(b)]


def test_curves_read_every_jsonl_and_keep_the_last_value_of_a_repeated_step(tmp_path):
    records = train_records() + [{"step": 200, "loss": 7.0, "note": "resumed"}]  # a resumed run logs 200 again
    path = make_run(tmp_path, "r", records=records,
                    extra_files={"eval.jsonl": '{"step": 300, "eval_fid": 4.5, "eval_split": "test"}\n\n'})
    curves = runs.load_run_records(path).curves
    assert set(curves) == {"examples_per_s", "loss", "kl", "eval_fid"}  # numbers only, step excluded
    assert curves["loss"] == [(100, 1.0), (200, 7.0), (300, 100.0 / 300)]
    assert curves["eval_fid"] == [(300, 4.5)]


def test_plot_writes_a_png_of_one_panel_per_metric_with_a_line_per_run(two_runs, tmp_path):
    out = str(tmp_path / "curves.png")
    metrics = runs.plot_curves(runs.load_runs(two_runs), out)
    assert metrics == ["loss", "kl", "eval_nll", "examples_per_s"]
    assert runs.figure_pixels(4) == (1200, 600) and runs.figure_pixels(2) == (800, 300)
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1200, 600)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):  # matplotlib's C0 and C1: both runs are drawn
        assert (np.abs(pixels - colour).sum(-1) < 30).sum() > 200


def test_cli_compare_prints_the_tables_and_writes_the_png(two_runs, tmp_path, capsys):
    out = tmp_path / "c.png"
    assert main(["compare", *two_runs, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test_nll_nats" in printed and "train_config.lr" in printed
    assert printed.rstrip().endswith(f"wrote {out} (loss, kl, eval_nll, examples_per_s)")
    with Image.open(out) as image:
        assert image.size == (1200, 600)
    assert main(["compare", two_runs[0]]) == 0  # no --out: tables only
    assert "wrote" not in capsys.readouterr().out


def _corrupt(name, text):
    def make(tmp_path):
        path = make_run(tmp_path, "bad", results={"steps": 1}, records=train_records())
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
        return [path]
    return make


BAD = {
    "not a run": (lambda tmp: [str(tmp)], "is not a gm-jax run directory (config.json missing)"),
    "missing dir": (lambda tmp: [str(tmp / "nope")], "is not a gm-jax run directory"),
    "corrupt config": (_corrupt("config.json", "{oops"), "config.json is not valid JSON"),
    "config not a dict": (_corrupt("config.json", "[1, 2]"), "config.json must hold a JSON object"),
    "corrupt results": (_corrupt("results.json", '{"steps": 1'), "results.json is not valid JSON"),
    "corrupt jsonl": (_corrupt("metrics.jsonl", '{"step": 1, "loss": 2}\n{"step": 2, "lo'), "line 2 is not valid JSON"),
    "record without step": (_corrupt("metrics.jsonl", '{"loss": 2}\n'), "line 1 must be a JSON object with a numeric"),
    "a run twice": (lambda tmp: [make_run(tmp, "a")] * 2, "is given twice"),
    "nothing to plot": (lambda tmp: [make_run(tmp, "a")], "no run has metrics.jsonl records yet"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_compare_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    make, message = BAD[case]
    paths = make(tmp_path)
    out = tmp_path / "c.png"
    assert main(["compare", *paths, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("out, message", [("missing/c.png", "does not exist"), ("c.jpg", "--out must end in .png")])
def test_cli_compare_bad_out_is_refused_before_reading_runs(two_runs, tmp_path, capsys, out, message):
    assert main(["compare", *two_runs, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / out).exists() and not (tmp_path / "missing").exists()
    assert main(["compare", str(tmp_path / "not_a_run"), "--out", str(tmp_path / out)]) == 2
    assert message in capsys.readouterr().err  # --out is checked first


def test_cli_compare_needs_a_run(capsys):
    assert main(["compare"]) == 2
    assert "required: RUN" in capsys.readouterr().err
    with pytest.raises(GMJaxError, match="at least one run"):
        runs.load_runs([])
