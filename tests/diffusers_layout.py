"""The tensor names and shapes of a diffusers ``UNet2DModel`` in the DDPM layout (google/ddpm-cifar10-32's),
enumerated from diffusers' naming rules. tests/test_convert_torch.py checks them against diffusers'
own state dict; tests/test_convert.py writes random weights under them without PyTorch."""

from __future__ import annotations

import json
import os

import numpy as np

# Ho et al.'s CIFAR-10 model as google/ddpm-cifar10-32's unet/config.json states it
CIFAR10_UNET = {
    "_class_name": "UNet2DModel", "sample_size": 32, "in_channels": 3, "out_channels": 3, "layers_per_block": 2,
    "block_out_channels": [128, 256, 256, 256],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "act_fn": "silu", "attention_head_dim": None, "center_input_sample": False, "downsample_padding": 0,
    "flip_sin_to_cos": False, "freq_shift": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-06,
    "norm_num_groups": 32, "time_embedding_type": "positional",
}
SCHEDULER = {"_class_name": "DDPMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
             "num_train_timesteps": 1000, "variance_type": "fixed_large", "clip_sample": True,
             "prediction_type": "epsilon"}
# the same layout at digits' size (8x8x1): two levels, attention at 4x4, one block per level
DIGITS_UNET = {**CIFAR10_UNET, "sample_size": 8, "in_channels": 1, "out_channels": 1, "layers_per_block": 1,
               "block_out_channels": [128, 128], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
               "up_block_types": ["AttnUpBlock2D", "UpBlock2D"]}


def _resnet(prefix, cin, cout, temb):
    out = {f"{prefix}.norm1.weight": (cin,), f"{prefix}.norm1.bias": (cin,),
           f"{prefix}.conv1.weight": (cout, cin, 3, 3), f"{prefix}.conv1.bias": (cout,),
           f"{prefix}.time_emb_proj.weight": (cout, temb), f"{prefix}.time_emb_proj.bias": (cout,),
           f"{prefix}.norm2.weight": (cout,), f"{prefix}.norm2.bias": (cout,),
           f"{prefix}.conv2.weight": (cout, cout, 3, 3), f"{prefix}.conv2.bias": (cout,)}
    if cin != cout:
        out.update({f"{prefix}.conv_shortcut.weight": (cout, cin, 1, 1), f"{prefix}.conv_shortcut.bias": (cout,)})
    return out


def _attention(prefix, c):
    out = {f"{prefix}.group_norm.weight": (c,), f"{prefix}.group_norm.bias": (c,)}
    for name in ("to_q", "to_k", "to_v", "to_out.0"):
        out.update({f"{prefix}.{name}.weight": (c, c), f"{prefix}.{name}.bias": (c,)})
    return out


def unet_layout(config: dict) -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor of a UNet2DModel with ``config`` (DDPM blocks only)."""
    widths, n = config["block_out_channels"], config["layers_per_block"]
    ch, cin, temb = widths[0], config["in_channels"], 4 * widths[0]
    out = {"conv_in.weight": (ch, cin, 3, 3), "conv_in.bias": (ch,),
           "time_embedding.linear_1.weight": (temb, ch), "time_embedding.linear_1.bias": (temb,),
           "time_embedding.linear_2.weight": (temb, temb), "time_embedding.linear_2.bias": (temb,)}
    skips, c = [ch], ch
    for level, kind in enumerate(config["down_block_types"]):
        for i in range(n):
            out.update(_resnet(f"down_blocks.{level}.resnets.{i}", c, widths[level], temb))
            c = widths[level]
            if kind.startswith("Attn"):
                out.update(_attention(f"down_blocks.{level}.attentions.{i}", c))
            skips.append(c)
        if level != len(widths) - 1:
            out.update({f"down_blocks.{level}.downsamplers.0.conv.weight": (c, c, 3, 3),
                        f"down_blocks.{level}.downsamplers.0.conv.bias": (c,)})
            skips.append(c)
    out.update(_resnet("mid_block.resnets.0", c, c, temb))
    out.update(_attention("mid_block.attentions.0", c))
    out.update(_resnet("mid_block.resnets.1", c, c, temb))
    for j, kind in enumerate(config["up_block_types"]):
        level = len(widths) - 1 - j
        for i in range(n + 1):
            out.update(_resnet(f"up_blocks.{j}.resnets.{i}", c + skips.pop(), widths[level], temb))
            c = widths[level]
            if kind.startswith("Attn"):
                out.update(_attention(f"up_blocks.{j}.attentions.{i}", c))
        if level != 0:
            out.update({f"up_blocks.{j}.upsamplers.0.conv.weight": (c, c, 3, 3),
                        f"up_blocks.{j}.upsamplers.0.conv.bias": (c,)})
    out.update({"conv_norm_out.weight": (c,), "conv_norm_out.bias": (c,),
                "conv_out.weight": (config["out_channels"], c, 3, 3), "conv_out.bias": (config["out_channels"],)})
    return out


def write_random_pipeline(folder, config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """A diffusers pipeline folder (unet/ and scheduler/) with random weights in ``config``'s layout, written
    without PyTorch; returns the tensors."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in unet_layout(config).items()}
    os.makedirs(os.path.join(folder, "unet"), exist_ok=True)
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    save_file(tensors, os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"))
    with open(os.path.join(folder, "unet", "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SCHEDULER, f)
    return tensors
