"""One contract for configs and the model interface (DESIGN.md): configs are frozen dataclasses validated at
construction, their choices come from their fields' Literal annotations, and models take optional
arguments by keyword only, in one order."""

import dataclasses
import inspect
import typing

import jax
import pytest

from gm_jax.data.loading import DataSpec
from gm_jax.errors import GMJaxError
from gm_jax.models import MODELS, CycleGAN, CycleGANConfig, DCGANConfig, GAN, config_from_dict, config_to_dict, \
    override
from gm_jax.models.base import Config, literal_choices
from gm_jax.train.config import TrainConfig

CONFIGS = sorted({cls for cls, _ in MODELS.values()} | {TrainConfig}, key=lambda c: c.__name__)
ids = lambda c: c.__name__


def _fields(cls, pick):
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if pick(hints[f.name])]


@pytest.mark.parametrize("cls", CONFIGS, ids=ids)
def test_configs_are_frozen_validated_dataclasses(cls):
    assert dataclasses.is_dataclass(cls) and issubclass(cls, Config)
    config = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.__setattr__(dataclasses.fields(cls)[0].name, None)
    assert config_from_dict(cls, config_to_dict(config)) == config
    hash(config)


@pytest.mark.parametrize("cls", CONFIGS, ids=ids)
def test_every_literal_field_rejects_a_bad_choice_at_construction(cls):
    for name in _fields(cls, lambda a: literal_choices(a) is not None):
        with pytest.raises(GMJaxError, match=f"^{cls.__name__}: unknown {name} 'no_such_choice'; choose one of ") as e:
            cls(**{name: "no_such_choice"})
        assert "\n" not in str(e.value)
        choices = literal_choices(typing.get_type_hints(cls)[name])
        for choice in choices:
            try:
                assert getattr(cls(**{name: choice}), name) == choice
            except GMJaxError as err:  # only a relation to another field may refuse a valid choice
                assert f"unknown {name}" not in str(err)


@pytest.mark.parametrize("cls", CONFIGS, ids=ids)
def test_every_int_field_rejects_a_negative_value_at_construction(cls):
    for name in _fields(cls, lambda a: a is int):
        with pytest.raises(GMJaxError, match=f"^{cls.__name__}: .*{name}") as e:
            cls(**{name: -1})
        assert "\n" not in str(e.value)


SIZES = {"vae": "latent_dim", "charlm": "num_heads", "made": "num_orderings", "pixelcnn": "num_layers",
         "realnvp": "coupling_pairs", "glow": "steps_per_level", "maf": "num_layers", "spline_flow": "num_layers",
         "ddpm": "num_steps", "score_sde": "sample_steps", "ncsn": "steps_per_sigma", "ebm": "langevin_steps",
         "dcgan": "latent_dim", "wgan_gp": "n_critic", "sngan": "width", "stylegan_small": "mapping_layers",
         "cyclegan": "num_blocks", "train": "steps"}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_a_zero_size_is_rejected_at_construction_naming_the_field(name):
    cls, field = TrainConfig if name == "train" else MODELS[name][0], SIZES[name]
    with pytest.raises(GMJaxError, match=f"^{cls.__name__}: {field} must be >= 1, got 0$"):
        cls(**{field: 0})


def test_every_registered_model_is_covered():
    assert set(MODELS) | {"train"} == set(SIZES)


@pytest.mark.parametrize("cls", CONFIGS, ids=ids)
def test_lists_become_tuples_and_types_are_checked(cls):
    config = cls()
    for name in _fields(cls, lambda a: typing.get_origin(a) is tuple):
        value = getattr(config, name)
        as_list = cls(**{name: list(value)})
        assert isinstance(getattr(as_list, name), tuple) and as_list == config
        hash(as_list)
        with pytest.raises(GMJaxError, match=f"{name} must be a tuple"):
            cls(**{name: 3})
    for name in _fields(cls, lambda a: a is int):
        with pytest.raises(GMJaxError, match=f"^{cls.__name__}: {name} must be an integer, got '3'$"):
            cls(**{name: "3"})
    for name in _fields(cls, lambda a: a is bool):
        with pytest.raises(GMJaxError, match=f"{name} must be true or false"):
            cls(**{name: "yes"})
    for name in _fields(cls, lambda a: a is float):
        with pytest.raises(GMJaxError, match=f"^{cls.__name__}: {name} must be a number, got '1'$"):
            cls(**{name: "1"})


def test_vae_example_and_override_validate_on_construction():
    with pytest.raises(GMJaxError, match="^VAEConfig: latent_dim must be >= 1, got 0$"):
        MODELS["vae"][0](latent_dim=0)
    config = MODELS["vae"][0](hidden=[64, 64])
    assert config.hidden == (64, 64)
    with pytest.raises(GMJaxError, match="latent_dim must be >= 1"):
        dataclasses.replace(config, latent_dim=0)
    with pytest.raises(GMJaxError, match="latent_dim must be >= 1"):
        override(config, {"latent_dim": "0"})
    with pytest.raises(GMJaxError, match="choose one of discretized_logistic, bernoulli, gaussian"):
        override(config, {"likelihood": "poisson"})
    assert override(config, {"hidden": "32,16", "beta": "2"}) == MODELS["vae"][0](hidden=(32, 16), beta=2.0)
    assert type(TrainConfig(lr=1).lr) is float and TrainConfig(lr=1) == TrainConfig(lr=1.0)


def test_literal_choices_have_one_source():
    """Tuples of names derive from the Literal aliases, and the configs' choices equal the library's."""
    from gm_jax.losses.adversarial import GAN_LOSSES
    from gm_jax.models import cyclegan, diffusion, gan, score_sde
    from gm_jax.nets.cyclegan import PADDINGS
    from gm_jax.processes.discrete import PREDICTIONS
    from gm_jax.processes.sde import SDES
    from gm_jax.samplers.sde import TRACES

    hint = lambda cls, name: literal_choices(typing.get_type_hints(cls)[name])
    assert diffusion.SAMPLERS == hint(MODELS["ddpm"][0], "sampler")
    assert score_sde.SAMPLERS == hint(MODELS["score_sde"][0], "sampler")
    assert gan.PENALTIES == hint(DCGANConfig, "penalty") and gan.ARCHITECTURES == hint(DCGANConfig, "architecture")
    assert cyclegan.TRANSFORMS == hint(CycleGANConfig, "transform")
    assert PADDINGS == hint(CycleGANConfig, "padding")
    for name in ("dcgan", "wgan_gp", "sngan", "stylegan_small", "cyclegan"):
        assert hint(MODELS[name][0], "loss") == GAN_LOSSES
    assert hint(MODELS["ddpm"][0], "prediction") == PREDICTIONS
    assert hint(MODELS["score_sde"][0], "sde") == tuple(SDES)
    assert hint(MODELS["score_sde"][0], "trace") == TRACES


# ------------------------------------------------------------------------------------------ the interface
SAMPLE_ORDER = ("labels", "temperature", "sampler", "steps", "guidance")
MODEL_CLASSES = sorted({m for _, m in MODELS.values()}, key=lambda m: m.__name__)


@pytest.mark.parametrize("model_cls", MODEL_CLASSES, ids=ids)
def test_sample_and_log_prob_take_optional_arguments_by_keyword_only(model_cls):
    for method, required in (("sample", ("self", "variables", "key", "num")),
                             ("log_prob", ("self", "variables", "x", "key"))):
        params = list(inspect.signature(getattr(model_cls, method)).parameters.values())
        assert tuple(p.name for p in params[:len(required)]) == required, (method, params)
        rest = params[len(required):]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), (method, rest)
        names = [p.name for p in rest]
        shared = [n for n in names if n in SAMPLE_ORDER]
        assert shared == [n for n in SAMPLE_ORDER if n in names] and names[:len(shared)] == shared, (method, names)
        if method == "log_prob":
            assert names == ["labels"]
    with pytest.raises(TypeError, match="positional argument"):
        model_cls.sample(None, {}, jax.random.key(0), 2, None)
    with pytest.raises(TypeError, match="positional argument"):
        model_cls.log_prob(None, {}, None, jax.random.key(0), None)


_POINTS = DataSpec("toy2d/moons", "points", (2,), None, 0)
_IMAGES = DataSpec("digits", "image", (8, 8, 1), 17, 10)


@pytest.mark.parametrize("make", [lambda: GAN(DCGANConfig(hidden=(8,), latent_dim=2), _POINTS),
                                  lambda: CycleGAN(CycleGANConfig(width=4, d_width=4, num_blocks=1), _IMAGES)],
                         ids=["gan", "cyclegan"])
def test_a_gan_loss_requires_its_group(make):
    model = make()
    key = jax.random.key(0)
    with pytest.raises(GMJaxError, match="loss needs the keyword group=NAME; choose one of discriminator, generator$"):
        model.loss({}, {}, key)
    with pytest.raises(GMJaxError, match="no parameter group 'critic'; choose one of discriminator, generator$"):
        model.loss({}, {}, key, group="critic")
    with pytest.raises(TypeError):
        model.loss({}, {}, key, "generator")
