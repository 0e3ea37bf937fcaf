"""Glow on CIFAR-10: Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1 Convolutions",
NeurIPS. The quantitative CIFAR-10 model (affine coupling, invertible 1x1 convolutions, K = 32, L = 3).

Sources: the paper (sec. 5, Table 2) and its official code, openai/glow (README "CIFAR-10 Quantitative
result": ``--n_level 3 --depth 32 --flow_permutation 2 --flow_coupling 1 --learntop --lr 0.001
--n_bits_x 8`` on 8 GPUs; ``train.py`` for the other flags' defaults).
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Kingma & Dhariwal 2018, Glow: Generative Flow with Invertible 1x1 Convolutions"
README = "openai/glow README, CIFAR-10 quantitative command"
TRAIN = "openai/glow train.py defaults"

RECIPE = Recipe(
    name="glow_cifar10",
    paper=PAPER,
    model="glow",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "num_levels": Setting("3", f"sec. 5: L = 3; {README}: --n_level 3"),
        "steps_per_level": Setting("32", f"sec. 5: K = 32; {README}: --depth 32"),
        "channels": Setting("512", f"sec. 5: 512 channels in the coupling networks; {TRAIN}: --width 512"),
        "num_blocks": Setting("0", "gm-jax: conv3x3 in, zero-conv3x3 out, no residual block (see the differences)"),
        "coupling": Setting("affine", f"{README}: --flow_coupling 1 (affine)"),
        "base": Setting("normal", "sec. 3: a Gaussian prior (see the differences for --learntop)"),
    },
    train_sets={
        "steps": Setting("100000", "gm-jax: about 1,000 epochs at batch 512; the paper trains until convergence "
                                   f"({TRAIN}: --epochs 1000000, stopped by hand)"),
        "batch_size": Setting("512", f"{TRAIN}: --n_batch_train 64 per GPU x 8 GPUs"),
        "optimizer": Setting("adam", f"{TRAIN}: --optimizer adamax (see the differences)"),
        "lr": Setting("1e-3", f"{README}: --lr 0.001"),
        "b2": Setting("0.99", "openai/glow optim.py: beta2 = 1 - 1 / (steps per epoch), 1 - 1/98 at batch 512"),
        "schedule": Setting("constant", "openai/glow train.py: the lr is constant after the warm-up"),
        "grad_clip": Setting("0", "openai/glow: no gradient clipping"),
        "warmup_steps": Setting("977", f"{TRAIN}: --epochs_warmup 10, i.e. 10 x 50,000 / 512 steps"),
        "ema_decay": Setting("0.99", f"{TRAIN}: Polyak averaging over --polyak_epochs 1 (98 steps at batch 512)"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("500", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(Evaluation("nll", "nll", (), "Table 2: test bits/dim of 8-bit data, uniform dequantization"),),
    published=(Published("test NLL, bits/dim", "nll", "test_bits_per_dim", 3.35, "Table 2 [S, confirmed]"),),
    deviations=(
        "optimizer: Adamax in the official code, Adam here (gm-jax offers adam, adamw and sgd)",
        "prior: --learntop learns the top-level prior's mean and scale from a zero-initialised conv; gm-jax's "
        "base is a fixed standard normal",
        "preprocessing: the official code models x / 256 - 1/2 plus uniform noise; gm-jax's Glow adds the "
        "logit map of RealNVP (logit_alpha 0.05), whose log-determinant is included in the bits/dim",
        "coupling network: conv3x3-ReLU-conv1x1-ReLU-zero-conv3x3 in the paper; gm-jax's conditioner with "
        "num_blocks=0 is conv3x3-SiLU-zero-conv3x3, without the hidden 1x1 layer (a residual block, "
        "num_blocks=1, would add two 512-wide convs and 6x the parameters)",
        "data augmentation: the official loader's --dal 1 ('standard') augmentation is not reproduced",
        "1x1 convolutions: the official code computes the plain (not LU-decomposed) weight's log-determinant "
        "(model.py: 'if True'); gm-jax uses the LU parameterisation of the paper's sec. 3.2",
        "affine coupling scale: sigmoid(h + 2) in the official code; gm-jax bounds the log-scale by "
        "max_log_scale (3) with a tanh",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"num_levels": "2", "steps_per_level": "2", "channels": "8"}),
}
