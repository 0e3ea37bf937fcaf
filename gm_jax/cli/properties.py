"""``gm-jax properties``: the families' property table, measured (:mod:`gm_jax.properties`)."""

from __future__ import annotations

import dataclasses
import os

from gm_jax.errors import GMJaxError

__all__ = ["cmd_properties", "add_properties_parser"]


def add_properties_parser(sub, build_parser) -> None:
    """The ``properties`` sub-command; ``build_parser`` builds the whole parser (its runs go through ``train``)."""
    from gm_jax.properties.config import CONFIGS

    p = sub.add_parser("properties", help="train every family under one protocol and measure the property table")
    p.add_argument("--config", choices=sorted(CONFIGS),
                   help="quick: a smoke run of four families in about a minute; cpu: every family, 3 seeds, "
                        "budgets for 2 CPU cores (about an hour a seed); gpu: every model's own defaults "
                        "(default: quick; with --report-only, the config of --out's properties.json)")
    p.add_argument("--workdir", help="where the runs train (default: runs/properties_CONFIG)")
    p.add_argument("--out", help="properties.json, properties.md and the figures (default: the --workdir)")
    p.add_argument("--families", help="comma-separated subset of the config's image families; the toy2d runs "
                   "are all done (default: all). Verdicts are relative to the families measured")
    p.add_argument("--seeds", help="comma-separated subset of the config's seeds (default: all)")
    p.add_argument("--report-only", action="store_true",
                   help="redraw the tables and figures from --out's properties.json; train nothing (default: off)")
    p.add_argument("--data-dir", help="dataset cache (default: $GM_JAX_DATA_DIR or ~/.cache/gm_jax/datasets)")
    p.set_defaults(fn=lambda args: cmd_properties(args, build_parser))


def _subset(cfg, field: str, text: str | None, convert=str):
    if text is None:
        return cfg
    try:
        chosen = tuple(convert(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise GMJaxError(f"--{field} {text}: expected comma-separated integers") from None
    unknown = [v for v in chosen if v not in getattr(cfg, field)]
    if len(set(chosen)) != len(chosen):
        raise GMJaxError(f"--{field} {text}: name each at most once")
    if unknown or not chosen:
        raise GMJaxError(f"--{field} {text}: choose from the config's {', '.join(map(str, getattr(cfg, field)))}")
    changes = {field: chosen}
    if field == "families":  # their settings come along
        changes["sets"] = {k: v for k, v in cfg.sets.items() if k in chosen}
    return dataclasses.replace(cfg, **changes)


def cmd_properties(args, build_parser) -> int:
    from gm_jax.properties import CONFIGS, report
    from gm_jax.properties.protocol import read_results, run_properties
    from gm_jax.train.rundir import check_writable

    from gm_jax.data.loading import check_data_dir

    cfg = CONFIGS[args.config or "quick"]
    cfg = _subset(_subset(cfg, "families", args.families), "seeds", args.seeds, int)
    workdir = args.workdir or os.path.join("runs", f"properties_{cfg.name}")
    out = args.out or workdir
    check_data_dir(args.data_dir)
    if args.report_only:
        if args.families or args.seeds:
            raise GMJaxError("--report-only redraws every row of --out's properties.json; --families and --seeds "
                             "choose what to train, so drop them")
        results = read_results(out)
        if not results.get("runs"):
            raise GMJaxError(f"{out} holds no property-table results; run `gm-jax properties --config {cfg.name}` first")
        recorded = results["config"]["name"]
        if args.config and args.config != recorded:
            raise GMJaxError(f"{os.path.join(out, 'properties.json')} holds config '{recorded}', not "
                             f"'{args.config}'; drop --config or name the --out of a {args.config} run")
    else:
        check_writable(workdir)
        check_writable(out, "--out")
        def train_command(argv):
            if args.data_dir:
                argv = argv + ["--data-dir", args.data_dir]
            parsed = build_parser().parse_args(argv)
            parsed.fn(parsed)

        results = run_properties(cfg, workdir, out, train_command=train_command, data_dir=args.data_dir)
    written = report.write_report(results, out)
    print(report.main_table(results))
    print()
    print(report.claims_table(results))
    print(f"\nwrote {', '.join(written)}")
    return 0
