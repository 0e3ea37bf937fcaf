"""The small sub-commands: ``inception``, ``domain``, ``list``, ``config``, ``compare``."""

from __future__ import annotations

from gm_jax.cli._common import model_entry
from gm_jax.errors import GMJaxError

__all__ = ['cmd_inception', 'cmd_domain', 'cmd_list', 'cmd_config', 'cmd_compare']


def cmd_inception(args) -> int:
    """``inception convert SRC.pth [DST]`` (checks the SHA-256) or ``inception download [DST]``."""
    from gm_jax.metrics import inception_weights

    wanted = (1, 2) if args.action == "convert" else (0, 1)
    if len(args.paths) not in wanted:
        raise GMJaxError(f"usage: gm-jax inception convert pt_inception-2015-12-05-6726825d.pth [DST] (the file is at "
                         f"{inception_weights.PYTORCH_FID_URL}) or gm-jax inception download [DST]")
    if args.action == "convert":
        dst = inception_weights.convert_weights(args.paths[0], args.paths[1] if len(args.paths) > 1 else None)
    else:
        dst = inception_weights.download_weights(args.paths[0] if args.paths else None)
    print(f"wrote FID Inception weights to {dst}")
    return 0


def cmd_domain(args) -> int:
    """``domain train --dataset NAME``: trains and caches the classifier behind ``--features domain``."""
    import time

    from gm_jax.data import load_dataset
    from gm_jax.metrics import domain

    dataset = load_dataset(args.dataset, args.data_dir)
    kw = {} if args.steps is None else {"steps": args.steps}
    t0 = time.time()
    variables, info = domain.train_domain_classifier(dataset, seed=args.seed, progress=True, **kw)
    path = args.out or domain.domain_weights_path(args.dataset)
    domain.save_domain_classifier(path, variables, info)
    print(f"test accuracy {info['test_accuracy']:.4f} after {info['steps']} steps ({time.time() - t0:.0f} s); "
          f"wrote {path}")
    return 0


def cmd_list(args) -> int:
    from gm_jax.data import EMBEDDED
    from gm_jax.models import MODELS

    print("models:   " + ", ".join(sorted(MODELS)))
    print("datasets: " + ", ".join(EMBEDDED) + " (embedded); any TFDS catalog name (mnist, cifar10, ...) "
          "when prepared or downloadable")
    return 0


def cmd_config(args) -> int:
    """``config MODEL``: every model-config and training field with its type, default and meaning."""
    from gm_jax.models import format_config
    from gm_jax.train.config import TrainConfig

    config_cls, model_cls = model_entry(args.model)
    own = getattr(model_cls, "default_train", {})
    print(format_config(config_cls, f"{args.model}: model config ({config_cls.__name__}); --set FIELD=VALUE"))
    print()
    print(format_config(TrainConfig(**own), "training (TrainConfig)" +
                        (f"; {args.model} sets {', '.join(sorted(own))}" if own else "")))
    return 0


def cmd_compare(args) -> int:
    """``compare RUN [RUN ...] [--out FILE.png]``: results and config differences; curves to --out."""
    from gm_jax.runs import compare

    print(compare(args.runs, args.out))
    return 0
