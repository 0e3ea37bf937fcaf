"""The persistent compilation cache of the ``gm-jax`` command: compiled XLA programs are kept on disk, so a
second run of a job (or ``sample``/``evaluate`` after ``train``) loads its programs instead of compiling them.

On by default in ``$GM_JAX_COMPILATION_CACHE``, else ``~/.cache/gm_jax/jax_cache``; ``off`` (the variable, or
``--compilation-cache off``) turns it off. It is JAX's own cache (``jax_compilation_cache_dir``), keyed by the
program, the backend and the compiler flags, so a stale entry cannot be loaded; entries are written for
programs that took at least ``MIN_COMPILE_SECONDS`` to compile. Library users who want it call
:func:`enable_compilation_cache` themselves: importing gm_jax changes no JAX setting.
"""

from __future__ import annotations

import os

from gm_jax.errors import GMJaxError

__all__ = ["default_compilation_cache_dir", "resolve_compilation_cache", "enable_compilation_cache",
           "MIN_COMPILE_SECONDS"]

MIN_COMPILE_SECONDS = 0.0


def default_compilation_cache_dir() -> str:
    """``$GM_JAX_COMPILATION_CACHE`` (a folder or ``off``), else ``~/.cache/gm_jax/jax_cache``."""
    return os.environ.get("GM_JAX_COMPILATION_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gm_jax",
                                                                      "jax_cache")


def resolve_compilation_cache(flag: str | None) -> str | None:
    """The cache folder for a ``--compilation-cache`` value (None: the default), or None when it is off.
    Raises one line when the path is a file."""
    path = flag if flag is not None else default_compilation_cache_dir()
    if path.strip().lower() == "off":
        return None
    if not path.strip():
        raise GMJaxError("--compilation-cache is empty; pass a folder, or off")
    if os.path.exists(path) and not os.path.isdir(path):
        raise GMJaxError(f"compilation cache {path} is a file, not a folder; pass a folder as --compilation-cache "
                         "(or set GM_JAX_COMPILATION_CACHE), or 'off'")
    return path


def enable_compilation_cache(path: str, *, min_compile_seconds: float = MIN_COMPILE_SECONDS) -> None:
    """Keeps compiled programs in ``path`` (made if missing) from now on, for this process."""
    import jax

    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
