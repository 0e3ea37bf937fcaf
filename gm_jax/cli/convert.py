"""``gm-jax convert``: a published checkpoint -> a gm-jax run directory (``gm-jax sample|evaluate`` read it)."""

from __future__ import annotations

import os

from gm_jax.cli._common import CONFIG_FILE
from gm_jax.errors import GMJaxError

__all__ = ["cmd_convert"]

FORMATS = ("diffusers-ddpm",)


def cmd_convert(args) -> int:
    import jax
    import jax.numpy as jnp

    from gm_jax import parallel
    from gm_jax.convert import read_diffusers_ddpm, unet_params_from_diffusers
    from gm_jax.data import load_dataset
    from gm_jax.data.loading import check_data_dir
    from gm_jax.models import MODELS, config_to_dict, num_params, override
    from gm_jax.train import Checkpointer, TrainConfig
    from gm_jax.train.loop import initial_state, write_json
    from gm_jax.train.rundir import check_writable

    if not os.path.exists(args.source):
        raise GMJaxError(f"{args.source}: no such file or folder; pass a diffusers pipeline folder, its unet/ "
                         "folder or its .safetensors file")
    check_data_dir(args.data_dir)
    check_writable(args.workdir)
    if os.path.exists(args.workdir) and os.listdir(args.workdir):
        raise GMJaxError(f"--workdir {args.workdir} is not empty; convert into a new folder")
    sets, state_dict, shape = read_diffusers_ddpm(args.source)
    config_cls, model_cls = MODELS["ddpm"]
    model_cfg = override(config_cls(), sets)
    dataset = load_dataset(args.dataset, args.data_dir)
    if tuple(dataset.spec.shape) != shape or dataset.spec.kind != "image":
        raise GMJaxError(f"the checkpoint models {shape[0]}x{shape[1]}x{shape[2]} images and {dataset.spec.name} "
                         f"holds {dataset.spec.kind} of shape {tuple(dataset.spec.shape)}; pass the --dataset it "
                         "was trained on")
    model = model_cls(model_cfg, dataset.spec)
    train_cfg = TrainConfig(**{**model_cls.default_train, "steps": 1})
    mesh = parallel.make_mesh()
    state = initial_state(model, dataset, train_cfg, mesh)
    params = unet_params_from_diffusers(state_dict, jax.eval_shape(lambda: state.params))
    params = parallel.put_replicated(jax.tree_util.tree_map(jnp.asarray, params), mesh)
    # the published weights are the EMA weights (Ho et al. sample from the EMA): both copies hold them
    state = state.replace(step=jnp.asarray(1, state.step.dtype), params=params,
                          ema_params=params if jax.tree_util.tree_leaves(state.ema_params) else state.ema_params)
    record = {"model": "ddpm", "dataset": dataset.spec.name, "data_dir": args.data_dir,
              "model_config": config_to_dict(model_cfg), "train_config": config_to_dict(train_cfg)}
    os.makedirs(args.workdir, exist_ok=True)
    ckpt = Checkpointer(os.path.join(args.workdir, "checkpoints"))
    try:
        ckpt.save(1, state, {"model": "ddpm", "dataset": dataset.spec.name, "step": 1})
        ckpt.wait()
    finally:
        ckpt.close()
    write_json(os.path.join(args.workdir, CONFIG_FILE), record)
    write_json(os.path.join(args.workdir, "results.json"),
               {"model": "ddpm", "dataset": dataset.spec.name, "steps": 1, "num_params": num_params(params),
                "converted_from": os.path.abspath(args.source), "format": args.format})
    print(f"converted {args.source} ({args.format}, {num_params(params):,} parameters) into {args.workdir}; "
          f"sample with `gm-jax sample --workdir {args.workdir}`")
    return 0
