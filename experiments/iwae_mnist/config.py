"""VAE and IWAE on dynamically binarized MNIST: Burda, Grosse & Salakhutdinov (2016), "Importance Weighted
Autoencoders", ICLR. The one-stochastic-layer models of Table 1: the VAE trained on the ELBO (k = 1) and
IWAEs trained on the k-sample bound L_k (k = 5, 50), each scored by L_5000 on the test set.

Sources: the paper (sec. 5 "Experiments", appendix for the training schedule, Table 1). MNIST pixels are
binarized afresh at every use: a Bernoulli draw with p = intensity / 255 (gm-jax's ``likelihood=bernoulli``).
"""

from __future__ import annotations

from experiments.recipe import MNIST, Evaluation, Published, Recipe, Setting, smoke

PAPER = "Burda, Grosse & Salakhutdinov 2016, Importance Weighted Autoencoders"

NETWORK = {
    "architecture": Setting("mlp", "sec. 5: deterministic layers between the stochastic ones"),
    "hidden": Setting("200,200", "sec. 5: two deterministic layers of 200 units (1 stochastic layer)"),
    "activation": Setting("tanh", "sec. 5: tanh nonlinearities"),
    "latent_dim": Setting("50", "sec. 5: a 50-unit stochastic layer"),
    "likelihood": Setting("bernoulli", "sec. 5: dynamically binarized MNIST, Bernoulli decoder"),
    "eval_importance_samples": Setting("5000", "sec. 5: test log-likelihood estimated as L_5000"),
}
TRAINING = {
    # 3^i passes over the data at lr 0.001 * 10^(-i/7), i = 0..7: 3,280 passes of 60,000 / 20 = 3,000 steps
    "steps": Setting("9840000", "sec. 5: 3,280 passes over the training set at batch 20"),
    "batch_size": Setting("20", "sec. 5: minibatches of 20"),
    "optimizer": Setting("adam", "sec. 5: Adam, beta1 0.9, beta2 0.999 (epsilon 1e-4: see the differences)"),
    "lr": Setting("1e-3", "sec. 5: the first stage's lr 0.001"),
    "schedule": Setting("cosine", "gm-jax: a smooth decay in place of the staircase (see the differences)"),
    "final_lr_ratio": Setting("0.1", "sec. 5: the last stage's lr is 0.001 * 10^-1"),
    "warmup_steps": Setting("0", "no warm-up"),
    "ema_decay": Setting("0", "no parameter averaging"),
    "checkpoint_every": Setting("100000", "gm-jax: a checkpoint every 100k steps (not a paper setting)"),
    "log_every": Setting("10000", "gm-jax: logging (not a paper setting)"),
}
NLL = Evaluation("nll", "nll", (), "Table 1: test NLL in nats as -L_5000")
DEVIATIONS = (
    "learning-rate schedule: the paper trains 3^i passes at 0.001 * 10^(-i/7) for i = 0..7; gm-jax decays "
    "from 0.001 to 0.0001 along a cosine over the same 3,280 passes",
    "Adam's epsilon is 1e-4 in the paper and optax's default 1e-8 here",
    "weight initialisation: Flax's defaults; the paper's is not reproduced",
)


def _recipe(name: str, k: int, nll: float) -> Recipe:
    return Recipe(
        name="iwae_mnist", paper=PAPER, model="vae", dataset="mnist", spec=MNIST,
        model_sets={**NETWORK, "train_importance_samples": Setting(
            str(k), f"Table 1: {name} trained with k = {k}" + (" (the ELBO)" if k == 1 else " (the bound L_k)"))},
        train_sets=TRAINING, evaluations=(NLL,),
        published=(Published(f"{name}, k = {k}: test NLL (nats)", "nll", "test_nll_nats", nll,
                             "Table 1, 1 stochastic layer [S]"),),
        deviations=DEVIATIONS)


CONFIGS = {
    "vae": _recipe("VAE", 1, 86.76),
    "iwae_k5": _recipe("IWAE", 5, 85.54),
    "iwae_k50": _recipe("IWAE", 50, 84.78),
    "smoke": smoke(_recipe("IWAE", 5, 85.54), {"hidden": "16", "latent_dim": "4", "eval_importance_samples": "8"}),
}
