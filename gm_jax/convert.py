"""Published checkpoints as gm-jax parameters.

diffusers' ``UNet2DModel`` in the layout of ``google/ddpm-cifar10-32`` (Ho et al. 2020's CIFAR-10 DDPM,
ported from the official TensorFlow checkpoint) -> the parameters of :class:`gm_jax.nets.unet.UNet`, and its
``config.json`` / ``scheduler_config.json`` -> :class:`gm_jax.models.DDPMConfig` settings. The two networks are
the same function (tests/test_convert_torch.py runs diffusers' forward pass on the same weights):

- time: diffusers' ``time_proj`` (sin then cos, frequencies over half - 1 with ``freq_shift=1``) is
  :func:`~gm_jax.nets.unet.timestep_embedding`; ``time_embedding.linear_1/2`` are ``temb_dense0/1``.
- ``down_blocks.l.resnets.i`` / ``attentions.i`` / ``downsamplers.0.conv`` are ``down_l_block_i`` /
  ``down_l_attn_i`` / ``down_l_downsample``; ``up_blocks.j`` is level ``L - 1 - j`` of ``up_*``; the middle
  block and the output head map one to one.
- kernels: a torch conv [out, in, kh, kw] is a Flax HWIO kernel; a linear layer [out, in] is a Flax Dense
  kernel [in, out]; a 1x1 shortcut conv is the ``skip`` Dense; attention's separate q, k, v projections are
  the columns of the fused ``qkv`` Dense. GroupNorm ``weight`` is ``scale``.

Weights are read with ``safetensors.numpy`` (no PyTorch). Older diffusers files name the attention layers
``query``/``key``/``value``/``proj_attn``; both namings are read.
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping

import numpy as np

from gm_jax.errors import GMJaxError

__all__ = ["read_safetensors", "ddpm_sets_from_diffusers", "unet_params_from_diffusers", "read_diffusers_ddpm"]

_OLD_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a numpy array (float32 for floating tensors)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise GMJaxError(f"{path} is not a readable safetensors file ({e})") from None
    out = {}
    for name, value in tensors.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise GMJaxError(f"{path}: tensor '{name}' holds {value.dtype}, not floating-point weights")
        value = value.astype(np.float32)
        if not np.isfinite(value).all():
            raise GMJaxError(f"{path}: tensor '{name}' holds non-finite values (NaN or inf); the checkpoint is damaged")
        out[name] = value
    return out


def _require(config: Mapping, key: str, allowed, what: str):
    value = config.get(key, allowed[0])
    if value not in allowed:
        raise GMJaxError(f"diffusers {what} has {key}={value!r}; gm-jax converts only "
                         f"{' or '.join(map(repr, allowed))} (the DDPM of google/ddpm-cifar10-32)")
    return value


def ddpm_sets_from_diffusers(unet_config: Mapping, scheduler_config: Mapping | None = None) -> dict[str, str]:
    """DDPMConfig settings (``--set`` strings) of a diffusers UNet2DModel config and DDPMScheduler config.

    Raises one line naming the first setting gm-jax's DDPM cannot represent.
    """
    what = "UNet2DModel config"
    if not isinstance(unet_config, Mapping):
        raise GMJaxError(f"the diffusers {what} is not a JSON object")
    for key, kind in (("sample_size", int), ("in_channels", int), ("out_channels", int), ("layers_per_block", int),
                      ("block_out_channels", list), ("down_block_types", list), ("up_block_types", list)):
        value = unet_config.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or \
                (kind is list and not all(isinstance(v, int if key == "block_out_channels" else str) and
                                          not isinstance(v, bool) for v in value)) or \
                (kind is int and value < 1) or (kind is list and not value):
            raise GMJaxError(f"diffusers {what}: '{key}' is missing or malformed ({value!r})")
    if scheduler_config is not None and not isinstance(scheduler_config, Mapping):
        raise GMJaxError("the diffusers DDPMScheduler config is not a JSON object")
    for key, allowed in (("act_fn", ("silu",)), ("norm_num_groups", (32,)), ("norm_eps", (1e-6,)),
                         ("flip_sin_to_cos", (False,)), ("freq_shift", (1,)), ("downsample_padding", (0,)),
                         ("time_embedding_type", ("positional",)), ("center_input_sample", (False,)),
                         ("mid_block_scale_factor", (1,)), ("resnet_time_scale_shift", ("default",)),
                         ("class_embed_type", (None,)), ("num_class_embeds", (None,)), ("add_attention", (True,))):
        _require(unet_config, key, allowed, what)
    down, up = list(unet_config.get("down_block_types", ())), list(unet_config.get("up_block_types", ()))
    if not down or set(down) - {"DownBlock2D", "AttnDownBlock2D"} or \
            [t.replace("Down", "Up") for t in reversed(down)] != up:
        raise GMJaxError(f"diffusers {what}: down_block_types {down} / up_block_types {up} are not a DDPM U-Net "
                         "(DownBlock2D or AttnDownBlock2D, mirrored by the up blocks)")
    widths = list(unet_config["block_out_channels"])
    channels = widths[0]
    if any(w % channels for w in widths):
        raise GMJaxError(f"diffusers {what}: block_out_channels {widths} are not multiples of the first")
    heads = unet_config.get("attention_head_dim")
    if heads is not None and any(heads != widths[i] for i, t in enumerate(down) if t.startswith("Attn")):
        raise GMJaxError(f"diffusers {what}: attention_head_dim={heads} splits attention into heads; gm-jax "
                         "converts single-head attention (attention_head_dim null)")
    size = int(unet_config["sample_size"])
    if unet_config.get("in_channels") != unet_config.get("out_channels"):
        raise GMJaxError(f"diffusers {what}: in_channels {unet_config.get('in_channels')} != out_channels "
                         f"{unet_config.get('out_channels')}; gm-jax's DDPM predicts eps of the input's shape")
    sets = {"channels": str(channels), "channel_mult": ",".join(str(w // channels) for w in widths),
            "num_res_blocks": str(unet_config["layers_per_block"]),
            "attention_resolutions": ",".join(str(size >> i) for i, t in enumerate(down) if t.startswith("Attn")),
            "dropout": str(unet_config.get("dropout", 0.0)), "prediction": "eps", "learn_variance": "false"}
    if scheduler_config is not None:
        what = "DDPMScheduler config"
        _require(scheduler_config, "beta_schedule", ("linear",), what)
        _require(scheduler_config, "prediction_type", ("epsilon",), what)
        # gm-jax's sampler clips x_0 to [-1, 1] and has no thresholding: anything else would sample otherwise
        for key, allowed in (("trained_betas", (None,)), ("thresholding", (False,)), ("clip_sample", (True,)),
                             ("clip_sample_range", (1.0,))):
            _require(scheduler_config, key, allowed, what)
        steps = int(scheduler_config.get("num_train_timesteps", 1000))
        # gm-jax's linear schedule rescales (1e-4, 0.02) by 1000 / T (Nichol & Dhariwal); equal at T = 1000
        if (scheduler_config.get("beta_start", 1e-4), scheduler_config.get("beta_end", 0.02), steps) != (1e-4, 0.02,
                                                                                                           1000):
            raise GMJaxError(f"diffusers {what}: betas from {scheduler_config.get('beta_start')} to "
                             f"{scheduler_config.get('beta_end')} over {steps} steps; gm-jax's linear schedule is Ho "
                             "et al.'s 1e-4 to 0.02 over 1000 steps")
        variance = _require(scheduler_config, "variance_type", ("fixed_large", "fixed_small"), what)
        sets.update({"schedule": "linear", "num_steps": str(steps),
                     "variance": {"fixed_large": "beta", "fixed_small": "posterior"}[variance]})
    return sets


def _conv(w):
    return np.transpose(w, (2, 3, 1, 0))  # [out, in, kh, kw] -> HWIO


def _leaf_map(name: str, levels: int):
    """A diffusers parameter name -> (Flax module path, Flax leaf, kind), or None when it is not one."""
    name = re.sub(r"\.(query|key|value|proj_attn)\.", lambda m: f".{_OLD_ATTENTION[m.group(1)]}.", name)
    if "." not in name or name.rsplit(".", 1)[1] not in ("weight", "bias"):
        return None
    module, leaf = name.rsplit(".", 1)
    m = re.fullmatch(r"(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", module)
    if m:
        side, block, kind, i, rest = m.groups()
        level = int(block) if side == "down" else levels - 1 - int(block)
        path = f"{side}_{level}_{'block' if kind == 'resnets' else 'attn'}_{i}"
        return _inner(path, rest, leaf)
    m = re.fullmatch(r"(down|up)_blocks\.(\d+)\.(downsamplers|upsamplers)\.0\.conv", module)
    if m:
        side, block = m.group(1), int(m.group(2))
        level = block if side == "down" else levels - 1 - block
        return (f"{side}_{level}_{'downsample' if side == 'down' else 'upsample'}",), _leaf(leaf), "conv"
    m = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", module)
    if m:
        kind, i, rest = m.groups()
        return _inner(f"mid_block_{i}" if kind == "resnets" else "mid_attn", rest, leaf)
    simple = {"conv_in": (("conv_in",), "conv"), "conv_out": (("conv_out",), "conv"),
              "conv_norm_out": (("norm_out", "gn"), "norm"), "time_embedding.linear_1": (("temb_dense0",), "dense"),
              "time_embedding.linear_2": (("temb_dense1",), "dense")}
    if module in simple:
        path, kind = simple[module]
        return path, _leaf(leaf, kind), kind
    return None


def _leaf(leaf: str, kind: str = "conv") -> str:
    if kind == "norm":
        return {"weight": "scale", "bias": "bias"}[leaf]
    return {"weight": "kernel", "bias": "bias"}[leaf]


def _inner(block: str, rest: str, leaf: str):
    table = {"norm1": (("norm1", "gn"), "norm"), "norm2": (("norm2", "gn"), "norm"), "conv1": (("conv1",), "conv"),
             "conv2": (("conv2",), "conv"), "time_emb_proj": (("temb_proj",), "dense"),
             "conv_shortcut": (("skip",), "shortcut"), "group_norm": (("norm", "gn"), "norm"),
             "to_q": (("qkv",), "q"), "to_k": (("qkv",), "k"), "to_v": (("qkv",), "v"),
             "to_out.0": (("proj_out",), "dense")}
    if rest not in table:
        return None
    path, kind = table[rest]
    return (block,) + path, _leaf(leaf, "norm" if kind == "norm" else "conv"), kind


def unet_params_from_diffusers(state: Mapping[str, np.ndarray], expected) -> dict:
    """gm-jax U-Net parameters from a diffusers UNet2DModel state dict.

    ``expected``: the U-Net's parameter tree (arrays or ShapeDtypeStructs, e.g. ``jax.eval_shape`` of the
    model's init), which fixes the levels and every shape. Every tensor of ``state`` must land on a parameter
    of the right shape and every parameter must be filled: otherwise one line names the first that does not.
    """
    levels = 1 + max(int(k.split("_")[1]) for k in expected if k.startswith("down_"))
    out, qkv = {}, {}
    for name, value in state.items():
        mapped = _leaf_map(name, levels)
        if mapped is None:
            raise GMJaxError(f"checkpoint tensor '{name}' has no place in gm-jax's DDPM U-Net")
        path, leaf, kind = mapped
        if kind in ("q", "k", "v"):
            qkv.setdefault((path, leaf), {})[kind] = value
            continue
        if kind == "conv":
            value = _conv(value) if value.ndim == 4 else value
        elif kind == "shortcut":
            value = value[:, :, 0, 0].T if value.ndim == 4 else value
        elif kind == "dense":
            value = value.T if value.ndim == 2 else value
        out[path + (leaf,)] = value
    for (path, leaf), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise GMJaxError(f"checkpoint attention '{'/'.join(path)}' lacks {sorted({'q', 'k', 'v'} - set(parts))}")
        if len({parts[k].shape for k in parts}) != 1:
            raise GMJaxError(f"checkpoint attention '{'/'.join(path)}': q, k and v {leaf}s differ in shape "
                             f"({', '.join(str(parts[k].shape) for k in ('q', 'k', 'v'))})")
        stack = [parts[k].T if leaf == "kernel" else parts[k] for k in ("q", "k", "v")]
        out[path + (leaf,)] = np.concatenate(stack, axis=-1)

    params: dict = {}
    import jax

    wanted = {tuple(getattr(k, "key", k) for k in p): v for p, v in jax.tree_util.tree_leaves_with_path(expected)}
    for path, shape_like in wanted.items():
        if path not in out:
            raise GMJaxError(f"the checkpoint has no tensor for gm-jax's U-Net parameter {'/'.join(path)}")
        value = out.pop(path)
        if tuple(value.shape) != tuple(shape_like.shape):
            raise GMJaxError(f"checkpoint tensor for {'/'.join(path)} has shape {tuple(value.shape)}, gm-jax's U-Net "
                             f"needs {tuple(shape_like.shape)}")
        node = params
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = np.asarray(value, np.float32)
    if out:
        more = f" and {len(out) - 1} more" if len(out) > 1 else ""
        raise GMJaxError(f"checkpoint tensors with no place in gm-jax's U-Net: {'/'.join(next(iter(out)))}{more} "
                         "(a deeper or wider network than its config.json describes?)")
    return params


def read_diffusers_ddpm(path: str) -> tuple[dict, dict[str, np.ndarray], tuple[int, int, int]]:
    """(DDPMConfig settings, state dict, image shape (H, W, C)) of a diffusers DDPM: a pipeline folder
    (``unet/`` and ``scheduler/``), a ``unet`` folder, or a ``.safetensors`` file with ``config.json`` beside
    it."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.isdir(os.path.join(folder, "unet")):
        unet_dir, scheduler_dir = os.path.join(folder, "unet"), os.path.join(folder, "scheduler")
    else:
        unet_dir, scheduler_dir = folder, os.path.join(os.path.dirname(folder), "scheduler")
    weights = path if os.path.isfile(path) else os.path.join(unet_dir, "diffusion_pytorch_model.safetensors")
    if not os.path.isfile(weights):
        raise GMJaxError(f"no diffusers weights at {weights}; pass the pipeline folder, its unet/ folder or the "
                         ".safetensors file")
    configs = []
    for folder_, name in ((unet_dir, "config.json"), (scheduler_dir, "scheduler_config.json")):
        file = os.path.join(folder_, name)
        if not os.path.isfile(file):
            configs.append(None)
            continue
        try:
            with open(file) as f:
                configs.append(json.load(f))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GMJaxError(f"{file} is not JSON") from None
    if configs[0] is None:
        raise GMJaxError(f"no UNet2DModel config.json beside {weights}; diffusers saves it with the weights")
    size = int(configs[0].get("sample_size", 0))
    shape = (size, size, int(configs[0].get("in_channels", 0)))
    return ddpm_sets_from_diffusers(configs[0], configs[1]), read_safetensors(weights), shape
