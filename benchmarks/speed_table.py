"""The README's speed table: gm-jax beside the peer a user would pick instead, measured in one run.

    python benchmarks/speed_table.py                     # every row (about 10 min on 2 CPU cores)
    python benchmarks/speed_table.py --rows frechet,spline
    python benchmarks/speed_table.py --full --json out.json  # full sizes, for a GPU (benchmarks/gpu.sh)

Peers: diffusers (the U-Net rows), pytorch-fid (Inception features, Fréchet distance) and flowjax (spline flow);
install them beside gm-jax (``pip install torch diffusers pytorch-fid flowjax``). A row whose peer is missing
says "not installed". Torch peers run in subprocesses (torch and JAX in one process slow each other).

Rows (2 CPU-core sizes; ``--full``: Ho et al.'s 35.7M-parameter U-Net at batch 128 in float32 and bfloat16 with
1000-step sampling of 256 images, and 512 images of Inception features at batch 128):

- ``unet``: Ho et al.'s DDPM U-Net at 64 base channels (9.0M parameters), 32x32x3, batch 32: the trainer's
  train step (img/s), one forward pass as in a sampling step (img/s), and the first train step's seconds
  (compilation for gm-jax). diffusers: UNet2DModel in the same layout, MSE eps loss, Adam.
- ``inception``: FID InceptionV3 pool3 features of 32 uint8 32x32 images resized to 299 (img/s; random weights,
  the cost does not depend on them), against pytorch-fid's network with the same weights.
- ``frechet``: the Fréchet distance of 2048-d statistics (s), against pytorch-fid's ``scipy.linalg.sqrtm``.
- ``spline``: a spline flow on 2-d points, 8 rational-quadratic couplings of 8 bins, MLP conditioners 64x64,
  batch 256 (train steps/s): the trainer's step of ``spline_flow`` against flowjax's ``coupling_flow``.
- ``main_job``: the README's main job (``gm-jax train vae --dataset digits``) with an empty compilation cache
  and again with the cache it filled (wall s); and ``gm-jax sample`` of that run (wall s).

Every timing follows a warm-up call and ends in ``block_until_ready``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diffusion import bench as diffusion_bench, timed  # noqa: E402  (this script's neighbours)
from metrics import frechet_stats, jax_extraction  # noqa: E402
from recipes import run_diffusers_peer, trainer_rates  # noqa: E402
from gm_jax.data.loading import DataSpec  # noqa: E402
from gm_jax.metrics import frechet_distance  # noqa: E402
from gm_jax.models import DDPM, DDPMConfig, SplineFlow, SplineFlowConfig  # noqa: E402
from gm_jax.nets import UNet  # noqa: E402
from gm_jax.train import TrainConfig  # noqa: E402

UNET = DDPMConfig(channels=64, channel_mult=(1, 2, 2, 2), num_res_blocks=2, attention_resolutions=(16,), dropout=0.1)
CIFAR = DataSpec("cifar10", "image", (32, 32, 3), 256, 0)
BATCH, STEPS = 32, 3  # U-Net and Inception batch; timed train steps
SPLINE = SplineFlowConfig(num_layers=4, hidden=(64, 64), num_bins=8, spline_bound=4.0)  # 4 blocks x 2 couplings
POINTS = DataSpec("toy2d/moons", "points", (2,), None, 0)
SPLINE_BATCH, SPLINE_STEPS, REPEATS = 256, 300, 3  # the best of REPEATS timings of SPLINE_STEPS steps


PEERS = ("diffusers UNet2DModel", "diffusers", "pytorch-fid", "pytorch-fid (scipy sqrtm)", "flowjax",
         "flowjax coupling_flow")  # row notes that name a peer: "not installed" is added when it is missing


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _python(code: str, *args) -> dict:
    """A peer's numbers: ``code`` run in a subprocess that prints one JSON line."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def unet_full_rows():
    """The full-size U-Net: benchmarks/diffusion.py's setting "full" in float32 and bfloat16, and diffusers."""
    rows = []
    for dtype in (jnp.float32, jnp.bfloat16):
        n, batch, rate, steps, num, secs = diffusion_bench("full", jnp.dtype(dtype))
        name = jnp.dtype(dtype).name
        rows.append((f"DDPM U-Net train step, {n / 1e6:.1f}M params, batch {batch}, {name}", "img/s", rate, None, "",
                     True))
        rows.append((f"{steps}-step ancestral sampling of {num} images, {name}", "s", secs, None, "", False))
    if _has("diffusers"):
        full = DDPMConfig()  # Ho et al.'s CIFAR-10 net
        peer = run_diffusers_peer(full, CIFAR.shape, batch=128, steps=5, samples=256)
        rows.append(("diffusers UNet2DModel train step, batch 128, float32", "img/s",
                     peer.get("examples_per_s", peer.get("error")), None, "the peer", True))
        rows.append(("diffusers 1000-step ancestral sampling of 256 images", "s", peer.get("sample_s"), None,
                     "the peer", False))
    return rows


def unet_rows():
    ours = trainer_rates(DDPM(UNET, CIFAR), TrainConfig(batch_size=BATCH, lr=2e-4, grad_clip=1.0), CIFAR,
                         batch=BATCH, steps=STEPS, samples=0)
    net = UNet(channels=UNET.channels, channel_mult=UNET.channel_mult, num_res_blocks=UNET.num_res_blocks,
               attention_resolutions=UNET.attention_resolutions, dropout=UNET.dropout)
    x, t = jnp.zeros((BATCH, *CIFAR.shape)), jnp.full((BATCH,), 500)
    params = jax.jit(net.init)(jax.random.key(0), x, t)
    forward = jax.jit(lambda p, x, t: net.apply(p, x, t))
    forward_rate = BATCH / timed(forward, params, x, t, repeats=STEPS)
    peer = run_diffusers_peer(UNET, CIFAR.shape, batch=BATCH, steps=STEPS, samples=0) if _has("diffusers") else None
    pick = lambda key: None if peer is None else peer.get(key, peer.get("error"))
    size = f"{sum(p.size for p in jax.tree_util.tree_leaves(params)) / 1e6:.1f}M params, batch {BATCH}"
    return [(f"DDPM U-Net train step, 32x32x3, {size}", "img/s", ours["examples_per_s"], pick("examples_per_s"),
             "diffusers UNet2DModel", True),
            ("same U-Net, one forward (a sampling step)", "img/s", forward_rate, pick("forward_examples_per_s"),
             "diffusers", True),
            ("first train step (compilation)", "s", ours["first_step_s"], pick("first_step_s"), "diffusers", False)]


PYTORCH_FID_EXTRACTION = """
import json, sys
import numpy as np
from metrics import torch_extraction
num, batch = int(sys.argv[1]), int(sys.argv[2])
images = np.random.default_rng(0).integers(0, 256, (num, 32, 32, 3), dtype=np.uint8)
print(json.dumps({"images_per_s": torch_extraction(images, batch)}))
"""


def inception_rows(num: int = BATCH, batch: int = BATCH):
    images = np.random.default_rng(0).integers(0, 256, (num, 32, 32, 3), dtype=np.uint8)
    ours = jax_extraction(images, batch)
    peer = _python(PYTORCH_FID_EXTRACTION, num, batch) if _has("pytorch_fid") else None
    value = None if peer is None else peer.get("images_per_s", peer.get("error"))
    return [(f"FID Inception features of {num} images, batch {batch}, resized to 299", "img/s", ours, value,
             "pytorch-fid", True)]


def frechet_rows():
    mu1, s1, mu2, s2 = frechet_stats()
    ours = timed(frechet_distance, mu1, s1, mu2, s2)
    peer, note = None, "pytorch-fid (scipy sqrtm)"
    if _has("pytorch_fid"):
        from pytorch_fid.fid_score import calculate_frechet_distance

        peer = timed(calculate_frechet_distance, mu1, s1, mu2, s2)
        diff = abs(frechet_distance(mu1, s1, mu2, s2) / calculate_frechet_distance(mu1, s1, mu2, s2) - 1)
        note = f"pytorch-fid (scipy sqrtm); FIDs agree to {diff:.0e}"
    return [("Fréchet distance, 2048-d", "s", ours, peer, note, False)]


def _adam_rate(loss, params) -> float:
    """Train steps/s of optax Adam on ``loss(params)``, the (params, opt state) pair donated: the best of
    REPEATS timings of SPLINE_STEPS steps after a warm-up."""
    import optax

    opt = optax.adam(1e-3)

    def step(state):
        params, opt_state = state
        updates, opt_state = opt.update(jax.grad(loss)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    step = jax.jit(step, donate_argnums=0)

    def run(state):
        for _ in range(SPLINE_STEPS):
            state = step(state)
        return jax.block_until_ready(state)

    state, best = run((params, opt.init(params))), float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        state = run(state)
        best = min(best, time.perf_counter() - start)
    return SPLINE_STEPS / best


def flowjax_spline_rate() -> float:
    """flowjax's coupling spline flow of the same size (its ``coupling_flow``): steps/s."""
    import equinox as eqx
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow

    flow = coupling_flow(jax.random.key(0), base_dist=Normal(jnp.zeros(2)), flow_layers=2 * SPLINE.num_layers,
                         transformer=RationalQuadraticSpline(knots=SPLINE.num_bins, interval=SPLINE.spline_bound),
                         nn_width=SPLINE.hidden[0], nn_depth=len(SPLINE.hidden))
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    x = jax.random.normal(jax.random.key(1), (SPLINE_BATCH, 2))
    return _adam_rate(lambda p: -jnp.mean(eqx.combine(p, static).log_prob(x)), params)


def library_spline_rate() -> float:
    """The same 8 spline couplings through gm_jax.flows directly (no LU layers, ``repeat`` unrolled): steps/s."""
    from gm_jax import flows as F

    def spline(parity):
        n = len(F.transformed_elements("half", (2,), parity=parity))
        cond = F.mlp_conditioner(F.spline_num_params(SPLINE.num_bins), hidden=SPLINE.hidden, outputs=n)
        return F.spline_coupling(cond, "half", parity=parity, num_bins=SPLINE.num_bins, bound=SPLINE.spline_bound)

    flow = F.repeat(F.chain(spline(0), spline(1)), SPLINE.num_layers, unroll=True)
    x = jax.random.normal(jax.random.key(1), (SPLINE_BATCH, 2))
    return _adam_rate(lambda p: -jnp.mean(F.flow_log_prob(flow, p, x)), flow.init(jax.random.key(0), x))


def spline_rows():
    cfg = TrainConfig(batch_size=SPLINE_BATCH, lr=1e-3)
    ours = trainer_rates(SplineFlow(SPLINE, POINTS), cfg, POINTS, batch=SPLINE_BATCH, steps=SPLINE_STEPS, samples=0,
                         repeats=REPEATS)
    peer = flowjax_spline_rate() if _has("flowjax") else None
    return [(f"spline flow train step, 2-d, {2 * SPLINE.num_layers} couplings, batch {SPLINE_BATCH}: gm_jax.flows",
             "steps/s", library_spline_rate(), peer, "flowjax coupling_flow", True),
            (f"the same in the trainer (`spline_flow`: also {SPLINE.num_layers} LU layers)", "steps/s",
             ours["steps_per_s"], peer, "flowjax", True)]


def _wall(argv, env) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gm_jax.cli", *argv], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main_job_rows():
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GM_JAX_COMPILATION_CACHE": os.path.join(tmp, "cache")}
        train = ["train", "vae", "--dataset", "digits", "--no-progress"]
        first = _wall([*train, "--workdir", os.path.join(tmp, "a")], env)
        second = _wall([*train, "--workdir", os.path.join(tmp, "b")], env)
        with open(os.path.join(tmp, "b", "results.json")) as f:
            training = json.load(f)["train_seconds_this_run"]
        sample = _wall(["sample", "--workdir", os.path.join(tmp, "b"), "--num", "16", "--out",
                        os.path.join(tmp, "s.png"), "--no-progress", "--compilation-cache", "off"], env)
    return [("`gm-jax train vae --dataset digits` (main job), empty cache", "s", first, None,
             f"training itself {training:.1f} s", False),
            ("the same job again (compilation cache filled)", "s", second, None, "", False),
            ("`gm-jax sample` of that run, 16 images, no cache", "s", sample, None, "", False)]


ROWS = {"unet": unet_rows, "inception": inception_rows, "frechet": frechet_rows, "spline": spline_rows,
        "main_job": main_job_rows}
FULL = {**ROWS, "unet": unet_full_rows, "inception": lambda: inception_rows(512, 128)}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v[:60]
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)} (default: all)")
    p.add_argument("--full", action="store_true", help="full sizes (a GPU job; default: 2 CPU-core sizes)")
    p.add_argument("--json", metavar="FILE", help="also write the rows to this JSON file (default: not written)")
    args = p.parse_args(argv)
    names = args.rows.split(",")
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        p.error(f"unknown rows {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    dev = jax.devices()[0]
    print(f"device: {dev.platform} {dev.device_kind} x{jax.device_count()}, {os.cpu_count()} CPU cores")
    print("| work | unit | gm-jax | peer | speed ratio (> 1: gm-jax faster) | peer, notes |\n|---|---|---|---|---|---|")
    table = []
    for name in names:
        for work, unit, ours, peer, note, higher_better in (FULL if args.full else ROWS)[name]():
            table.append({"row": name, "work": work, "unit": unit, "gm_jax": ours, "peer": peer, "note": note})
            if args.json:  # after every row, so a job stopped by its time limit keeps what it measured
                with open(args.json, "w") as f:
                    json.dump({"device": f"{dev.platform} {dev.device_kind} x{jax.device_count()}", "rows": table},
                              f, indent=1)
            if isinstance(peer, (int, float)):
                ratio = ours / peer if higher_better else peer / ours  # > 1: gm-jax is faster
                ratio = f"{ratio:.2f}x"
            else:
                ratio = "-" if peer is None else "peer failed"
                note = f"{note}: not installed" if peer is None and note in PEERS else note
                note = note if peer is None or not isinstance(peer, str) else f"{note}: {peer}"
                peer = None if isinstance(peer, str) else peer
            print(f"| {work} | {unit} | {_fmt(ours)} | {_fmt(peer)} | {ratio} | {note} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
