"""Every config field has a one-line meaning beside it, and ``gm-jax config MODEL`` prints them all with
their types and effective defaults."""

import dataclasses

import pytest

from gm_jax.cli import main
from gm_jax.models import MODELS, GANConfig, VAEConfig, WGANGPConfig, describe_config, format_config
from gm_jax.models.base import Config, field_help, hparam
from gm_jax.train.config import TrainConfig

CONFIGS = sorted({cls for cls, _ in MODELS.values()} | {TrainConfig}, key=lambda c: c.__name__)
MAX_HELP = 100  # characters: one line of the table


def undescribed(cls) -> list[str]:
    """The fields of ``cls`` without a one-line meaning (missing, empty, several lines or too long)."""
    bad = []
    for field in dataclasses.fields(cls):
        text = field_help(cls, field.name)
        if not text or not text.strip() or "\n" in text or len(text) > MAX_HELP:
            bad.append(field.name)
    return bad


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_config_field_has_a_one_line_meaning(cls):
    assert undescribed(cls) == [], f"{cls.__name__}: give these fields hparam(default, 'meaning')"


def test_the_check_finds_an_undescribed_field():
    @dataclasses.dataclass(frozen=True)
    class Partial(Config):
        a: int = hparam(1, "described")
        b: int = 2
        c: int = hparam(3, "two\nlines")

    assert undescribed(Partial) == ["b", "c"]


def test_a_subclass_that_changes_a_default_keeps_the_meaning():
    assert WGANGPConfig().loss == "wasserstein"
    assert field_help(WGANGPConfig, "loss") == field_help(GANConfig, "loss") is not None
    assert dataclasses.fields(GANConfig)[0].metadata["help"] == field_help(GANConfig, "loss")


def test_hparam_keeps_the_default_and_validation():
    assert VAEConfig().hidden == (256, 256) and VAEConfig(hidden=[8]).hidden == (8,)
    assert dataclasses.replace(TrainConfig(), lr=0.5).lr == 0.5


def test_describe_config_rows():
    rows = {r.name: r for r in describe_config(VAEConfig)}
    assert list(rows) == [f.name for f in dataclasses.fields(VAEConfig)]
    assert (rows["hidden"].type, rows["hidden"].default) == ("tuple[int, ...]", "(256, 256)")
    assert rows["likelihood"].type == "discretized_logistic | bernoulli | gaussian"
    assert (rows["beta"].type, rows["beta"].default) == ("float", "1.0")
    assert rows["latent_dim"].help == "size of the latent code z"


def test_describe_config_shows_an_instance_values_as_defaults():
    gan_train = MODELS["dcgan"][1].default_train
    rows = {r.name: r.default for r in describe_config(TrainConfig(**gan_train))}
    assert rows["steps"] == str(gan_train["steps"]) != str(TrainConfig().steps)
    assert rows["lr"] == "0.001"


def test_format_config_is_an_aligned_table():
    lines = format_config(VAEConfig, "title").splitlines()
    assert lines[0] == "title" and lines[1].split() == ["field", "type", "default", "meaning"]
    assert len(lines) == 2 + len(dataclasses.fields(VAEConfig))
    start = lines[1].index("meaning")
    assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines[1:])


def test_cli_config_prints_every_model_and_training_field(capsys):
    assert main(["config", "dcgan"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    config_cls, model_cls = MODELS["dcgan"]
    for field in dataclasses.fields(config_cls) + dataclasses.fields(TrainConfig):
        assert field.name in rows, field.name
    assert rows["steps"].split()[2] == str(model_cls.default_train["steps"])  # the model's training default
    assert rows["loss"].split()[-1].endswith("GAN_LOSSES)")
    assert "dcgan sets batch_size, checkpoint_every, ema_decay, steps" in out


def test_cli_config_unknown_model_is_one_line_exit_2(capsys):
    assert main(["config", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gm-jax: error: unknown model 'nope'; available: ") and err.count("\n") == 1
