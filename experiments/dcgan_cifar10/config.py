"""DCGAN on CIFAR-10: Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR.

Sources: the paper (sec. 3: the architecture guidelines; sec. 4: the training details) and, for the
32x32 layout the paper leaves unstated, the DCGAN baseline of Gulrajani et al.'s code
(igul222/improved_wgan_training ``gan_cifar.py``: 4x4x512 -> 32x32x3 generator, 128-256-512 critic), the
CIFAR-10 DCGAN baseline of WGAN-GP's code. The paper trains its generative models on LSUN, ImageNet and
faces; it reports no CIFAR-10 sample quality, so the published number here is a later table's quote [M].
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Radford, Metz & Chintala 2016, Unsupervised Representation Learning with Deep Convolutional GANs"
CODE = "igul222/improved_wgan_training gan_cifar.py (MODE = 'dcgan')"
# IS of 50k samples by the improved-GAN (OpenAI) Inception code, as the tables quoting DCGAN compute it
INCEPTION = ("--real", "cifar10:train", "--num", "50000", "--features", "inception", "--resize", "tf1")

RECIPE = Recipe(
    name="dcgan_cifar10",
    paper=PAPER,
    model="dcgan",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "loss": Setting("non_saturating", "Goodfellow et al. 2014's non-saturating generator loss (the DCGAN code's "
                                          "BCE on flipped labels)"),
        "penalty": Setting("none", "no penalty"),
        "n_critic": Setting("1", "one discriminator update per generator update"),
        "lr_generator": Setting("2e-4", "sec. 4: learning rate 0.0002"),
        "lr_discriminator": Setting("2e-4", "sec. 4: learning rate 0.0002"),
        "b1": Setting("0.5", "sec. 4: beta1 = 0.5"),
        "b2": Setting("0.999", "Adam's default beta2 (the paper states none)"),
        "architecture": Setting("dcgan", "sec. 3: strided (transposed) convolutions, BN, ReLU / LeakyReLU(0.2)"),
        "width": Setting("128", f"{CODE}: DIM = 128 (4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x3)"),
        "latent_dim": Setting("100", "sec. 4 / fig. 1: a 100-dimensional z"),
    },
    train_sets={
        "steps": Setting("100000", "gm-jax: 256 epochs at batch 128 (the paper states no CIFAR-10 length; "
                                   f"{CODE}: ITERS = 200000 at batch 64)"),
        "batch_size": Setting("128", "sec. 4: mini-batch size 128"),
        "schedule": Setting("constant", "sec. 4: a constant learning rate"),
        "warmup_steps": Setting("0", "no warm-up"),
        "grad_clip": Setting("0", "no gradient clipping"),
        "ema_decay": Setting("0", "the paper samples from the trained generator (no EMA)"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("500", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(Evaluation("samples", "fid,is", INCEPTION, "IS of 50k samples, as the tables quoting DCGAN"),),
    published=(Published("Inception score", "samples", "is_mean", 6.16,
                         "6.16 +- 0.07, as quoted in Gulrajani et al. 2017 Table 3 from an earlier paper [M]"),),
    deviations=(
        "discriminator normalisation: the paper batch-normalises every discriminator layer but the first; "
        "gm-jax's DCGAN discriminator has none (it scores real and fake in one call, where batch statistics "
        "would mix them, and its per-example logits allow penalties); gan_cifar.py's DCGAN critic has none either",
        "kernels: 4x4 (transposed) convolutions here; gan_cifar.py uses 5x5, hence a different parameter count",
        "latent prior: z ~ U(-1, 1)^100 in the paper, N(0, I) here",
        "initialisation: N(0, 0.02) weights in the paper; gm-jax keeps Flax's default initialisers",
        "training length: the paper gives none for CIFAR-10; 100k steps at batch 128 is gm-jax's choice",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"width": "8", "latent_dim": "8"}),
}
