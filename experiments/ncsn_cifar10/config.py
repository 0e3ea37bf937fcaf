"""NCSN on CIFAR-10: Song & Ermon (2019), "Generative Modeling by Estimating Gradients of the Data
Distribution", NeurIPS.

Sources: the paper (sec. 4-5, appendix B) and its official code, ermongroup/ncsn (``configs/anneal.yml``
with its CIFAR-10 lines; ``runners/anneal_runner.py``). The official code models images in [0, 1]; gm-jax
models them in [-1, 1], twice the scale, so every noise level is doubled and the Langevin step size
multiplied by 4. The official sampler steps x + a s + sqrt(2 a) z with a = epsilon (sigma / sigma_L)^2,
which is gm-jax's (and Algorithm 1's) x + a' / 2 s + sqrt(a') z with a' = 2 a: so step_lr is 2 x 4 x 2e-5.
With these, the chain is the official chain, rescaled.
"""

from __future__ import annotations

from experiments.ddpm_cifar10.config import INCEPTION_50K
from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Song & Ermon 2019, Generative Modeling by Estimating Gradients of the Data Distribution"
CONFIG = "ermongroup/ncsn configs/anneal.yml (CIFAR-10 lines)"

RECIPE = Recipe(
    name="ncsn_cifar10",
    paper=PAPER,
    model="ncsn",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "architecture": Setting("refinenet", "appendix B.1: the conditional dilated RefineNet with CIN++ "
                                             "(models/cond_refinenet_dilated.py, CondRefineNetDilated)"),
        "channels": Setting("128", f"{CONFIG}: ngf 128"),
        "dropout": Setting("0", "the paper uses no dropout"),
        "num_scales": Setting("10", "sec. 5: L = 10"),
        "sigma_max": Setting("2.0", f"sec. 5: sigma_1 = 1 on [0, 1] images ({CONFIG}: sigma_begin 1), x2 for [-1, 1]"),
        "sigma_min": Setting("0.02", f"sec. 5: sigma_L = 0.01 on [0, 1] ({CONFIG}: sigma_end 0.01), x2 for [-1, 1]"),
        "steps_per_sigma": Setting("100", "sec. 5: T = 100 Langevin steps per noise level"),
        "step_lr": Setting("1.6e-4", "runners/anneal_runner.py: step_lr 2e-5 in its x + a s + sqrt(2a) z form (x2 "
                                      "in gm-jax's form), on [0, 1] images (x4 for [-1, 1])"),
        "denoise": Setting("false", "Algorithm 1 ends with the last Langevin step (no final denoising)"),
    },
    train_sets={
        "steps": Setting("200000", f"appendix B.1; {CONFIG}: n_iters 200001"),
        "batch_size": Setting("128", f"{CONFIG}: batch_size 128"),
        "optimizer": Setting("adam", f"{CONFIG}: optimizer Adam, beta1 0.9, no weight decay"),
        "lr": Setting("1e-3", f"{CONFIG}: lr 0.001"),
        "warmup_steps": Setting("0", "runners/anneal_runner.py: no warm-up"),
        "grad_clip": Setting("0", "runners/anneal_runner.py: no gradient clipping"),
        "ema_decay": Setting("0", "NCSN v1 uses no EMA (introduced in NCSNv2, Song & Ermon 2020)"),
        "hflip": Setting("true", f"{CONFIG}: random_flip true"),
        "checkpoint_every": Setting("5000", f"{CONFIG}: snapshot_freq 5000"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(
        Evaluation("samples", "fid,is", INCEPTION_50K + ("--sampler", "langevin"),
                   "Table 1: 50k annealed-Langevin samples; FID against the training set"),
    ),
    published=(
        Published("Inception score", "samples", "is_mean", 8.87, "Table 1 [S][P] (8.87 +- 0.12)"),
        Published("FID (50k, train set)", "samples", "fid", 25.32, "Table 1 [S][P]"),
    ),
    deviations=(
        "initialisation: the official convolutions keep PyTorch's default initialisers; gm-jax's keep Flax's "
        "(the CIN++ embeddings are initialised as in the official code)",
        "initial state: the official sampler starts from uniform noise in [0, 1]; gm-jax starts from "
        "N(0, sigma_1^2 I)",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"channels": "4", "num_scales": "3", "steps_per_sigma": "2"}),
}
