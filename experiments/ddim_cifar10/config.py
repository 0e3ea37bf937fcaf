"""DDIM sampling of the CIFAR-10 DDPM: Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models", ICLR.

DDIM trains nothing new: Table 1 samples Ho et al.'s CIFAR-10 model with S of the T = 1000 steps. This
recipe trains that model as ddpm_cifar10 does, or, with ``--evaluate-only --workdir RUN``, samples a finished
ddpm_cifar10 run or the published checkpoint converted by ``gm-jax convert diffusers-ddpm``. On CIFAR-10 the
S steps are spaced quadratically (sec. 5 / appendix D.2: tau_i = floor(c i^2)); eta = 0 is the deterministic
sampler. The spacing and eta are inference settings, passed to ``gm-jax evaluate`` as ``--set``.
"""

from __future__ import annotations

from experiments.ddpm_cifar10.config import INCEPTION_50K, RECIPE as DDPM
from experiments.recipe import Evaluation, Published, Setting, TINY_UNET, smoke

PAPER = "Song, Meng & Ermon 2021, Denoising Diffusion Implicit Models"
STEPS = (10, 20, 50, 100, 1000)
# Table 1, CIFAR-10, eta = 0 row: FID of 50k samples for S = 10, 20, 50, 100, 1000 [S, confirmed]
FID_ETA0 = (13.36, 6.84, 4.67, 4.16, 4.04)

RECIPE = DDPM.replace(
    name="ddim_cifar10",
    paper=PAPER,
    model_sets={
        "sampler": Setting("ddim", "sec. 4.1: the generative process with sigma = 0"),
        "eta": Setting("0.0", "Table 1 row eta = 0 (DDIM)"),
        "timestep_spacing": Setting("quad", "appendix D.2: quadratic tau on CIFAR-10"),
    },
    evaluations=tuple(
        Evaluation(f"ddim_{s}", "fid", INCEPTION_50K + ("--sampler", "ddim", "--steps", str(s)),
                   f"Table 1: S = {s}, 50k samples, FID against the training set") for s in STEPS),
    published=tuple(Published(f"FID, eta = 0, S = {s}", f"ddim_{s}", "fid", fid, "Table 1 [S]")
                    for s, fid in zip(STEPS, FID_ETA0)),
    deviations=DDPM.deviations + (
        "the recipe evaluates Table 1's eta = 0 row; its eta = 0.2, 0.5 and 1 rows need the run's eta (an "
        "inference setting) changed before sampling, and its sigma-hat row a sampler gm-jax does not offer",
        "gm-jax clips the predicted x_0 to [-1, 1] at every image step; the official sampler (functions/"
        "denoising.py generalized_steps) does not, which may move the FID at small S",
        "rounding repeats one quadratic step at S = 50, 100 and 1000 (49, 96 and 688 distinct steps): gm-jax "
        "drops the repeats, which the official sampler keeps as identity steps, so the samples are the same",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {**TINY_UNET, "num_steps": "50"},
                   sampler_flags={f"ddim_{s}": ("--sampler", "ddim", "--steps", str(min(s, 50))) for s in STEPS}),
}
