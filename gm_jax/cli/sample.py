"""``gm-jax sample``: samples (or latent interpolations) of a trained run to a PNG grid, text or ``.npz``."""

from __future__ import annotations

import os
import sys

from gm_jax.cli._common import check_out_path, load_run, sampler_kwargs
from gm_jax.errors import GMJaxError

__all__ = ['cmd_sample']


def cmd_sample(args) -> int:
    import jax
    import numpy as np

    from gm_jax.train import eval_variables, restore_state
    from gm_jax.train.loop import sample_source
    from gm_jax.visualize import save_samples

    if args.num < 1:
        raise GMJaxError(f"--num must be >= 1, got {args.num}")
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".png", ".npz", ".txt"):
        raise GMJaxError(f"--out must end in .png or .npz (or .txt for text), got '{args.out}'")
    check_out_path(args.out)
    run, model, dataset, train_cfg = load_run(args.workdir, args.data_dir, args.set)
    is_text = dataset.spec.kind == "text"
    if ext != ".npz" and (ext == ".txt") != is_text:
        raise GMJaxError(f"--out {args.out}: {run['dataset']} samples are written as "
                         f"{'.txt or .npz' if is_text else '.png or .npz'}")
    kw = sampler_kwargs(args, model, run)
    if args.interpolate is not None:
        return _write_interpolations(args, run, model, dataset, train_cfg, kw, ext)
    if args.batch_size < 1:
        raise GMJaxError(f"--batch-size must be >= 1, got {args.batch_size}")
    state = restore_state(model, dataset, train_cfg, args.workdir, step=args.step)
    # traced first (no compilation), so a bad sampler option fails before the (possibly long) run is announced
    source = sample_source(model, dataset, args.num)  # translation models: the first test images
    first = args.num if source else min(args.num, args.batch_size)
    jax.eval_shape(lambda v, k: model.sample(v, k, first, **kw, **source), eval_variables(state), jax.random.key(0))
    is_writer = jax.process_index() == 0  # every process of a job draws (a collective); the first writes
    if is_writer:
        print(f"sampling {args.num} from the checkpoint of step {int(state.step)}...", file=sys.stderr, flush=True)
    samples = _draw(model, eval_variables(state), jax.random.key(args.seed), args.num, args.batch_size, kw, source,
                    progress=not args.no_progress and is_writer)
    if not is_writer:
        return 0
    if ext == ".npz":
        levels = {"num_levels": dataset.spec.num_levels} if dataset.spec.kind == "image" else {}
        np.savez(args.out, samples=samples, **levels)  # num_levels: how `gm-jax evaluate` scales the pixels
    else:
        save_samples(samples, dataset.spec, args.out)
    print(f"wrote {args.num} samples to {args.out}")
    return 0


def _draw(model, variables, key, num: int, batch_size: int, kw: dict, source: dict, *, progress: bool):
    """``num`` samples in batches of ``batch_size`` over the devices, with a progress bar per batch (batch i
    uses ``fold_in(key, i)``, as evaluation's samples do); translation models map their ``source`` at once."""
    import jax
    import numpy as np

    from gm_jax.metrics import extract

    if source:  # one source image per sample: one batch
        return np.asarray(jax.device_get(jax.jit(lambda v, k: model.sample(v, k, num, **kw, **source))(variables,
                                                                                                       key)))
    identity = extract.FeatureExtractor("samples", lambda v, x: {"samples": x}, None, "samples")
    return extract.sampler_features(identity, lambda v, k, n: model.sample(v, k, n, **kw), variables, key, num,
                                    batch_size, keys=("samples",), progress=progress and "sampling")["samples"]


def _write_interpolations(args, run, model, dataset, train_cfg, kw, ext) -> int:
    """``--interpolate STEPS``: --num latent paths of STEPS points each, one strip (row) per path."""
    import jax
    import numpy as np

    from gm_jax.models.base import accepts_kwarg
    from gm_jax.train import eval_variables, restore_state
    from gm_jax.visualize import save_samples_png

    if kw:
        raise GMJaxError(f"--interpolate takes no {', '.join('--' + k for k in kw)}; drop them")
    if not hasattr(model, "interpolate") or not accepts_kwarg(model.interpolate, "num_paths"):
        raise GMJaxError(f"{run['model']} has no latent interpolation; --interpolate works with GANs")
    if args.interpolate < 2:
        raise GMJaxError(f"--interpolate must be >= 2 (points per path), got {args.interpolate}")
    if ext == ".png" and dataset.spec.kind != "image":
        raise GMJaxError(f"interpolation strips are drawn for images; {run['dataset']} holds "
                         f"{dataset.spec.kind}, so write --out FILE.npz")
    state = restore_state(model, dataset, train_cfg, args.workdir, step=args.step)
    paths = jax.jit(lambda v, k: model.interpolate(v, k, args.num, args.interpolate))
    strips = np.asarray(jax.device_get(paths(eval_variables(state), jax.random.key(args.seed))))
    strips = np.swapaxes(strips, 0, 1)  # [num paths, steps, ...]: one row per path
    if jax.process_index() != 0:  # one writer in a multi-process job
        return 0
    if ext == ".npz":
        np.savez(args.out, paths=strips)
    else:
        save_samples_png(strips.reshape((-1,) + strips.shape[2:]), dataset.spec, args.out, ncols=args.interpolate)
    print(f"wrote {args.num} interpolation paths of {args.interpolate} points to {args.out}")
    return 0
