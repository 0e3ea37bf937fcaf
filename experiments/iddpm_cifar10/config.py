"""Improved DDPM on CIFAR-10: Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models",
ICML. The L_hybrid, cosine-schedule, T = 4000 model of the paper's CIFAR-10 checkpoint.

Sources: the paper (sec. 3, Table 2) and its official code, openai/improved-diffusion (README "Unconditional
CIFAR-10 with our L_hybrid objective and cosine noise schedule": MODEL_FLAGS, DIFFUSION_FLAGS, TRAIN_FLAGS;
``improved_diffusion/script_util.py`` for the flags' defaults).
"""

from __future__ import annotations

from experiments.ddpm_cifar10.config import INCEPTION_50K
from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, TINY_UNET, smoke

PAPER = "Nichol & Dhariwal 2021, Improved Denoising Diffusion Probabilistic Models"
README = "openai/improved-diffusion README, CIFAR-10 L_hybrid cosine"

RECIPE = Recipe(
    name="iddpm_cifar10",
    paper=PAPER,
    model="ddpm",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        "channels": Setting("128", f"{README}: --num_channels 128"),
        "channel_mult": Setting("1,2,2,2", "improved_diffusion/script_util.py: channel_mult (1, 2, 2, 2) at 32x32"),
        "num_res_blocks": Setting("3", f"{README}: --num_res_blocks 3"),
        "attention_resolutions": Setting("16,8", "script_util.py: attention_resolutions '16,8' (default)"),
        "dropout": Setting("0.3", f"{README}: --dropout 0.3"),
        "schedule": Setting("cosine", f"sec. 3.2; {README}: --noise_schedule cosine"),
        "num_steps": Setting("4000", f"sec. 3; {README}: --diffusion_steps 4000"),
        "prediction": Setting("eps", "sec. 3.1: the network predicts eps"),
        "learn_variance": Setting("true", f"sec. 3.1, L_hybrid; {README}: --learn_sigma True"),
        "vlb_weight": Setting("0.001", "sec. 3.1: lambda = 0.001"),
        "vlb_units": Setting("bits", "improved_diffusion/gaussian_diffusion.py: L_vlb in bits/dim"),
        "sampler": Setting("ddpm", "Table 2: FID of ancestral samples over all T steps"),
        "eval_timesteps": Setting("0", "Table 2 NLL: the bound over all T steps (gaussian_diffusion.py calc_bpd_loop)"),
    },
    train_sets={
        "steps": Setting("500000", "Table 2: 500K iterations on CIFAR-10 (checkpoint cifar10_uncond_50M_500K)"),
        "batch_size": Setting("128", f"{README}: --batch_size 128"),
        "optimizer": Setting("adam", "improved_diffusion/train_util.py: AdamW, weight_decay 0 (= Adam)"),
        "lr": Setting("1e-4", f"{README}: --lr 1e-4"),
        "warmup_steps": Setting("0", "train_util.py: no warm-up"),
        "grad_clip": Setting("0", "train_util.py: no gradient clipping"),
        "ema_decay": Setting("0.9999", "train_util.py: ema_rate 0.9999"),
        "hflip": Setting("false", "improved_diffusion/image_datasets.py: no flips"),
        "checkpoint_every": Setting("10000", "gm-jax: a checkpoint every 10k steps (not a paper setting)"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(
        Evaluation("samples", "fid", INCEPTION_50K + ("--sampler", "ddpm"),
                   "Table 2: FID of 50k samples against the training set"),
        Evaluation("nll", "nll", (), "Table 2: test NLL in bits/dim, full bound"),
    ),
    published=(
        Published("FID (50k, train set), L_hybrid cosine", "samples", "fid", 3.19, "Table 2 [S]"),
        Published("test NLL, bits/dim (bound), L_hybrid cosine", "nll", "test_bits_per_dim", 3.17, "Table 2 [S]"),
    ),
    deviations=(
        "network: the official U-Net uses scale-shift (FiLM) time conditioning in its ResBlocks "
        "(use_scale_shift_norm=True) and 4 attention heads; gm-jax's U-Net adds the time embedding (Ho et al.'s "
        "block) and uses one head, so the parameter count differs from the checkpoint's ~50M",
        "the timestep's scale: the official code feeds the network t * 1000 / T (rescale_timesteps); gm-jax feeds "
        "the step index t, which differs only by a constant factor in the sinusoidal embedding's input",
        "EMA warm-up as in ddpm_cifar10 (min(0.9999, (1 + n) / (10 + n))); improved-diffusion uses 0.9999 from the "
        "start",
        "the L_vlb-trained rows of Table 2 need importance-sampled timesteps (loss-second-moment), which gm-jax "
        "does not offer; this recipe is the L_hybrid row",
    ),
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {**TINY_UNET, "num_steps": "20"}),
}
