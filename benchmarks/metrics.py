"""Evaluation speed: FID-Inception feature extraction (images/s) and the Fréchet distance of 2048-d statistics
(seconds), against pytorch-fid when it is installed (`pip install -e '.[torch]'`); prints a table.

    python benchmarks/metrics.py              # 512 images of 32x32 at batch 128 (a GPU); --tiny on a CPU
    python benchmarks/metrics.py --tiny       # 16 images at batch 8 (about 2 min on 2 CPU cores)

Extraction runs ``gm_jax.metrics.extract.source_features`` (uint8 32x32 images resized to 299 with the TF1
bilinear resize inside the jitted step, the batch sharded over all devices) on random Inception weights: the
cost does not depend on their values. pytorch-fid's network gets the same images as float tensors on the same
kind of device, resized by its own bilinear interpolation. The Fréchet distance uses statistics of 4096
random ReLU features (2048-d): ``gm_jax.metrics.frechet_distance`` (a Cholesky factor and float64 eigenvalues) against pytorch-fid's
``calculate_frechet_distance`` (``scipy.linalg.sqrtm``). Every timing follows a warm-up (compiling) call.
"""

import argparse
import time

import jax
import numpy as np

from gm_jax.metrics import extract, feature_stats, frechet_distance
from gm_jax.metrics.inception import inception_apply
from gm_jax.metrics.inception_weights import init_inception_variables

SETTINGS = {"full": (512, 128), "tiny": (16, 8)}  # name: (images, batch)


def _seconds(fn, repeats=1):
    fn()  # warm-up: compiles
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def jax_extraction(images, batch):
    ext = extract.FeatureExtractor("inception", inception_apply, init_inception_variables(jax.random.key(0)),
                                   "pool3", "logits_unbiased")
    src = extract.array_source(images)
    return len(images) / _seconds(lambda: extract.source_features(ext, src, batch, keys=("pool3",)))


def torch_extraction(images, batch):
    import torch
    from pytorch_fid import inception as pfi

    from gm_jax.metrics import init_inception_variables, to_state_dict

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # pytorch-fid's FID network, with our random weights in its layout instead of the download.
    random_weights = to_state_dict(init_inception_variables(jax.random.key(0)))
    state = {k: torch.from_numpy(v.copy()) for k, v in random_weights.items()}
    pfi.load_state_dict_from_url = lambda *args, **kwargs: state
    net = pfi.InceptionV3([3], resize_input=True, normalize_input=True).eval().to(device)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)

    def run():
        with torch.no_grad():
            for lo in range(0, len(x), batch):
                net(x[lo:lo + batch].to(device))[0].cpu()

    return len(images) / _seconds(run)


def frechet_stats():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(2048, 2048)) / 40
    a = np.maximum(rng.normal(size=(4096, 2048)) @ mix, 0)
    b = np.maximum(rng.normal(size=(4096, 2048)) @ mix + 0.05, 0)
    return feature_stats(a) + feature_stats(b)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    num, batch = SETTINGS["tiny" if args.tiny else "full"]
    images = np.random.default_rng(0).integers(0, 256, (num, 32, 32, 3), dtype=np.uint8)
    rows = [("gm-jax feature extraction (images/s)", f"{jax_extraction(images, batch):.1f}")]
    import importlib.util

    has_torch = importlib.util.find_spec("pytorch_fid") is not None
    if has_torch:
        rows.append(("pytorch-fid feature extraction (images/s)", f"{torch_extraction(images, batch):.1f}"))
    mu1, s1, mu2, s2 = frechet_stats()
    ours = frechet_distance(mu1, s1, mu2, s2)
    rows.append(("gm-jax frechet_distance, 2048-d (s)", f"{_seconds(lambda: frechet_distance(mu1, s1, mu2, s2)):.2f}"))
    if has_torch:
        from pytorch_fid.fid_score import calculate_frechet_distance

        ref = calculate_frechet_distance(mu1, s1, mu2, s2)
        rows.append(("pytorch-fid calculate_frechet_distance (s)",
                     f"{_seconds(lambda: calculate_frechet_distance(mu1, s1, mu2, s2)):.2f}"))
        rows.append(("FID relative difference", f"{abs(ours - ref) / abs(ref):.1e}"))
    rows.append(("FID value", f"{ours:.6f}"))
    device = jax.devices()[0]
    print(f"device: {device.platform} x {jax.device_count()} ({device.device_kind}); {num} images of 32x32x3, "
          f"batch {batch}")
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
