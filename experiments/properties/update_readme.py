"""Rewrites the README's property-table blocks from the recorded cpu run, so that every number there comes
from ``experiments/properties/results/cpu/properties.json``:

    python experiments/properties/update_readme.py

Each generated block sits between ``<!-- properties:NAME -->`` and ``<!-- /properties:NAME -->``; the prose
around them (why each disagreement) is written by hand. ``tests/test_readme.py`` fails when a block is stale.
"""

from __future__ import annotations

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "experiments", "properties", "results", "cpu", "properties.json")
README = os.path.join(ROOT, "README.md")
BLOCKS = ("run_time", "compact_table", "samplers_table", "settings_list", "rules", "claims_table", "points_table")


def readme_blocks(results: dict) -> dict[str, str]:
    """NAME -> the generated text of that README block (every name of :data:`BLOCKS`)."""
    from gm_jax.properties import report

    return {name: report.rules_list() if name == "rules" else getattr(report, name)(results) for name in BLOCKS}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- properties:{name} -->)(.*?)(<!-- /properties:{name} -->)", re.S)


def readme_block_texts(text: str) -> dict[str, list[str]]:
    """NAME -> the texts found between that block's markers in ``text`` (blank-line padding stripped)."""
    return {name: [m.group(2).strip("\n") for m in _pattern(name).finditer(text)] for name in BLOCKS}


def fill_readme(text: str, results: dict) -> str:
    """``text`` with every block replaced by its generated text; each block must appear exactly once."""
    for name, block in readme_blocks(results).items():
        found = len(_pattern(name).findall(text))
        if found != 1:
            raise ValueError(f"README has {found} '<!-- properties:{name} -->' blocks; it needs exactly one")
        body = block if "\n" not in block else f"\n{block}\n"  # a table or list gets lines of its own
        text = _pattern(name).sub(lambda m: m.group(1) + body + m.group(3), text)
    return text


def main() -> int:
    with open(RESULTS) as f:
        results = json.load(f)
    with open(README) as f:
        text = f.read()
    try:
        filled = fill_readme(text, results)
    except ValueError as e:
        print(f"update_readme: {e}", file=sys.stderr)
        return 2
    with open(README, "w") as f:
        f.write(filled)
    print(f"update_readme: {'rewrote' if filled != text else 'already up to date:'} {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
