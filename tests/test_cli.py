import json
import os

import numpy as np
import pytest

from gm_jax.cli import main


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv,message", [
    (["train", "no_such_model"], "unknown model 'no_such_model'"),
    (["train", "vae", "--set", "no_field=1"], "unknown config field 'no_field'"),
    (["train", "vae", "--set", "latent_dim=abc"], "latent_dim=abc: expected a value of type int"),
    (["train", "vae", "--set", "likelihood=poisson"], "choose one of discretized_logistic"),
    (["train", "vae", "--set", "latent_dim=0"], "VAEConfig: latent_dim must be >= 1, got 0"),
    (["train", "vae", "--set", "hidden=64,0"], "VAEConfig: hidden widths must be >= 1, got (64, 0)"),
    (["train", "dcgan", "--set", "lr=0"], "TrainConfig: lr must be > 0, got 0.0"),
    (["train", "vae", "--set", "latent_dim"], "--set expects field=value"),
    (["train", "vae", "--steps", "0"], "steps must be >= 1"),
    (["train", "vae", "--dataset", "no_such_data"], "unknown dataset 'no_such_data'"),
    (["sample", "--workdir", "/nonexistent/run", "--out", "x.png"], "no gm-jax run in '/nonexistent/run'"),
    (["sample", "--workdir", "/nonexistent/run", "--out", "x.jpg"], "--out must end in .png or .npz"),
    (["evaluate", "--workdir", "/nonexistent/run"], "no gm-jax run"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["train", "vae", "--set", "seed=99999999999999999999"], "seed must be in [0, 2**31)"),
    (["sample", "--workdir", "r", "--out", "x.png", "--seed", "99999999999999999999"], "--seed must be in [0, 2**31)"),
    (["train", "vae", "--set", "hidden=16,,16"], "hidden=16,,16: an empty item"),
    (["train", "vae", "--set", "hidden=", "--set", "architecture=conv"], "architecture=conv needs one hidden width"),
    (["evaluate", "--metrics", "fid", "--fake", "digits", "--real", "digits:test", "--out", "/"],
     "--out / is a directory"),
    (["sample", "--workdir", "/nonexistent/run", "--out", "/nonexistent/dir/x.png"], "does not exist; create it"),
    (["evaluate", "--metrics", "fid", "--fake", "digits", "--real", "digits:test", "--out", "/nonexistent/m.json"],
     "--out /nonexistent/m.json: the directory /nonexistent does not exist"),
    (["evaluate", "--metrics", "fid", "--fake", "digits", "--real", "digits:test", "--save-real-stats",
      "/nonexistent/s.npz"], "--save-real-stats /nonexistent/s.npz: the directory"),
    (["evaluate", "--metrics", "fid", "--fake", "digits", "--real", "digits:test", "--step", "3",
      "--out", "/tmp/m.json"], "--step picks a checkpoint of a run"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith("gm-jax: error: ") and message in line, line


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vae" in out and "digits" in out and "toy2d/moons" in out


def test_train_sample_evaluate_round_trip(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    sets = ["--set", "hidden=32", "--set", "latent_dim=4", "--set", "batch_size=32",
            "--set", "eval_importance_samples=4", "--set", "log_every=10", "--set", "num_samples=16"]
    assert main(["train", "vae", "--dataset", "digits", "--steps", "20", "--workdir", workdir,
                 "--no-progress", *sets]) == 0
    out = capsys.readouterr().out
    assert "test_bits_per_dim" in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 20 and results["model"] == "vae" and results["dataset"] == "digits"

    assert main(["sample", "--workdir", workdir, "--num", "9", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["samples"].shape == (9, 8, 8, 1) and z["samples"].dtype == np.uint8
    assert main(["sample", "--workdir", workdir, "--num", "9", "--out", str(tmp_path / "s.png"),
                 "--mode", "sample"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0

    (tmp_path / "run" / "results.json").write_text("{}")
    assert main(["evaluate", "--workdir", workdir]) == 0
    again = json.loads((tmp_path / "run" / "results.json").read_text())
    for key in ("model", "dataset", "steps", "num_params", "test_nll_nats", "test_bits_per_dim"):
        assert again[key] == results[key], key

    # Sample-quality metrics of the run (samples drawn inside the extraction) and of the written samples.
    assert main(["evaluate", "--metrics", "nll,fid,prdc", "--fake", workdir, "--real", "digits:test",
                 "--features", "raw", "--num", "40", "--batch-size", "16"]) == 0
    evaluations = json.loads((tmp_path / "run" / "evaluations.json").read_text())["evaluations"]
    assert len(evaluations) == 1
    metrics = evaluations[0]
    assert metrics["checkpoint_step"] == 20 and metrics["seed"] == 0 and metrics["features"] == "raw"
    assert metrics["metrics"] == ["nll", "fid", "prdc"] and metrics["sampler"] == {} and metrics["gm_jax_version"]
    assert metrics["num_fake"] == metrics["num_real"] == 40 and metrics["fid"] > 0 and 0 <= metrics["recall"] <= 1
    assert metrics["test_nll_nats"] == pytest.approx(results["test_nll_nats"], rel=1e-6)  # same key, same data
    assert main(["evaluate", "--metrics", "fid", "--fake", str(tmp_path / "s.npz"), "--real", "digits:test",
                 "--features", "raw", "--out", str(tmp_path / "m.json")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        fake = z["samples"].reshape(9, -1) / 16.0
    from gm_jax.data import load_dataset
    from gm_jax.metrics import fid

    test = load_dataset("digits").read("test")["image"].reshape(-1, 64) / 16.0
    assert json.loads((tmp_path / "m.json").read_text())["fid"] == pytest.approx(fid(fake, test), rel=1e-6)

    # Resuming with more steps continues from the checkpoint; another model in the same dir is refused.
    assert main(["train", "vae", "--dataset", "digits", "--steps", "30", "--workdir", workdir, "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["steps"] == 30
    capsys.readouterr()
    assert main(["train", "vae", "--dataset", "toy2d/moons", "--workdir", workdir]) == 2
    assert "holds a vae run on digits" in _error_line(capsys)

    # --step picks an older checkpoint; its numbers go to evaluations.json beside the others, not results.json.
    assert main(["sample", "--workdir", workdir, "--num", "4", "--step", "20", "--out", str(tmp_path / "o.npz")]) == 0
    assert main(["evaluate", "--workdir", workdir, "--step", "20"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["steps"] == 30
    evaluations = json.loads((tmp_path / "run" / "evaluations.json").read_text())["evaluations"]
    assert [(e["metrics"], e["checkpoint_step"]) for e in evaluations] == [(["nll", "fid", "prdc"], 20), (["nll"], 20)]
    assert evaluations[1]["test_nll_nats"] == pytest.approx(results["test_nll_nats"], rel=1e-6)
    assert main(["evaluate", "--workdir", workdir, "--step", "20"]) == 0  # the same kind again: replaced
    assert len(json.loads((tmp_path / "run" / "evaluations.json").read_text())["evaluations"]) == 2
    capsys.readouterr()
    assert main(["sample", "--workdir", workdir, "--step", "25", "--out", str(tmp_path / "o.npz")]) == 2
    assert "no checkpoint of step 25" in _error_line(capsys)
    if os.geteuid() != 0:  # root writes through any mode bits; tests/train/test_rundir.py covers a file in the way
        os.chmod(workdir, 0o555)
        try:
            assert main(["evaluate", "--workdir", workdir]) == 2
            assert "is not writable" in _error_line(capsys)
        finally:
            os.chmod(workdir, 0o755)


def test_diffusion_sampler_flags(tmp_path, capsys):
    workdir = str(tmp_path / "ddpm")
    sets = ["--set", "num_steps=50", "--set", "hidden=16", "--set", "embed_dim=8", "--set", "batch_size=32",
            "--set", "log_every=2", "--set", "num_samples=4", "--set", "eval_max_examples=32"]
    assert main(["train", "ddpm", "--dataset", "toy2d/moons", "--steps", "2", "--workdir", workdir,
                 "--no-progress", *sets]) == 0
    capsys.readouterr()
    out = str(tmp_path / "s.npz")
    assert main(["sample", "--workdir", workdir, "--num", "5", "--out", out, "--sampler", "ddim", "--steps", "5"]) == 0
    with np.load(out) as z:
        assert z["samples"].shape == (5, 2) and np.isfinite(z["samples"]).all()
    # drawn in batches (a bar advances per batch); batch i's samples depend only on the seed, i and the batch size
    batched = {}
    for num in (5, 2):
        assert main(["sample", "--workdir", workdir, "--num", str(num), "--batch-size", "2", "--out", out,
                     "--sampler", "ddim", "--steps", "5", "--no-progress"]) == 0
        with np.load(out) as z:
            batched[num] = z["samples"]
    assert batched[5].shape == (5, 2) and len(np.unique(batched[5], axis=0)) == 5
    np.testing.assert_array_equal(batched[5][:2], batched[2])
    # --set changes an inference setting for this command only: another DDIM spacing, other samples
    spaced = {}
    for spacing in ("uniform", "linspace"):  # linspace ends at step 49, uniform and quad at 40
        assert main(["sample", "--workdir", workdir, "--num", "2", "--batch-size", "2", "--out", out, "--sampler",
                     "ddim", "--steps", "5", "--set", f"timestep_spacing={spacing}", "--no-progress"]) == 0
        with np.load(out) as z:
            spaced[spacing] = z["samples"]
    np.testing.assert_array_equal(spaced["uniform"], batched[2])
    assert not np.allclose(spaced["linspace"], batched[2])
    capsys.readouterr()
    for flags, message in ((["--set", "num_steps=10"], "--set num_steps: only inference settings change"),
                           (["--set", "timestep_spacing=cubic"], "timestep_spacing"),
                           (["--guidance", "2"], "needs a conditional model"), (["--sampler", "pc"], "ddpm or ddim"),
                           (["--steps", "0"], "--steps must be >= 1"), (["--batch-size", "0"], "--batch-size must be"), (["--temperature", "1"], "takes no --temperature"),
                           (["--guidance", "nan"], "--guidance must be a finite number >= 0, got nan"),
                           (["--temperature", "inf"], "--temperature must be a finite number >= 0, got inf")):
        assert main(["sample", "--workdir", workdir, "--out", out, *flags]) == 2
        assert message in _error_line(capsys), flags


@pytest.mark.parametrize("name", ["dcgan", pytest.param("wgan_gp", marks=pytest.mark.slow),
                                  pytest.param("sngan", marks=pytest.mark.slow),
                                  pytest.param("stylegan_small", marks=pytest.mark.slow)])
def test_gan_train_sample_grid_and_interpolation_strips(tmp_path, capsys, name):
    """Each GAN preset trains through the CLI (tiny widths, 2 steps) on digits; `sample` writes a grid and
    interpolation strips; a GAN has no likelihood and other models have no latent interpolation."""
    from PIL import Image

    workdir = str(tmp_path / name)
    sets = ["--set", "width=8", "--set", "latent_dim=4", "--set", "mapping_layers=1", "--set", "batch_size=8",
            "--set", "log_every=1", "--set", "num_samples=4", "--set", "n_critic=2"]
    assert main(["train", name, "--dataset", "digits", "--steps", "2", "--workdir", workdir, "--no-progress",
                 *sets]) == 0
    with open(tmp_path / name / "metrics.jsonl") as f:
        record = json.loads(f.readlines()[-1])
    assert {"discriminator/loss", "generator/loss"} <= set(record) and np.isfinite(record["generator/loss"])
    capsys.readouterr()
    grid, strips = str(tmp_path / "grid.png"), str(tmp_path / "strips.png")
    assert main(["sample", "--workdir", workdir, "--num", "6", "--out", grid]) == 0
    assert main(["sample", "--workdir", workdir, "--num", "3", "--interpolate", "5", "--out", strips]) == 0
    # 3 rows of 5 8x8 images with 1-pixel borders, scaled 4x (image_grid).
    assert Image.open(strips).size == (4 * (5 * 9 + 1), 4 * (3 * 9 + 1))
    capsys.readouterr()
    assert main(["sample", "--workdir", workdir, "--out", strips, "--interpolate", "1"]) == 2
    assert "--interpolate must be >= 2" in _error_line(capsys)
    assert main(["evaluate", "--workdir", workdir]) == 2
    assert "has no likelihood to evaluate; for sample quality use --metrics fid,prdc" in _error_line(capsys)


@pytest.mark.slow  # ~20 s; tests/models/test_cyclegan.py covers the model, the test_gan_* tests here the CLI's GAN path
def test_cyclegan_trains_and_translates_test_images_through_the_cli(tmp_path, capsys):
    workdir = str(tmp_path / "cyclegan")
    sets = ["--set", "width=4", "--set", "num_blocks=1", "--set", "d_width=4", "--set", "d_layers=1",
            "--set", "padding=zero", "--set", "batch_size=8", "--set", "num_samples=4", "--set", "log_every=1"]
    assert main(["train", "cyclegan", "--dataset", "digits", "--steps", "1", "--workdir", workdir, "--no-progress",
                 *sets]) == 0
    out = str(tmp_path / "t.npz")
    assert main(["sample", "--workdir", workdir, "--num", "3", "--out", out]) == 0
    with np.load(out) as z:
        assert z["samples"].shape == (3, 8, 8, 1) and z["samples"].dtype == np.uint8
    capsys.readouterr()
    assert main(["sample", "--workdir", workdir, "--out", out, "--interpolate", "4"]) == 2
    assert "no latent interpolation" in _error_line(capsys)


def test_set_routes_a_shared_name_to_the_model_and_prefixes_choose():
    from gm_jax.cli._common import split_overrides
    from gm_jax.errors import GMJaxError
    from gm_jax.models import DDPMConfig
    from gm_jax.train import TrainConfig

    model, train = split_overrides({"schedule": "cosine", "train.schedule": "linear", "model.num_steps": "10",
                                    "lr": "1e-3"}, DDPMConfig, TrainConfig)
    assert model == {"schedule": "cosine", "num_steps": "10"} and train == {"schedule": "linear", "lr": "1e-3"}
    for bad, words in (("model.lr", "unknown model config field 'lr'"), ("train.num_steps", "unknown training"),
                       ("net.lr", "NAME, model.NAME or train.NAME")):
        with pytest.raises(GMJaxError, match=words):
            split_overrides({bad: "1"}, DDPMConfig, TrainConfig)
