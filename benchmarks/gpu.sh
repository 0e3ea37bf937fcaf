#!/usr/bin/env bash
# Every full-size benchmark in one run on a GPU, in under 8 minutes; writes one JSON (default gpu_benchmarks.json).
#   bash benchmarks/gpu.sh [OUT.json]
# Rows: Ho et al.'s DDPM U-Net (35.7M params, batch 128, float32 and bfloat16) train img/s and 1000-step sampling
# of 256 CIFAR-sized images; FID Inception extraction img/s; the Fréchet distance; the spline flow step; the VAE
# main job. Peers (diffusers, pytorch-fid, flowjax) are measured in the same run where they are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_benchmarks.json}"
python -c "import jax; assert jax.default_backend() == 'gpu', 'no GPU: jax sees ' + jax.default_backend()"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 480 python benchmarks/speed_table.py --full --json "$out"
echo "wrote $out"
