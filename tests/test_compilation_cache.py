"""The gm-jax command's persistent compilation cache: on by default in the configured folder, off on request,
a bad folder refused in one line."""

import os
import subprocess
import sys

from gm_jax.cli import main


def _train(tmp_path, *extra, env=None):
    argv = [sys.executable, "-m", "gm_jax.cli", "train", "made", "--dataset", "toy2d/moons", "--steps", "2",
            "--set", "hidden=8", "--set", "num_orderings=1", "--set", "checkpoint_every=2",
            "--workdir", str(tmp_path / "run"), "--no-progress", *extra]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_compiled_programs_are_kept_in_the_cache_folder(tmp_path):
    out = _train(tmp_path, env={"GM_JAX_COMPILATION_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert any(name.endswith("-cache") for name in os.listdir(tmp_path / "cache"))


def test_off_turns_the_cache_off(monkeypatch, tmp_path):
    from gm_jax.compilation_cache import resolve_compilation_cache

    monkeypatch.setenv("GM_JAX_COMPILATION_CACHE", str(tmp_path / "c"))
    assert resolve_compilation_cache(None) == str(tmp_path / "c")
    assert resolve_compilation_cache("off") is None and resolve_compilation_cache("OFF ") is None
    monkeypatch.setenv("GM_JAX_COMPILATION_CACHE", "off")
    assert resolve_compilation_cache(None) is None
    monkeypatch.delenv("GM_JAX_COMPILATION_CACHE")
    assert resolve_compilation_cache(None).endswith(os.path.join(".cache", "gm_jax", "jax_cache"))


def test_a_file_as_the_cache_folder_is_refused_in_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", "vae", "--workdir", str(tmp_path / "run"), "--compilation-cache", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
