"""CycleGAN on horse2zebra: Zhu, Park, Isola & Efros (2017), "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV. The data is the TFDS catalog's ``cycle_gan/horse2zebra``
(splits trainA/trainB/testA/testB of 256x256 images), read as two unaligned domains
(:mod:`gm_jax.data.domains`).

Sources: the paper (sec. 4: least-squares loss, lambda = 10; appendix 7.1-7.2: the 9-block ResNet generator
for 256x256, the 70x70 PatchGAN, Adam(2e-4, 0.5), batch 1, 100 epochs at the base lr then 100 of linear
decay, the identity loss of 0.5 lambda) and its official code, junyanz/pytorch-CycleGAN-and-pix2pix
(``options/train_options.py``, ``options/base_options.py``: ngf = ndf = 64, n_layers_D 3, lambda_identity
0.5, pool_size 50, load_size 286 / crop_size 256, flips). The paper reports no number for horse2zebra; the
FID below is a later paper's [M].
"""

from __future__ import annotations

from experiments.recipe import Evaluation, Published, Recipe, Setting, smoke
from gm_jax.data import DataSpec

PAPER = "Zhu, Park, Isola & Efros 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
CODE = "junyanz/pytorch-CycleGAN-and-pix2pix options"
HORSE2ZEBRA = DataSpec(name="cycle_gan/horse2zebra", kind="image", shape=(256, 256, 3), num_levels=256,
                       num_classes=0, second_domain=True)
DIGITS2INVERTED = DataSpec(name="digits2inverted", kind="image", shape=(8, 8, 1), num_levels=17, num_classes=0,
                           second_domain=True)
EPOCH = 1334  # steps per epoch at batch 1: the larger domain (trainB, 1,334 zebras; trainA has 1,067 horses)

RECIPE = Recipe(
    name="cyclegan_horse2zebra",
    paper=PAPER,
    model="cyclegan",
    dataset="cycle_gan/horse2zebra",
    spec=HORSE2ZEBRA,
    model_sets={
        "transform": Setting("second_domain", "the dataset's two domains: horses (A) and zebras (B)"),
        "loss": Setting("least_squares", "sec. 4: the least-squares GAN loss (Mao et al. 2017)"),
        "lambda_cycle": Setting("10", "sec. 4: lambda = 10"),
        "identity_weight": Setting("5", f"sec. 5.2 / {CODE}: lambda_identity 0.5 x lambda"),
        "lr": Setting("2e-4", "appendix 7.1: Adam, learning rate 0.0002"),
        "b1": Setting("0.5", f"{CODE}: beta1 0.5"),
        "b2": Setting("0.999", "Adam's default beta2"),
        "width": Setting("64", f"appendix 7.2: c7s1-64 ...; {CODE}: ngf 64"),
        "num_blocks": Setting("9", "appendix 7.2: 9 residual blocks for 256x256 images"),
        "num_down": Setting("2", "appendix 7.2: d128, d256 (two stride-2 stages)"),
        "in_kernel": Setting("7", "appendix 7.2: c7s1 first and last layers"),
        "padding": Setting("reflect", "appendix 7.2: reflection padding"),
        "d_width": Setting("64", f"appendix 7.2: C64-C128-C256-C512; {CODE}: ndf 64"),
        "d_layers": Setting("3", f"appendix 7.2: the 70x70 PatchGAN; {CODE}: n_layers_D 3"),
        "d_kernel": Setting("4", "appendix 7.2: 4x4 convolutions"),
    },
    train_sets={
        "steps": Setting(str(200 * EPOCH), "appendix 7.1: 200 epochs at batch 1 (an epoch: the larger domain)"),
        "batch_size": Setting("1", "appendix 7.1: batch size 1"),
        "schedule": Setting("linear", "appendix 7.1: linear decay to 0 (over the last 100 epochs; see differences)"),
        "warmup_steps": Setting("0", "no warm-up"),
        "ema_decay": Setting("0", "the paper translates with the trained generators (no EMA)"),
        "hflip": Setting("true", f"{CODE}: random horizontal flips (no_flip False)"),
        "checkpoint_every": Setting(str(5 * EPOCH), f"{CODE}: save_epoch_freq 5"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
        "num_samples": Setting("16", "gm-jax: translations of 16 test horses in samples.png"),
    },
    evaluations=(
        Evaluation("horse2zebra", "fid", ("--real", "cycle_gan/horse2zebra:testB", "--features", "inception",
                                          "--resize", "tf1"),
                   "FID of the 120 translated test horses against the 140 test zebras, as Park et al. 2020 compute it",
                   translate=120),
    ),
    published=(Published("FID, horse -> zebra (test)", "horse2zebra", "fid", 77.2,
                         "Park et al. 2020 (CUT), Table 1 [M]"),),
    deviations=(
        "learning-rate schedule: the paper keeps 2e-4 for 100 epochs and decays linearly over the next 100; "
        "gm-jax's linear schedule decays over all 200",
        "the history buffer of 50 generated images for the discriminators (sec. 4) is not used: the "
        "discriminators see the current batch's translations",
        "the least-squares generator term carries Mao et al.'s 1/2 (the adversarial weight relative to the "
        "cycle and identity terms is half the paper's; see gm_jax/models/cyclegan.py)",
        "random crops: the official loader resizes to 286 and crops 256; gm-jax trains on the 256x256 images "
        "with flips only",
        "inputs: gm-jax dequantizes the images uniformly within their 8-bit bins; the official code scales them",
        "the PatchGAN pads its convolutions SAME (a 32x32 logit map at 256x256; the official padding 1 gives "
        "30x30); its receptive field (70) and parameter count are the official ones",
        "pairing: each A image meets a fixed B image (gm_jax/data/domains.py); the official loader draws a "
        "random B each step. The losses split into A and B terms, so only the batch composition differs",
    ),
    # the official code prints 11.378 M per generator and 2.765 M per discriminator (models/networks.py,
    # counted in tests/models/test_cyclegan.py from its layers)
    paper_num_params=2 * (11_378_179 + 2_764_737),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"width": "4", "num_blocks": "1", "num_down": "1", "in_kernel": "3", "padding": "zero",
                            "d_width": "4", "d_layers": "1"},
                   dataset="digits2inverted", spec=DIGITS2INVERTED, real="digits2inverted:testB"),
}
