"""Parity of gm-jax's DDPM U-Net with diffusers' ``UNet2DModel`` (the reference the published CIFAR-10 DDPM
checkpoint google/ddpm-cifar10-32 is distributed for): random weights in Ho et al.'s CIFAR-10 configuration,
written by diffusers, converted by gm-jax, give the same eps to float32 tolerance.

Needs torch and diffusers (the ``torch`` extra; skipped otherwise); marked ``torch``. diffusers runs in a
subprocess: torch and JAX computing in one process slow torch down ~30x (shared/reference/official_code.md).
Nothing is downloaded.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytestmark = pytest.mark.torch

from tests.diffusers_layout import CIFAR10_UNET, DIGITS_UNET, SCHEDULER, unet_layout  # noqa: E402

REFERENCE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    folder, config = sys.argv[1], json.loads(sys.argv[2])
    torch.manual_seed(0)
    unet = UNet2DModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    with torch.no_grad():  # every tensor random, scaled to keep activations O(1); sharp attention (q, k x3)
        for name, p in unet.named_parameters():
            if p.dim() > 1:
                gain = 3.0 if (".to_q." in name or ".to_k." in name) else 1.0
                p.copy_(gain * torch.randn_like(p) / p[0].numel() ** 0.5)
            else:
                p.copy_((1.0 if "norm" in name and name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
    unet.save_pretrained(folder + "/unet", safe_serialization=True)
    DDPMScheduler(**{k: v for k, v in json.loads(sys.argv[3]).items() if not k.startswith("_")}).save_pretrained(
        folder + "/scheduler")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, config["in_channels"], config["sample_size"], config["sample_size"])).astype("f4")
    t = np.array([3, 917])
    with torch.no_grad():
        eps = unet(torch.from_numpy(x), torch.from_numpy(t)).sample.numpy()
    shapes = {k: list(v.shape) for k, v in unet.state_dict().items()}
    np.savez(folder + "/reference.npz", x=x, t=t, eps=eps)
    json.dump(shapes, open(folder + "/shapes.json", "w"))
""")


def _reference(folder, config):
    subprocess.run([sys.executable, "-c", REFERENCE, str(folder), json.dumps(config), json.dumps(SCHEDULER)],
                   check=True, capture_output=True, text=True)
    with np.load(folder / "reference.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("config", [CIFAR10_UNET, DIGITS_UNET], ids=["cifar10", "digits"])
def test_converted_unet_equals_diffusers(tmp_path, config):
    from gm_jax.convert import read_diffusers_ddpm, unet_params_from_diffusers
    from gm_jax.data import DataSpec
    from gm_jax.models import MODELS, override

    ref = _reference(tmp_path, config)
    # the layout the no-torch tests write is diffusers' own
    shapes = json.loads((tmp_path / "shapes.json").read_text())
    assert {k: tuple(v) for k, v in shapes.items()} == unet_layout(config)
    sets, state, shape = read_diffusers_ddpm(str(tmp_path))
    spec = DataSpec(name="x", kind="image", shape=shape, num_levels=256, num_classes=0)
    model = MODELS["ddpm"][1](override(MODELS["ddpm"][0](), sets), spec)
    expected = jax.eval_shape(model.init, jax.random.key(0),
                              {"image": jnp.zeros((1, *shape), jnp.int32)})["params"]
    params = unet_params_from_diffusers(state, expected)
    if config is CIFAR10_UNET:
        assert sum(v.size for v in state.values()) == 35_746_307  # Ho et al.'s 35.7M
    eps = model.output_fn(jax.tree_util.tree_map(jnp.asarray, params))(
        jnp.asarray(ref["x"].transpose(0, 2, 3, 1)), jnp.asarray(ref["t"], jnp.int32), None)
    scale = np.abs(ref["eps"]).max()
    np.testing.assert_allclose(np.asarray(eps).transpose(0, 3, 1, 2), ref["eps"], rtol=0, atol=1e-4 * scale)
