"""Rewrites each recipe folder's README.md from its config (and any recorded results/), so that the paper's
numbers, ours and the differences stay those of the code: ``python experiments/update_recipe_readmes.py``.
tests/test_recipes.py fails when a README is out of date."""

from __future__ import annotations

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def recipe_folders() -> list[str]:
    """The folders of experiments/ whose config.py defines recipe CONFIGS (toy2d and properties do not)."""
    from experiments.recipe import Recipe

    out = []
    for name in sorted(os.listdir(HERE)):
        if os.path.isfile(os.path.join(HERE, name, "config.py")):
            configs = getattr(importlib.import_module(f"experiments.{name}.config"), "CONFIGS", {})
            if configs and all(isinstance(c, Recipe) for c in configs.values()):
                out.append(name)
    return out


def readme_of(name: str) -> str:
    from experiments.recipe import readme

    module = importlib.import_module(f"experiments.{name}.config")
    return readme(module.CONFIGS, module.__doc__, os.path.join(HERE, name, "results"))


BEGIN, END = "<!-- recipes -->", "<!-- /recipes -->"


def recipes_table() -> str:
    """experiments/README.md's list: one row per (recipe, paper config) with the paper's numbers and ours."""
    import json

    lines = ["| recipe | config | paper | numbers: paper / ours |", "|---|---|---|---|"]
    for name in recipe_folders():
        module = importlib.import_module(f"experiments.{name}.config")
        for config, recipe in module.CONFIGS.items():
            if config == "smoke":
                continue
            path = os.path.join(HERE, name, "results", config, "recipe.json")
            ours = {}
            if os.path.isfile(path):
                with open(path) as f:
                    ours = json.load(f)["evaluations"]
            cells = []
            for p in recipe.published:
                value = ours.get(p.evaluation, {}).get(p.metric)
                cells.append(f"{p.label} {p.value:g} / {'not yet run' if value is None else f'{value:.4g}'}")
            lines.append(f"| `{name}/` | {config} | {recipe.paper} | {'; '.join(cells) or 'no published number'} |")
    return "\n".join(lines)


def experiments_readme(text: str) -> str:
    """``text`` (experiments/README.md) with the block between the markers replaced by :func:`recipes_table`."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{recipes_table()}\n{END}{tail}"


def main() -> int:
    for name in recipe_folders():
        with open(os.path.join(HERE, name, "README.md"), "w") as f:
            f.write(readme_of(name))
        print(f"wrote experiments/{name}/README.md")
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        text = experiments_readme(f.read())
    with open(path, "w") as f:
        f.write(text)
    print("wrote experiments/README.md")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))
    sys.exit(main())
