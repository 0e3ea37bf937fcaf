"""DDPM on CIFAR-10: Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models", NeurIPS.

Sources: the paper (sec. 4 and appendix B) and its official code, hojonathanho/diffusion
(``scripts/run_cifar.py``: the ``train`` defaults; ``diffusion_tf/models/unet.py``: the network).

The published weights (the diffusers pipeline google/ddpm-cifar10-32, converted from the official
checkpoint) evaluate by the same protocol without training:
``gm-jax convert diffusers-ddpm ddpm-cifar10-32/ --workdir RUN`` then
``python -m experiments.ddpm_cifar10 --workdir RUN --evaluate-only``.
"""

from __future__ import annotations

from experiments.recipe import CIFAR10, Evaluation, Published, Recipe, Setting, TINY_UNET, smoke

PAPER = "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models"
CODE = "hojonathanho/diffusion scripts/run_cifar.py"
# FID and IS of 50,000 samples against the training set, by the TF1 Inception of the TTUR/improved-GAN code
# (appendix B: "FID ... computed with respect to the training set"; run_cifar.py: num_inception_samples=50000)
INCEPTION_50K = ("--real", "cifar10:train", "--num", "50000", "--features", "inception", "--resize", "tf1")

RECIPE = Recipe(
    name="ddpm_cifar10",
    paper=PAPER,
    model="ddpm",
    dataset="cifar10",
    spec=CIFAR10,
    model_sets={
        # the 35.7M-parameter U-Net "unet2d16b2" (appendix B; run_cifar.py _denoise)
        "channels": Setting("128", f"{CODE}: ch=128"),
        "channel_mult": Setting("1,2,2,2", f"{CODE}: ch_mult=(1, 2, 2, 2)"),
        "num_res_blocks": Setting("2", f"{CODE}: num_res_blocks=2"),
        "attention_resolutions": Setting("16", f"{CODE}: attn_resolutions=(16,); appendix B: 16x16 self-attention"),
        "dropout": Setting("0.1", "appendix B: dropout 0.1 on CIFAR-10"),
        # the process and the objective
        "schedule": Setting("linear", "sec. 4: betas linear from 1e-4 to 0.02"),
        "num_steps": Setting("1000", "sec. 4: T = 1000"),
        "prediction": Setting("eps", f"sec. 3.2, L_simple; {CODE}: model_mean_type='eps', loss_type='mse'"),
        "learn_variance": Setting("false", "sec. 3.2: fixed variances"),
        "variance": Setting("beta", f"{CODE}: model_var_type='fixedlarge' (sigma_t^2 = beta_t)"),
        "sampler": Setting("ddpm", "Algorithm 2: ancestral sampling over all T steps"),
        # Table 1 reports the bound summed over every step (calc_bpd_loop), not a sampled estimate
        "eval_timesteps": Setting("0", "Table 1 NLL: the full bound (diffusion_utils_2.py calc_bpd_loop)"),
    },
    train_sets={
        "steps": Setting("800000", "appendix B: 800k steps on CIFAR-10"),
        "batch_size": Setting("128", f"{CODE}: total_bs=128"),
        "optimizer": Setting("adam", f"{CODE}: optimizer='adam'"),
        "lr": Setting("2e-4", f"{CODE}: lr=2e-4"),
        "warmup_steps": Setting("5000", f"{CODE}: warmup=5000"),
        "schedule": Setting("constant", "appendix B: constant learning rate after warm-up"),
        "grad_clip": Setting("1.0", f"{CODE}: grad_clip=1."),
        "ema_decay": Setting("0.9999", "appendix B: EMA decay 0.9999"),
        "hflip": Setting("true", f"appendix B: random horizontal flips; {CODE}: randflip=1"),
        "checkpoint_every": Setting("10000", "gm-jax: a checkpoint every 10k steps (not a paper setting)"),
        "log_every": Setting("1000", "gm-jax: logging (not a paper setting)"),
    },
    evaluations=(
        Evaluation("samples", "fid,is", INCEPTION_50K + ("--sampler", "ddpm"),
                   "sec. 4.1 / Table 1: 50k ancestral samples; FID against the training set"),
        Evaluation("nll", "nll", (), "Table 1: test-set bound in bits/dim, discrete decoder"),
    ),
    published=(
        Published("FID (50k, train set)", "samples", "fid", 3.17, "Table 1 [P]"),
        Published("Inception score", "samples", "is_mean", 9.46, "Table 1 [P] (9.46 +- 0.11)"),
        Published("test NLL, bits/dim (bound)", "nll", "test_bits_per_dim", 3.75, "Table 1 [P] (L_simple)"),
    ),
    deviations=(
        "EMA: gm-jax warms the decay up as min(0.9999, (1 + n) / (10 + n)); the official code "
        "(diffusion_tf/tpu_utils/tpu_utils.py make_ema) copies the weights at step 0 and then uses 0.9999. The "
        "two agree from step ~90k of 800k on, so the final weights differ by a negligible share",
        "FID/IS features: gm-jax's port of the FID InceptionV3 (the TTUR/pytorch-fid network, 2048-d pool "
        "features, resize tf1). The official evaluation loop (tpu_utils.py run_inception) runs TF-GAN's frozen "
        "Inception graph; the two networks' numbers are close but not identical",
    ),
    paper_num_params=35_746_307,  # "35.7M" (appendix B); the official code's count, as our U-Net's (tests/nets)
)

CONFIGS = {
    "paper": RECIPE,
    "smoke": smoke(RECIPE, {**TINY_UNET, "num_steps": "50"}),
}
