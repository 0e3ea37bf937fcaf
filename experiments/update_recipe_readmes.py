"""Rewrites each recipe folder's README.md from its config (and any recorded results/), so that the paper's
numbers, ours and the differences stay those of the code: ``python experiments/update_recipe_readmes.py``.
tests/test_recipes.py fails when a README is out of date."""

from __future__ import annotations

import importlib
import json
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


def readme(configs, doc: str, results_dir: str) -> str:
    """A recipe folder's README (``configs``: name -> :class:`~experiments.recipe.Recipe`): ``doc`` (its config
    module's docstring), how to run it, and per paper config the paper's numbers beside ours, read from
    ``results_dir/<config>/recipe.json`` where a run was recorded."""
    from experiments.recipe import RESULTS_FILE, comparison_table
    from gm_jax.errors import GMJaxError

    name = next(iter(configs.values())).name
    papers = [c for c in configs if c != "smoke"]
    lines = [f"# {name}", "", doc.strip(), "", "## Run", "", "```bash",
             f"python -m experiments.{name} --describe          # resolved config and parameter count; no data",
             f"python -m experiments.{name} --data-dir DIR      # train and evaluate by the paper's protocol",
             f"python -m experiments.{name} --config smoke      # the same code path, tiny, on embedded data",
             "```", "",
             f"Configs: {', '.join(papers)} (default {papers[0]}), and smoke (on `{configs['smoke'].dataset}`). "
             "Runs resume" + ("" if all(e.metrics == "nll" for c in papers for e in configs[c].evaluations) else
                              "; FID and IS need the Inception weights (`--weights FILE`, or the cache of "
                              "`gm-jax inception`)") +
             f". Copy a finished run's `recipe.json` to `experiments/{name}/results/CONFIG/` to record it here.",
             ""]
    for config in papers:
        recipe = configs[config]
        path = os.path.join(results_dir, config, RESULTS_FILE)
        results = {}
        if os.path.isfile(path):
            with open(path) as f:
                recorded = json.load(f)
            if (recorded.get("config"), recorded.get("dataset")) != (config, recipe.dataset):
                raise GMJaxError(f"{path} records config {recorded.get('config')} on {recorded.get('dataset')}, "
                                 f"not {config} on {recipe.dataset}")
            results = recorded["evaluations"]
        lines += [f"## Paper numbers beside ours: {config}" if len(papers) > 1 else "## Paper numbers beside ours", "",
                  f"{recipe.model} on {recipe.dataset}.", "",
                  comparison_table(recipe, results) if recipe.published else "The paper reports no number for this "
                  "config.", ""]
        if recipe.deviations:
            lines += ["Differences from the paper:", ""] + [f"- {d}." for d in recipe.deviations] + [""]
    return "\n".join(lines)


def readme_of(name: str) -> str:
    module = importlib.import_module(f"experiments.{name}.config")
    return readme(module.CONFIGS, module.__doc__, os.path.join(HERE, name, "results"))


BEGIN, END = "<!-- recipes -->", "<!-- /recipes -->"


def recipes_table() -> str:
    """experiments/README.md's list: one row per (recipe, paper config) with the paper's numbers and ours."""
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
