"""The families' property table, measured (issue 15): every image family trained on digits under one protocol
and measured by one evaluator, plus mode coverage on toy2d. The same code as `gm-jax properties`; this script
only keeps its results beside the experiment:

    python experiments/properties/run.py --config quick   # a smoke run -> experiments/properties/results/quick/

(the runs themselves train into runs/properties_CONFIG unless --workdir says otherwise).

Resumable: a finished (family, seed) is not redone. Other flags are those of `gm-jax properties --help`.
"""

from __future__ import annotations

import os
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main(argv=None) -> int:
    from gm_jax.cli import main as gm_jax_main

    argv = list(sys.argv[1:] if argv is None else argv)
    config = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else "quick"
    if "--out" not in argv:
        argv += ["--out", os.path.join(RESULTS, config)]
    return gm_jax_main(["properties", *argv])


if __name__ == "__main__":
    sys.exit(main())
