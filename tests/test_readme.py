import os
import re
import subprocess

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"```bash\n(.*?)\n```", text, re.S)
    assert block and text.index("```bash") < text.index("\n## "), "the README must open with the commands"
    return block.group(1).splitlines()


def test_readme_opens_with_exactly_two_setup_commands():
    train, test = _commands()
    assert "pip install ." in train and "gm-jax train vae --dataset digits" in train
    assert "pip install '.[test]'" in test and "pytest" in test


EXTRACT = "awk '/^```bash$/{inblock=1; next} /^```$/{if (inblock) exit} inblock' README.md | sed -n 2p"


def test_ci_runs_the_readme_test_command_verbatim():
    script = open(os.path.join(ROOT, ".ci", "run")).read()
    assert f"test_cmd=$({EXTRACT})" in script and 'bash -c "$test_cmd"' in script
    extracted = subprocess.run(["bash", "-c", EXTRACT], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert extracted == _commands()[1]


def test_requirements_txt_matches_setup_cfg():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    declared = {l.split("#")[0].strip() for l in cfg["options"]["install_requires"].splitlines()} - {""}
    listed = {l.strip() for l in open(os.path.join(ROOT, "requirements.txt")) if l.strip() and not l.startswith("#")}
    assert declared == listed


def test_every_registered_model_is_in_the_readme_models_table():
    from gm_jax.models import MODELS

    rows = [line for line in open(os.path.join(ROOT, "README.md")).read().splitlines() if line.startswith("| `")]
    named = {name for line in rows for name in re.findall(r"`([a-z_0-9]+)`", line.split("|")[1])}
    assert set(MODELS) <= named, sorted(set(MODELS) - named)


def test_bring_your_own_network_examples_run_without_flax():
    """The README's plain-function examples run as written, in a fresh interpreter that never imports Flax."""
    import sys

    text = open(os.path.join(ROOT, "README.md")).read()
    section = text[text.index("## Bring your own network"):]
    section = section[:section.index("\n## ")]
    code = re.search(r"```python\n(.*?)\n```", section, re.S).group(1)
    code += "\nimport sys; assert not any(m.split('.')[0] == 'flax' for m in sys.modules), 'flax was imported'\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_readme_property_tables_are_those_of_the_recorded_cpu_run():
    """Every number of the README's property table comes from the committed properties.json: each generated
    block (between its markers) is what ``experiments/properties/update_readme.py`` writes from it, and
    experiments/.../properties.md is up to date."""
    import json

    from experiments.properties import update_readme
    from gm_jax.properties import report

    with open(update_readme.RESULTS) as f:
        results = json.load(f)
    readme = open(os.path.join(ROOT, "README.md")).read()
    found = update_readme.readme_block_texts(readme)
    for name, block in update_readme.readme_blocks(results).items():
        assert found[name] == [block], f"README block {name} is stale: run python experiments/properties/update_readme.py"
    recorded = open(os.path.join(os.path.dirname(update_readme.RESULTS), "properties.md")).read()
    for table in (report.main_table(results), report.samplers_table(results), report.claims_table(results)):
        assert table in recorded
