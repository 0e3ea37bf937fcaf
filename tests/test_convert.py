"""gm-jax convert diffusers-ddpm without PyTorch: a pipeline folder of random weights in diffusers' layout
(tests.diffusers_layout.py, whose names and shapes test_convert_torch.py checks against diffusers)
becomes a run that `gm-jax sample` reads, with each tensor where the documented correspondence puts it."""

import json

import jax
import numpy as np
import pytest

from gm_jax.cli import main
from gm_jax.errors import GMJaxError
from tests.diffusers_layout import CIFAR10_UNET, DIGITS_UNET, SCHEDULER, write_random_pipeline


def test_sets_of_the_cifar10_checkpoint_are_ho_et_als_network():
    from gm_jax.convert import ddpm_sets_from_diffusers

    sets = ddpm_sets_from_diffusers(CIFAR10_UNET, SCHEDULER)
    assert sets == {"channels": "128", "channel_mult": "1,2,2,2", "num_res_blocks": "2",
                    "attention_resolutions": "16", "dropout": "0.0", "prediction": "eps", "learn_variance": "false",
                    "schedule": "linear", "num_steps": "1000", "variance": "beta"}
    for change, words in (({"attention_head_dim": 8}, "single-head"), ({"downsample_padding": 1}, "downsample_padding"),
                          ({"up_block_types": ["UpBlock2D"] * 4}, "mirrored"), ({"norm_num_groups": 16}, "norm_num")):
        with pytest.raises(GMJaxError, match=words):
            ddpm_sets_from_diffusers({**CIFAR10_UNET, **change}, SCHEDULER)
    with pytest.raises(GMJaxError, match="1e-4 to 0.02 over 1000"):
        ddpm_sets_from_diffusers(CIFAR10_UNET, {**SCHEDULER, "num_train_timesteps": 4000})


def test_convert_writes_a_run_with_the_checkpoint_weights(tmp_path, capsys):
    from gm_jax.cli._common import load_run
    from gm_jax.train import eval_variables, restore_state

    tensors = write_random_pipeline(tmp_path / "pipe", DIGITS_UNET)
    run = tmp_path / "run"
    assert main(["convert", "diffusers-ddpm", str(tmp_path / "pipe"), "--workdir", str(run), "--dataset",
                 "digits"]) == 0
    record, model, dataset, train_cfg = load_run(str(run), None)
    params = eval_variables(restore_state(model, dataset, train_cfg, str(run)))["params"]
    # the documented correspondence, tensor by tensor
    np.testing.assert_array_equal(params["conv_in"]["kernel"], tensors["conv_in.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(params["temb_dense1"]["kernel"], tensors["time_embedding.linear_2.weight"].T)
    np.testing.assert_array_equal(params["up_1_attn_0"]["qkv"]["kernel"], np.concatenate(
        [tensors[f"up_blocks.0.attentions.0.{n}.weight"].T for n in ("to_q", "to_k", "to_v")], axis=1))
    np.testing.assert_array_equal(params["up_0_block_1"]["skip"]["kernel"],
                                  tensors["up_blocks.1.resnets.1.conv_shortcut.weight"][:, :, 0, 0].T)
    np.testing.assert_array_equal(params["down_1_attn_0"]["norm"]["gn"]["scale"],
                                  tensors["down_blocks.1.attentions.0.group_norm.weight"])
    num = sum(v.size for v in tensors.values())
    assert json.loads((run / "results.json").read_text())["num_params"] == num
    assert main(["sample", "--workdir", str(run), "--num", "4", "--out", str(tmp_path / "s.png"),
                 "--sampler", "ddim", "--steps", "3", "--no-progress"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_convert_refuses_bad_input_in_one_line(tmp_path, capsys):
    write_random_pipeline(tmp_path / "pipe", DIGITS_UNET)
    for argv, words in ((["convert", "diffusers-ddpm", str(tmp_path / "nope"), "--workdir", str(tmp_path / "a")],
                         "no such file"),
                        (["convert", "diffusers-ddpm", str(tmp_path / "pipe"), "--workdir", str(tmp_path / "b"),
                          "--dataset", "toy2d/moons"], "pass the --dataset it was trained on")):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # a tensor the U-Net has no place for, and a missing one
    from gm_jax.convert import unet_params_from_diffusers
    from gm_jax.data import load_dataset
    from gm_jax.models import MODELS, override
    from gm_jax.convert import ddpm_sets_from_diffusers

    spec = load_dataset("digits").spec
    model = MODELS["ddpm"][1](override(MODELS["ddpm"][0](), ddpm_sets_from_diffusers(DIGITS_UNET)), spec)
    expected = jax.eval_shape(model.init, jax.random.key(0), {"image": np.zeros((1, 8, 8, 1), np.int32)})["params"]
    tensors = write_random_pipeline(tmp_path / "p2", DIGITS_UNET)
    with pytest.raises(GMJaxError, match="'extra.weight' has no place"):
        unet_params_from_diffusers({**tensors, "extra.weight": np.zeros(3)}, expected)
    del tensors["conv_out.bias"]
    with pytest.raises(GMJaxError, match="no tensor for gm-jax's U-Net parameter conv_out/bias"):
        unet_params_from_diffusers(tensors, expected)


def test_malformed_checkpoints_are_one_line_errors(tmp_path):
    from safetensors.numpy import save_file

    from gm_jax.convert import ddpm_sets_from_diffusers, read_safetensors, unet_params_from_diffusers
    from gm_jax.data import load_dataset
    from gm_jax.models import MODELS, override

    for bad, words in (([1, 2], "not a JSON object"), ({**DIGITS_UNET, "sample_size": None}, "'sample_size' is"),
                       ({**DIGITS_UNET, "block_out_channels": "128"}, "'block_out_channels' is")):
        with pytest.raises(GMJaxError, match=words):
            ddpm_sets_from_diffusers(bad, SCHEDULER)
    for change in ({"trained_betas": [0.5] * 1000}, {"thresholding": True}, {"clip_sample": False}):
        with pytest.raises(GMJaxError, match=f"has {next(iter(change))}="):
            ddpm_sets_from_diffusers(DIGITS_UNET, {**SCHEDULER, **change})
    for name, value, words in (("w", np.array([np.nan], np.float32), "non-finite"),
                               ("w", np.array([1], np.int64), "not floating-point")):
        save_file({name: value}, str(tmp_path / "t.safetensors"))
        with pytest.raises(GMJaxError, match=words):
            read_safetensors(str(tmp_path / "t.safetensors"))
    spec = load_dataset("digits").spec
    model = MODELS["ddpm"][1](override(MODELS["ddpm"][0](), ddpm_sets_from_diffusers(DIGITS_UNET)), spec)
    expected = jax.eval_shape(model.init, jax.random.key(0), {"image": np.zeros((1, 8, 8, 1), np.int32)})["params"]
    tensors = write_random_pipeline(tmp_path / "p", DIGITS_UNET)
    for extra, words in (({"conv_in.scale": np.zeros(3)}, "'conv_in.scale' has no place"),
                         ({"foo": np.zeros(3)}, "'foo' has no place"),
                         ({"down_blocks.1.attentions.0.to_q.weight": np.zeros((128, 130), np.float32)},
                          "q, k and v kernels differ in shape")):
        with pytest.raises(GMJaxError, match=words):
            unet_params_from_diffusers({**tensors, **extra}, expected)
