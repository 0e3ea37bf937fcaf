"""RealNVP on CIFAR-10: Dinh, Sohl-Dickstein & Bengio (2017), "Density Estimation using Real NVP", ICLR.
The multi-scale affine-coupling flow with ResNet coupling networks, trained by maximum likelihood on
uniformly dequantized, logit-mapped images.

Sources: the paper (sec. 3.4-3.6: masks, squeeze and factor-out; sec. 4.1: the CIFAR-10 network, optimiser
and preprocessing; Table 1). The official code (in the authors' TensorFlow models repository) has no
CIFAR-10 configuration, so the settings below are the paper's text [M where marked: read from memory of
sec. 4.1, cross-checked against chrischute/real-nvp, a PyTorch reimplementation reaching 3.5 bits/dim with
2 scales, 8 residual blocks of 64 channels].
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Dinh, Sohl-Dickstein & Bengio 2017, Density Estimation using Real NVP"

RECIPE = Recipe(
    name="realnvp_cifar10",
    paper=PAPER,
    model="realnvp",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "num_scales": Setting("2", "sec. 4.1: CIFAR-10 downscales once [M]: checkerboard couplings, squeeze, "
                                   "channel couplings, factor out half, then a last checkerboard scale"),
        "coupling_pairs": Setting("2", "sec. 3.6: 3 checkerboard + 3 channel couplings per scale, 4 at the last "
                                       "(see the differences: gm-jax's are pairs)"),
        "channels": Setting("64", "sec. 4.1: 64 feature maps in the coupling ResNets for CIFAR-10 [M]"),
        "num_blocks": Setting("8", "sec. 4.1: 8 residual blocks for CIFAR-10 [M]"),
        "logit_alpha": Setting("0.05", "sec. 4.1: alpha = 0.05 in the logit preprocessing (gm-jax's map: "
                                       "gm_jax/models/flow.py)"),
        "base": Setting("normal", "sec. 4.1: an isotropic unit-norm Gaussian prior"),
    },
    train_sets={
        "steps": Setting("500000", "gm-jax: 640 epochs at batch 64; the paper trains to convergence on the "
                                   "validation likelihood"),
        "batch_size": Setting("64", "sec. 4.1: batch size 64"),
        "optimizer": Setting("adamw", "sec. 4.1: ADAM with default hyper-parameters, plus an L2 penalty "
                                      "(see the differences)"),
        "lr": Setting("1e-3", "sec. 4.1: ADAM's default learning rate [M]"),
        "weight_decay": Setting("5e-5", "sec. 4.1: L2 regularisation of the weight scale parameters, 5e-5"),
        "schedule": Setting("constant", "sec. 4.1: no schedule stated"),
        "warmup_steps": Setting("0", "sec. 4.1: no warm-up stated"),
        "grad_clip": Setting("0", "sec. 4.1: no gradient clipping stated"),
        "ema_decay": Setting("0", "the paper evaluates the trained weights (no averaging)"),
        "hflip": Setting("true", "sec. 4.1: horizontal flips for CIFAR-10, CelebA and LSUN [M]"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(Evaluation("nll", "nll", (), "Table 1: test bits/dim of 8-bit data, uniform dequantization, "
                                                 "the logit map's log-determinant included"),),
    published=(Published("test NLL, bits/dim", "nll", "test_bits_per_dim", 3.49, "Table 1 [S, confirmed]"),),
    deviations=(
        "couplings per scale: gm-jax's RealNVP builds couplings in complementary pairs (parity 0, 1) after an "
        "ActNorm, so each scale has 4 checkerboard and 4 channel couplings, and the last 4 checkerboard ones; "
        "the paper has 3, 3 and 4",
        "normalisation: the paper batch-normalises the coupling ResNets and the flow itself (a running-average "
        "batch norm, its appendix E) and weight-normalises the convolutions; gm-jax uses ActNorm in the flow "
        "and plain convolutions with SiLU in the conditioners",
        "scale: the paper computes s = scale * tanh(raw) with a learned scale; gm-jax bounds the log-scale by "
        "max_log_scale (3) with a tanh",
        "L2 penalty: the paper penalises the weight-norm scales with 5e-5; gm-jax applies decoupled weight "
        "decay 5e-5 (AdamW) to every parameter",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"num_scales": "2", "coupling_pairs": "1", "channels": "8", "num_blocks": "1"}),
}
