"""WGAN-GP with ResNets on CIFAR-10: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville (2017), "Improved
Training of Wasserstein GANs", NeurIPS.

Sources: the paper (Algorithm 1, sec. 5, appendix F) and its official code, igul222/improved_wgan_training
(``gan_cifar_resnet.py``: DIM_G, DIM_D, N_CRITIC, BATCH_SIZE, ITERS, LR, DECAY and the Adam betas). The
ResNet code trains with Adam(2e-4, 0, 0.9) decayed linearly to 0, where Algorithm 1's defaults are
Adam(1e-4, 0, 0.9); the recipe follows the code behind the paper's CIFAR-10 ResNet number.
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"
CODE = "igul222/improved_wgan_training gan_cifar_resnet.py"
# IS of 50k samples by the improved-GAN (OpenAI) Inception code; FID (not in the paper) against the
# training set, as the later tables that quote WGAN-GP compute it
INCEPTION = ("--real", "cifar10:train", "--num", "50000", "--features", "inception", "--resize", "tf1")

RECIPE = Recipe(
    name="wgan_gp_cifar10",
    paper=PAPER,
    model="wgan_gp",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "loss": Setting("wasserstein", "sec. 4: the WGAN critic loss"),
        "penalty": Setting("gp", "sec. 4, eq. 3: two-sided gradient penalty on interpolates"),
        "penalty_weight": Setting("10", f"sec. 4: lambda = 10; {CODE}: LAMBDA = 10"),
        "n_critic": Setting("5", f"Algorithm 1: n_critic = 5; {CODE}: N_CRITIC = 5"),
        "lr_generator": Setting("2e-4", f"{CODE}: LR = 2e-4"),
        "lr_discriminator": Setting("2e-4", f"{CODE}: LR = 2e-4"),
        "b1": Setting("0.0", f"Algorithm 1 / {CODE}: beta1 = 0"),
        "b2": Setting("0.9", f"Algorithm 1 / {CODE}: beta2 = 0.9"),
        "architecture": Setting("resnet", "appendix F: ResNet generator and critic for CIFAR-10"),
        "width": Setting("128", f"{CODE}: DIM_G = DIM_D = 128"),
        "latent_dim": Setting("128", f"{CODE}: 128-d noise"),
    },
    train_sets={
        "steps": Setting("100000", f"{CODE}: ITERS = 100000 generator iterations"),
        "batch_size": Setting("64", f"{CODE}: BATCH_SIZE = 64"),
        "schedule": Setting("linear", f"{CODE}: DECAY = True, lr decayed linearly to 0"),
        "warmup_steps": Setting("0", f"{CODE}: no warm-up"),
        "ema_decay": Setting("0", "the paper samples from the trained generator (no EMA)"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("500", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(Evaluation("samples", "fid,is", INCEPTION, "sec. 5: IS of 50k samples (unsupervised)"),),
    published=(
        Published("Inception score (unsupervised)", "samples", "is_mean", 7.86, "Table 3 (7.86 +- 0.07) [S]"),
        Published("FID (quoted by Song & Ermon 2019)", "samples", "fid", 36.4, "Song & Ermon 2019, Table 1 [S]"),
    ),
    deviations=(
        "generator normalisation: gm-jax's ResNet generator uses batch norm as the official one does, but its "
        "blocks follow Miyato et al.'s layout (shared with SNGAN); the critic has no normalisation, as in the code",
        "the FID row is not the paper's (it reports only IS) but Song & Ermon's quote of it; the reference set "
        "and sample count here (training set, 50k) are gm-jax's choice",
        "the generator's batch: the official code trains the generator on twice the critic's batch "
        "(GEN_BS_MULTIPLE = 2, 128 images); gm-jax uses one batch of 64 for both",
        "the official critic sees real images with U(0, 1/128) noise added; gm-jax's GAN feeds them as they are",
        "the committed gan_cifar_resnet.py sets CONDITIONAL = ACGAN = True (the supervised 8.42 row); the "
        "unsupervised 7.86 row, reproduced here, is the same file with both False",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"width": "8", "latent_dim": "8"}),
}
