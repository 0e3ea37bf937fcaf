"""The gm-jax command's persistent compilation cache: on by default in the configured folder, off on request,
a bad folder refused in one line."""

import os
import subprocess
import sys

from gm_jax.cli import main


def test_compiled_programs_are_kept_in_the_cache_folder(tmp_path):
    """A command in a fresh process (JAX's cache folder is set once per process) writes its programs there."""
    argv = [sys.executable, "-m", "gm_jax.cli", "evaluate", "--metrics", "fid", "--fake", "digits:train", "--real",
            "digits:test", "--features", "raw", "--num", "32", "--out", str(tmp_path / "m.json"), "--no-progress"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "GM_JAX_COMPILATION_CACHE": str(tmp_path / "cache")})
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
