"""Paper recipes (experiments/<method>_<dataset>/, issue 16): every config resolves and describes itself
without data, parameter counts equal the papers' where they state one, READMEs are those of the configs, bad
input is refused in one line before anything is written, and the smoke configs run the whole path."""

import contextlib
import io
import json
import os

import numpy as np
import pytest

from experiments.recipe import Recipe, comparison_table, main
from experiments.update_recipe_readmes import HERE, readme_of, recipe_folders

FOLDERS = recipe_folders()


def _configs(name):
    import importlib

    return importlib.import_module(f"experiments.{name}.config").CONFIGS


def _run(configs, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(configs, argv)
    return code, out.getvalue(), err.getvalue()


def test_the_issue_recipes_have_folders():
    assert {"ddpm_cifar10", "iddpm_cifar10", "ddim_cifar10", "score_sde_cifar10", "ncsn_cifar10", "glow_cifar10",
            "wgan_gp_cifar10", "sngan_cifar10", "iwae_mnist", "dcgan_cifar10", "realnvp_cifar10",
            "gated_pixelcnn_cifar10", "pixelcnn_pp_cifar10", "cyclegan_horse2zebra"} <= set(FOLDERS)


@pytest.mark.parametrize("name", FOLDERS)
def test_describe_resolves_every_config_without_data(name, monkeypatch, tmp_path):
    monkeypatch.setenv("GM_JAX_DATA_DIR", str(tmp_path / "no_data_here"))
    configs = _configs(name)
    assert "smoke" in configs and len(configs) >= 2
    for config, recipe in configs.items():
        assert isinstance(recipe, Recipe) and recipe.name == name
        code, out, err = _run(configs, ["--describe", "--config", config])
        assert code == 0, err
        assert f"parameters: {recipe.num_params():,}" in out
        for field, setting in {**recipe.model_sets, **recipe.train_sets}.items():
            assert setting.source and f"  {field} " in out  # every setting printed beside its source
        if config != "smoke":  # the paper's evaluation, sample counts and references included
            assert recipe.evaluations and recipe.spec.name == recipe.dataset
    assert not (tmp_path / "no_data_here").exists()


@pytest.mark.parametrize("name", [n for n in FOLDERS if any(r.paper_num_params for r in _configs(n).values())])
def test_parameter_counts_equal_the_papers(name):
    for recipe in _configs(name).values():
        if recipe.paper_num_params is not None:
            assert recipe.num_params() == recipe.paper_num_params


@pytest.mark.parametrize("name", FOLDERS)
def test_readme_is_that_of_the_config(name):
    with open(os.path.join(HERE, name, "README.md")) as f:
        text = f.read()
    assert text == readme_of(name), f"run `python experiments/update_recipe_readmes.py` ({name}/README.md is stale)"
    for config, recipe in _configs(name).items():
        if config != "smoke" and recipe.published:
            assert comparison_table(recipe, {}).splitlines()[0] in text
            for p in recipe.published:
                assert f"| {p.label} | {p.value:g} |" in text


def test_experiments_readme_lists_every_recipe():
    from experiments.update_recipe_readmes import experiments_readme

    with open(os.path.join(HERE, "README.md")) as f:
        text = f.read()
    assert experiments_readme(text) == text, "run `python experiments/update_recipe_readmes.py`"
    for name in FOLDERS:
        assert f"`{name}/`" in text


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    configs = _configs("glow_cifar10")
    work = tmp_path / "run"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for argv, words in ((["--config", "nope"], "invalid choice: 'nope'"),
                        (["--config", "smoke", "--data-dir", str(a_file)], "--data-dir"),
                        (["--config", "smoke", "--weights", str(tmp_path / "missing.npz")], "--weights"),
                        (["--config", "smoke", "--workdir", str(a_file / "run")], "is a file"),
                        (["--config", "smoke", "--evaluate-only"], "holds no finished run")):
        code, out, err = _run(configs, [*argv, "--workdir", str(work)] if "--workdir" not in argv else argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert not work.exists()


def _smoke(name, tmp_path):
    work = tmp_path / name
    code, out, err = _run(_configs(name), ["--config", "smoke", "--workdir", str(work), "--no-progress"])
    assert code == 0, err[-2000:]
    record = json.loads((work / "recipe.json").read_text())
    recipe = _configs(name)["smoke"]
    assert set(record["evaluations"]) == {e.name for e in recipe.evaluations}
    for evaluation, numbers in record["evaluations"].items():  # smoke: FID or the NLL, measured and finite
        value = numbers.get("fid", numbers.get("test_nll_nats"))
        assert value is not None and np.isfinite(value), (evaluation, numbers)
    assert (work / "config.json").exists()  # an ordinary gm-jax run: `gm-jax sample|evaluate` read it
    # a second invocation trains nothing and re-reads the recorded evaluations
    code, out2, _ = _run(_configs(name), ["--config", "smoke", "--workdir", str(work), "--no-progress"])
    assert code == 0 and out.endswith(out2) and out2.startswith("smoke run:") and "| number" in out2
    return record


def test_smoke_recipe_trains_and_evaluates_end_to_end(tmp_path):
    """The default suite runs one recipe's whole path (glow: train, then the likelihood evaluation)."""
    record = _smoke("glow_cifar10", tmp_path)
    assert 0 < record["evaluations"]["nll"]["test_bits_per_dim"] < 20
    # another recipe's finished run, or this recipe's with other settings, is refused, not scored as this one
    from experiments.recipe import Setting

    work = str(tmp_path / "glow_cifar10")
    other = {"smoke": _configs("glow_cifar10")["smoke"].replace(model_sets={"channels": Setting("4", "test")})}
    for configs, words in ((_configs("sngan_cifar10"), "holds a glow run on digits, not recipe sngan_cifar10's"),
                           (other, "holds a glow run with channels=8, not recipe glow_cifar10's 4")):
        code, out, err = _run(configs, ["--config", "smoke", "--workdir", work])
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "glow_cifar10" / "results.json").write_text("{oops")
    code, out, err = _run(_configs("glow_cifar10"), ["--config", "smoke", "--workdir", work, "--evaluate-only"])
    assert code == 2 and "results.json is damaged" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in FOLDERS if n != "glow_cifar10"])
def test_every_smoke_recipe_runs(name, tmp_path):
    _smoke(name, tmp_path)
