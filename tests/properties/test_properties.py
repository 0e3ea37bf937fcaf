"""``gm-jax properties``: the quick config end to end (trained, measured, reported, resumed), and the verdict
rules on hand-made summaries."""

import json
import os

import pytest

from gm_jax.cli import main
from gm_jax.errors import GMJaxError
from gm_jax.properties import protocol, report
from gm_jax.properties.summary import summarise


def _run(tmp_path, *extra):
    return main(["properties", "--config", "quick", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
                 *extra])


@pytest.fixture(scope="module")
def quick_vae(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("props")
    assert _run(tmp, "--families", "vae") == 0
    return tmp


def test_quick_run_measures_every_property_of_a_family(quick_vae):
    results = json.loads((quick_vae / "o" / "properties.json").read_text())
    row = results["runs"]["vae/0"]
    for key in ("test_bits_per_dim", "likelihood_ms_per_example", "fid", "precision", "recall", "density",
                "coverage", "class_kl", "classes_under_half", "data_copying_ct", "ppl", "probe_accuracy",
                "train_seconds", "num_params"):
        assert row[key] is not None, key
    assert row["sampling"]["decoder mean"]["network_evaluations"] == 1
    assert row["sampling"]["decoder mean"]["samples_per_s"] > 0
    ref = results["reference"]
    assert ref["data_copying_ct"] < -5  # the training split copies itself
    assert 0 < ref["probe_accuracy"] <= 1
    point = results["points"]["eight_gaussians/maf/0"]
    assert point["num_modes"] == 8 and 0 <= point["modes_covered"] <= 8 and point["nll_gap_nats"] is not None
    md = (quick_vae / "o" / "properties.md").read_text()
    assert "| vae | bound |" in md and "Rules:" in md
    assert "| vae | decoder mean | " in md  # the table of every sampler
    assert "Only 1 of the 15 families are measured here" in md  # relative verdicts flagged
    for name in ("samples.png", "quality_vs_speed.png", "modes.png", "strips.png"):
        assert os.path.getsize(quick_vae / "o" / name) > 1000


def test_a_finished_run_is_not_redone_and_the_report_redraws(quick_vae, capsys):
    before = (quick_vae / "o" / "properties.json").read_text()
    assert _run(quick_vae, "--report-only") == 0
    assert (quick_vae / "o" / "properties.json").read_text() == before
    assert "| vae |" in capsys.readouterr().out


@pytest.mark.parametrize("extra,message", [
    (["--families", "glow"], "--families glow: choose from the config's"),
    (["--seeds", "x"], "expected comma-separated integers"),
    (["--report-only"], "holds no property-table results"),
    (["--report-only", "--families", "vae"], "--families and --seeds choose what to train"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    assert _run(tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_the_whole_quick_config_runs(tmp_path):
    assert _run(tmp_path) == 0
    runs = json.loads((tmp_path / "o" / "properties.json").read_text())["runs"]
    assert set(runs) == {"vae/0", "made/0", "ddpm/0", "dcgan/0"} and not any(r["diverged"] for r in runs.values())


def test_verdicts_follow_the_rules():
    def stat(v):
        return (v, None)
    summary = {
        "a": {"likelihood": "exact", "diverged": 0, "samplers": {"s": {"samples_per_s": stat(1000.0)}},
              "fid": (2.0, 0.1), "recall": stat(0.9), "classes_under_half": stat(0), "likelihood_ms_per_example":
              stat(1.0), "ppl": stat(1.0), "latent_dims": stat(4), "probe_accuracy": stat(0.95)},
        "b": {"likelihood": "none", "diverged": 1, "samplers": {"s": {"samples_per_s": stat(5.0)}},
              "fid": (20.0, 1.0), "recall": stat(0.9), "classes_under_half": stat(2), "likelihood_ms_per_example":
              None, "ppl": stat(10.0), "latent_dims": stat(4), "probe_accuracy": None},
    }
    summary["c"] = {**summary["a"], "ppl": stat(1.0)}  # the median path length is then 1: b's 10 is above 2x
    # log p within two orders of magnitude of the cheapest (a: 1 ms) is efficient, as sampling is
    summary["d"] = {**summary["a"], "likelihood_ms_per_example": stat(99.0)}
    summary["e"] = {**summary["a"], "likelihood_ms_per_example": stat(101.0)}
    v = report.verdicts(summary, {"fid": 1.0, "probe_accuracy": 0.9})
    assert v["a"] == {"probabilistic": True, "efficient_sampling": True, "high_quality_samples": True, "coverage": True,
                      "well_behaved_latent": True, "interpretable_latent": True, "efficient_likelihood": True,
                      "stable_training": True}
    assert v["b"] == {"probabilistic": False, "efficient_sampling": False, "high_quality_samples": False,
                      "coverage": False, "well_behaved_latent": False, "interpretable_latent": None,
                      "efficient_likelihood": False, "stable_training": False}
    assert v["d"]["efficient_likelihood"] and not v["e"]["efficient_likelihood"]
    unstable = report.verdicts({"a": {**summary["a"], "non_finite_fid": 1}}, {"fid": 1.0, "probe_accuracy": 0.9})
    assert unstable["a"]["stable_training"] is False


def test_the_summary_keeps_the_familys_sampler_order():
    """properties.json sorts its keys ("ddim 50" before "ddpm"); the default sampler is still ddpm's first."""
    m = {"samples_per_s": 1.0, "network_evaluations": 1, "fid": 1.0}
    rows = {"ddpm/0": {"family": "ddpm", "seed": 0, "diverged": False, "sampling": {"ddim 50": m, "ddpm": m}}}
    assert list(summarise({"runs": rows})["ddpm"]["samplers"]) == ["ddpm", "ddim 50"]


def test_a_row_measured_with_other_settings_is_refused(quick_vae, tmp_path, capsys):
    results = json.loads((quick_vae / "o" / "properties.json").read_text())
    results["runs"]["vae/0"]["sets"]["steps"] = "99"
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "properties.json").write_text(json.dumps(results))
    assert _run(tmp_path, "--families", "vae") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vae/0 was measured with other settings" in err[0] and "steps=99" in err[0], err
    assert not (tmp_path / "w").exists()


def test_a_run_directory_trained_with_other_settings_is_refused(tmp_path):
    (tmp_path / protocol.SETS_FILE).write_text(json.dumps({"steps": "5"}))
    with pytest.raises(GMJaxError, match="trained with other settings .steps=5. than the config's .steps=3."):
        protocol.train_family(lambda argv: pytest.fail("trained"), "vae", "digits", {"steps": "3"}, 0,
                              str(tmp_path))


@pytest.mark.parametrize("damage,message", [
    (lambda r: r.update(config="cpu"), "config has no name"),
    (lambda r: r.update(runs=[]), "runs is not a mapping"),
    (lambda r: r["runs"]["vae/0"].pop("family"), "runs row vae/0 lacks family"),
    (lambda r: r["runs"]["vae/0"].update(family="foo"), "unknown family 'foo'"),
    (lambda r: r["runs"]["vae/0"].pop("sampling"), "runs row vae/0 has no sampling measurements"),
])
def test_a_damaged_results_file_is_one_line(quick_vae, tmp_path, capsys, damage, message):
    results = json.loads((quick_vae / "o" / "properties.json").read_text())
    damage(results)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "properties.json").write_text(json.dumps(results))
    assert _run(tmp_path, "--report-only") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a property-table results file" in err[0] and message in err[0], err


def test_rows_of_families_left_out_are_kept_not_refused():
    """--families made on an --out holding a vae row measured otherwise: only rows of the measured families
    are checked against the config's settings."""
    import dataclasses

    from gm_jax.properties.config import CONFIGS

    quick = CONFIGS["quick"]
    results = {"runs": {"vae/0": {"family": "vae", "seed": 0, "diverged": False, "sets": {"steps": "99"}}}}
    only_made = dataclasses.replace(quick, families=("made",), sets={"made": quick.sets["made"]})
    protocol.check_rows("o", results, only_made)
    with pytest.raises(GMJaxError, match="vae/0 was measured with other settings"):
        protocol.check_rows("o", results, quick)


def test_a_finished_run_the_table_did_not_train_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"steps": 3}))
    with pytest.raises(GMJaxError, match="holds a run the property table did not train"):
        protocol.train_family(lambda argv: pytest.fail("trained"), "vae", "digits", {"steps": "3"}, 0,
                              str(tmp_path))
    (tmp_path / protocol.SETS_FILE).write_text("{trunc")
    with pytest.raises(GMJaxError, match="is unreadable"):
        protocol.train_family(lambda argv: pytest.fail("trained"), "vae", "digits", {"steps": "3"}, 0,
                              str(tmp_path))


def _one_line_and_nothing_written(tmp_path, capsys, message):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists() or not any(p.name != "properties.json" for p in (tmp_path / "o").iterdir())


def test_a_run_directory_trained_otherwise_is_refused_before_anything_is_written(tmp_path, capsys):
    """The evaluator's classifier is not trained (nor --out made) before every pending run folder is checked."""
    run_dir = tmp_path / "w" / "digits" / "vae_s0"
    run_dir.mkdir(parents=True)
    (run_dir / protocol.SETS_FILE).write_text(json.dumps({"steps": "5"}))
    assert _run(tmp_path, "--families", "vae") == 2
    _one_line_and_nothing_written(tmp_path, capsys, "was trained with other settings (steps=5)")
    assert not (tmp_path / "o").exists()


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert _run(tmp_path, "--families", "vae", "--data-dir", str(tmp_path / "f")) == 2
    _one_line_and_nothing_written(tmp_path, capsys, "is a file, not a folder; pass a folder as --data-dir")
    assert not (tmp_path / "o").exists()


def test_a_results_path_that_is_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "o" / "properties.json").mkdir(parents=True)
    assert _run(tmp_path, "--families", "vae") == 2
    _one_line_and_nothing_written(tmp_path, capsys, "properties.json is not a file; move it away")


def test_report_only_refuses_another_configs_results(quick_vae, tmp_path, capsys):
    results = json.loads((quick_vae / "o" / "properties.json").read_text())
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "properties.json").write_text(json.dumps(results))
    assert main(["properties", "--report-only", "--out", str(tmp_path / "o"), "--config", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds config 'quick', not 'cpu'" in err[0], err
