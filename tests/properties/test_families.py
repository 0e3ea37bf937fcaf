"""The property table's count of network evaluations per sample, against the score calls counted as a sampler
runs (a host callback in the score function fires once per evaluation, inside the compiled loops too)."""

import jax
import jax.numpy as jnp
import pytest

from gm_jax.data.loading import DataSpec
from gm_jax.models import NCSN, NCSNConfig, ScoreSDE, ScoreSDEConfig
from gm_jax.properties.families import network_evaluations

POINTS = DataSpec("p", "points", (2,), None, 0)
SDE = dict(hidden=(8,), embed_dim=4, sample_steps=3, corrector_steps=2)


def _counted(model, kwargs) -> int:
    calls = []
    original = model.score_fn

    def counting_score_fn(params, *args, **kw):
        score = original(params, *args, **kw)

        def counted(x, t, *rest):
            jax.debug.callback(lambda: calls.append(1))
            return score(x, t, *rest)
        return counted

    model.score_fn = counting_score_fn
    variables = model.init(jax.random.key(0), {model.spec.data_key: jnp.zeros((4, 2))})
    jax.block_until_ready(jax.jit(lambda v, k: model.sample(v, k, 4, **kwargs))(variables, jax.random.key(1)))
    return len(calls)


@pytest.mark.parametrize("name,model,kwargs", [
    ("score_sde", ScoreSDE(ScoreSDEConfig(**SDE), POINTS), {"sampler": "pc"}),
    ("score_sde", ScoreSDE(ScoreSDEConfig(**SDE), POINTS), {"sampler": "sde"}),
    ("score_sde", ScoreSDE(ScoreSDEConfig(**SDE, ode_steps=4), POINTS), {"sampler": "ode"}),
    ("score_sde", ScoreSDE(ScoreSDEConfig(**SDE, denoise=False), POINTS), {"sampler": "pc"}),
    ("ncsn", NCSN(NCSNConfig(hidden=(8,), embed_dim=4, num_scales=3, steps_per_sigma=2), POINTS), {}),
])
def test_network_evaluations_match_a_direct_count(name, model, kwargs):
    assert network_evaluations(name, model, kwargs) == _counted(model, kwargs)


@pytest.mark.parametrize("config", ["cpu", "gpu"])
def test_every_config_builds_each_family_on_its_data(config, data_dir):
    """Each (family, settings) of a config is accepted by its model on the data it trains on (a setting a
    family refuses, e.g. the VAE's image likelihood on points, would stop the table hours in)."""
    from gm_jax.cli._common import model_entry, split_overrides
    from gm_jax.data import load_dataset
    from gm_jax.models import override
    from gm_jax.properties.config import CONFIGS
    from gm_jax.train import TrainConfig

    cfg = CONFIGS[config]
    for dataset_name, names, sets in ([cfg.dataset], cfg.families, cfg.sets), \
            ([f"toy2d/{d}" for d in cfg.point_datasets], cfg.point_families, cfg.point_sets):
        for dataset in dataset_name:
            spec = load_dataset(dataset, data_dir).spec
            for name in names:
                config_cls, model_cls = model_entry(name)
                model_sets, train_sets = split_overrides(sets.get(name, {}), config_cls, TrainConfig)
                model_cls(override(config_cls(), model_sets), spec)  # as `gm-jax train` builds it
                override(TrainConfig(**getattr(model_cls, "default_train", {})), train_sets)
