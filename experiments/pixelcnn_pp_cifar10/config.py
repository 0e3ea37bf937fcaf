"""PixelCNN++ on CIFAR-10: Salimans, Karpathy, Chen & Kingma (2017), "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications", ICLR. Unconditional, exact test likelihood.

Sources: the paper (sec. 2: the coupled logistic mixture over whole pixels, down/up-sampling, short-cuts,
dropout; sec. 3: CIFAR-10) and its official code, openai/pixel-cnn (``train.py``'s defaults: nr_resnet 5,
nr_filters 160, nr_logistic_mix 10, concat_elu, lr 0.001 decayed by 0.999995 a step, 12 images per GPU on 8
GPUs, dropout 0.5, Polyak decay 0.9995; its ``adam_updates`` call: mom1 0.95, mom2 0.9995). The network is
gm-jax's ``architecture=pixelcnn++`` (``gm_jax/nets/pixelcnn_pp.py``), whose parameter count equals the
official code's (tests/nets/test_pixelcnn_pp.py counts the official variables from its source).
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Salimans et al. 2017, PixelCNN++: Improving the PixelCNN with Discretized Logistic Mixture Likelihood"
TRAIN = "openai/pixel-cnn train.py defaults"
STEPS = 500_000
DECAY = 0.999995  # the official lr decay per step

RECIPE = Recipe(
    name="pixelcnn_pp_cifar10",
    paper=PAPER,
    model="pixelcnn",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "architecture": Setting("pixelcnn++", "sec. 2.3-2.5: down/up-sampling streams of gated ResNet blocks with "
                                              "short-cuts (openai/pixel-cnn pixel_cnn_pp/model.py)"),
        "features": Setting("160", f"{TRAIN}: --nr_filters 160"),
        "num_resnet": Setting("5", f"{TRAIN}: --nr_resnet 5"),
        "likelihood": Setting("dmol", "sec. 2.1-2.2: a discretized logistic mixture over whole pixels"),
        "num_mixtures": Setting("10", f"sec. 3; {TRAIN}: --nr_logistic_mix 10"),
        "dropout": Setting("0.5", f"sec. 2.5 [M]; {TRAIN}: --dropout_p 0.5"),
        "conditional": Setting("false", "the 2.92 bits/dim model is unconditional"),
    },
    train_sets={
        "steps": Setting(str(STEPS), "gm-jax: about 960 epochs at batch 96 (the official code runs until stopped, "
                                     "--max_epochs 5000)"),
        "batch_size": Setting("96", f"{TRAIN}: --batch_size 12 per GPU x --nr_gpu 8"),
        "optimizer": Setting("adam", "openai/pixel-cnn nn.py adam_updates"),
        "lr": Setting("1e-3", f"{TRAIN}: --learning_rate 0.001"),
        "b1": Setting("0.95", "openai/pixel-cnn train.py: adam_updates(..., mom1=0.95)"),
        "b2": Setting("0.9995", "openai/pixel-cnn train.py: adam_updates(..., mom2=0.9995)"),
        "schedule": Setting("exponential", f"{TRAIN}: lr *= --lr_decay 0.999995 every step"),
        "final_lr_ratio": Setting(f"{DECAY ** STEPS:.6g}", f"0.999995 ** {STEPS:,} steps"),
        "warmup_steps": Setting("0", "no warm-up (the official code initialises the weight norms from data)"),
        "grad_clip": Setting("0", "no gradient clipping"),
        "ema_decay": Setting("0.9995", f"{TRAIN}: --polyak_decay 0.9995; the test loss uses the averaged weights"),
        "hflip": Setting("false", "openai/pixel-cnn data/cifar10_data.py: no augmentation"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(Evaluation("nll", "nll", (), "sec. 3: exact test NLL in bits/dim, averaged weights"),),
    published=(Published("test NLL, bits/dim", "nll", "test_bits_per_dim", 2.92,
                         "sec. 3 / Table 1 [S]; google/flax's deleted examples/pixelcnn README reports 2.923 "
                         "(shared/reference/model_anchors.md)"),),
    deviations=(
        "initialisation: the official code sets every weight-norm scale and bias from a batch of data "
        "(data-dependent init, --init_batch_size 100); gm-jax starts the scales at 1 (0.1 for each block's "
        "last convolution, the official init_scale) and the biases at 0",
        "the head's output layout (the order of the 100 numbers per pixel) differs from the official one; the "
        "distribution and its parameter count are the same",
        "training length: the official code trains until stopped; 500k steps at batch 96 is gm-jax's choice, "
        "and final_lr_ratio makes the exponential decay that of the official code over them",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"features": "8", "num_resnet": "1", "num_mixtures": "2"}),
}
