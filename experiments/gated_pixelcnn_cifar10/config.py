"""Gated PixelCNN on CIFAR-10: van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu (2016),
"Conditional Image Generation with PixelCNN Decoders", NeurIPS. Unconditional, a 256-way softmax per
sub-pixel, exact test likelihood.

Sources: the paper (sec. 2: the gated vertical and horizontal stacks; sec. 3.1: the unconditional
experiments and Table 1). No official code was published, and the paper gives no CIFAR-10 architecture:
the one it states (20 layers, 384 hidden units, 5x5 filters) is that of its larger ImageNet models, used
here for CIFAR-10 too; settings the paper leaves out are gm-jax's choices and say so [M: read from memory
of the paper, unverified here].
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, smoke

PAPER = "van den Oord et al. 2016, Conditional Image Generation with PixelCNN Decoders"

RECIPE = Recipe(
    name="gated_pixelcnn_cifar10",
    paper=PAPER,
    model="pixelcnn",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "architecture": Setting("gated", "sec. 2.2: gated vertical and horizontal stacks, no blind spot"),
        "features": Setting("384", "sec. 3.1: 384 hidden units per layer (its ImageNet models) [M]"),
        "num_layers": Setting("20", "sec. 3.1: 20 layers (its ImageNet models) [M]"),
        "kernel_size": Setting("5", "sec. 3.1: 5x5 filters (its ImageNet models) [M]"),
        "head_features": Setting("1024", "gm-jax: the output network's width (PixelRNN's CIFAR-10 output layers, "
                                         "van den Oord et al. 2016a) [M]"),
        "likelihood": Setting("categorical", "sec. 2: a 256-way softmax per sub-pixel, channels R, G, B in order"),
        "conditional": Setting("false", "Table 1 is unconditional"),
    },
    train_sets={
        "steps": Setting("300000", "gm-jax: 768 epochs at batch 128; the paper does not state its length"),
        "batch_size": Setting("128", "gm-jax: the paper does not state its CIFAR-10 batch"),
        "optimizer": Setting("adam", "gm-jax: the paper does not state its optimiser"),
        "lr": Setting("3e-4", "gm-jax: the paper does not state its learning rate"),
        "schedule": Setting("cosine", "gm-jax: a cosine decay (not stated in the paper)"),
        "warmup_steps": Setting("1000", "gm-jax: a warm-up for the 20-layer stack (not stated in the paper)"),
        "grad_clip": Setting("1.0", "gm-jax: gradient clipping (not stated in the paper)"),
        "ema_decay": Setting("0.9995", "gm-jax: parameter averaging (not stated in the paper)"),
        "hflip": Setting("false", "no augmentation stated"),
        "checkpoint_every": Setting("5000", "gm-jax: a checkpoint every 5k steps (not a paper setting)"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(Evaluation("nll", "nll", (), "Table 1: exact test NLL in bits/dim of the 8-bit data"),),
    published=(Published("test NLL, bits/dim", "nll", "test_bits_per_dim", 3.03,
                         "Table 1 (train 2.90) [P: quoted in Ho et al. 2020]"),),
    deviations=(
        "the paper states neither its optimiser, learning rate, batch nor training length for CIFAR-10; "
        "the training settings here are gm-jax's choices",
        "the output network: the paper maps the horizontal stack to the softmaxes with 1x1 layers whose width "
        "it does not state; gm-jax uses a skip sum over the layers, a 1024-wide 1x1 layer, and a per-channel "
        "hidden layer that sees the pixel's earlier channels",
        "receptive field: the vertical stack's (n//2 + 1) x n convolution on shifted inputs is the paper's masked "
        "one, but gm-jax's horizontal stack convolves 1 x n pixels to the left (n columns, about twice the "
        "weights) where the paper's masked 1 x n kernel keeps n//2 + 1",
        "architecture: the paper's sizes (20 x 384, 5x5) are those it states for ImageNet; it gives none for "
        "CIFAR-10",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {"features": "8", "num_layers": "2", "kernel_size": "3", "head_features": "16"}),
}
