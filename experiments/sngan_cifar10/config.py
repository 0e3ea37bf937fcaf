"""SNGAN with ResNets on CIFAR-10: Miyato, Kataoka, Koyama & Yoshida (2018), "Spectral Normalization for
Generative Adversarial Networks", ICLR. The hinge loss, unconditional, ResNet setting.

Sources: the paper (sec. 4: the ResNet's optimiser settings; appendix B.4: the ResNet architectures) and the
evaluation code of its authors' library, pfnet-research/chainer-gan-lib (``common/evaluation.py``).
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Miyato et al. 2018, Spectral Normalization for Generative Adversarial Networks"

RECIPE = Recipe(
    name="sngan_cifar10",
    paper=PAPER,
    model="sngan",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "loss": Setting("hinge", "sec. 4: the hinge loss for the ResNet models"),
        "penalty": Setting("none", "spectral normalisation only"),
        "n_critic": Setting("5", "sec. 4: n_dis = 5"),
        "lr_generator": Setting("2e-4", "sec. 4: alpha = 0.0002 for the ResNet"),
        "lr_discriminator": Setting("2e-4", "sec. 4: alpha = 0.0002 for the ResNet"),
        "b1": Setting("0.0", "sec. 4: beta1 = 0"),
        "b2": Setting("0.9", "sec. 4: beta2 = 0.9"),
        "architecture": Setting("resnet", "appendix B.4: the ResNet generator and discriminator for CIFAR-10"),
        "width": Setting("128", "appendix B.4: discriminator width 128 (the generator's is 256; see differences)"),
        "latent_dim": Setting("128", "appendix B.4: z in R^128"),
    },
    train_sets={
        "steps": Setting("50000", "sec. 4: 50k generator updates"),
        "batch_size": Setting("64", "sec. 4: batch 64"),
        "schedule": Setting("linear", "sec. 4 / the official updater: lr decayed linearly to 0"),
        "warmup_steps": Setting("0", "no warm-up"),
        "ema_decay": Setting("0", "the paper samples from the trained generator (no EMA)"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("500", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(
        Evaluation("is", "is", ("--num", "50000", "--features", "inception", "--resize", "tf1"),
                   "sec. 4: IS of 50k samples"),
        Evaluation("fid", "fid", ("--real", "cifar10:test", "--num", "10000", "--features", "inception", "--resize",
                                  "tf1"),
                   "FID of 10k samples against the test set (pfnet-research/chainer-gan-lib common/evaluation.py "
                   "calc_FID: n_ims = 10000)"),
    ),
    published=(
        Published("Inception score", "is", "is_mean", 8.22, "Miyato et al. 2018 [P][S] (8.22 +- 0.05)"),
        Published("FID (test set)", "fid", "fid", 21.7, "Miyato et al. 2018 [P][S]"),
    ),
    deviations=(
        "generator width: the paper's ResNet generator has 256 channels and its discriminator 128; gm-jax's "
        "GAN has one width for both, set to the discriminator's 128",
        "the FID reference is the test set, as the maintainer of a reimplementation confirms "
        "(GongXinyuu/sngan.pytorch#5)",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"width": "8", "latent_dim": "8"}),
}
