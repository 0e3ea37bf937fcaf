"""The package layout: no import cycles, ``__all__`` everywhere it is promised, lazy subpackages.

The import graph is read from the source (``ast``), so function-local imports count too: a cycle hidden
in a function body is still a design knot, and it breaks the day someone hoists the import. Run this file
as a script to print the cycles: ``python tests/test_layout.py``.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gm_jax")
# The packages whose public modules must define a complete __all__ (the others have their own owners).
ALL_CHECKED = ("gm_jax.nets", "gm_jax.metrics", "gm_jax.models", "gm_jax.data", "gm_jax.train")


def module_files(root: str = ROOT, package: str = "gm_jax") -> dict[str, str]:
    """{dotted module name: path} of every .py under ``root`` (a package's __init__ is the package's name)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if os.path.isfile(os.path.join(dirpath, d, "__init__.py")))
        rel = os.path.relpath(dirpath, root)
        prefix = package if rel == "." else package + "." + rel.replace(os.sep, ".")
        for name in sorted(filenames):
            if name.endswith(".py"):
                out[prefix if name == "__init__.py" else f"{prefix}.{name[:-3]}"] = os.path.join(dirpath, name)
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name a (possibly relative) ``from X import ...`` refers to."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(files: dict[str, str] | None = None) -> dict[str, set[str]]:
    """{module: modules of the package it imports}, from every ``import`` / ``from`` statement anywhere in
    the file (module level, functions, ``if TYPE_CHECKING`` blocks alike).

    ``from a.b import c`` points at ``a.b.c`` when that is a module, else at ``a.b``; importing ``a.b.c``
    is not counted as importing the package ``a.b`` (Python runs ``a/b/__init__.py`` first, but a package
    that imports its own submodules would then always be a cycle).
    """
    files = module_files() if files is None else files
    graph = {}
    for module, path in files.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        is_package = path.endswith("__init__.py")
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in files:  # `import gm_jax.metrics.extract as e`, or a name in a module
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted; sorted list."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _cycle_path(graph, component) -> str:
    """One concrete loop through ``component``, e.g. ``a -> b -> a``, for the failure message."""
    members, start = set(component), component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w in path]
        if back:
            return " -> ".join(path[path.index(back[0]):] + [back[0]])
        step = next(w for w in nxt if w not in seen)
        path.append(step)
        seen.add(step)


def test_no_import_cycles():
    graph = import_graph()
    assert "gm_jax.metrics.extract" in graph and graph["gm_jax"] is not None  # the walk found the package
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in gm_jax:\n" + "\n".join(_cycle_path(graph, c) for c in cycles)


def test_cycle_finder_sees_function_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.a import f\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "sub" / "b.py").write_text("import pkg.sub.c as c\n")
    (pkg / "sub" / "c.py").write_text("from pkg.sub.a import f\nimport numpy\n")
    (pkg / "d.py").write_text("from pkg import sub\n")
    graph = import_graph(module_files(str(pkg), "pkg"))
    assert graph["pkg.sub.a"] == {"pkg.sub.b"} and graph["pkg.d"] == {"pkg.sub"}
    assert find_cycles(graph) == [["pkg.sub.a", "pkg.sub.b", "pkg.sub.c"]]
    assert _cycle_path(graph, find_cycles(graph)[0]) == "pkg.sub.a -> pkg.sub.b -> pkg.sub.c -> pkg.sub.a"


def _public_modules(package: str) -> list[str]:
    prefix = package + "."
    return sorted(m for m in module_files()
                  if m.startswith(prefix) and "." not in m[len(prefix):] and not m[len(prefix):].startswith("_"))


def _top_level_modules() -> list[str]:
    return [m for m in module_files() if m.count(".") == 1 and not m.split(".")[1].startswith("_")
            and not os.path.isdir(os.path.join(ROOT, m.split(".")[1]))]


@pytest.mark.parametrize("name", sorted({m for p in ALL_CHECKED for m in _public_modules(p)} | set(ALL_CHECKED)
                                         | set(_top_level_modules()) | {"gm_jax"}))
def test_public_module_defines_all(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{name} defines no __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ lists a name twice"
    if name == "gm_jax":  # lazy subpackages: checked without importing them all here (see the next test)
        return
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_package_init_has_one_import_block_and_one_all():
    """Each package's __init__: the imports, then a single ``__all__ = [...]`` (no ``__all__ +=``)."""
    for package in ALL_CHECKED:
        path = module_files()[package]
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        kinds = []
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                kinds.append("import")
            elif isinstance(node, ast.AugAssign) and getattr(node.target, "id", None) == "__all__":
                kinds.append("all+=")
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                kinds.append("all")
        assert kinds.count("all") == 1 and "all+=" not in kinds, f"{path}: one `__all__ = [...]`, no `+=`"
        first_other = next((i for i, k in enumerate(kinds) if k != "import"), len(kinds))
        assert "import" not in kinds[first_other:], f"{path}: imports after __all__; keep one import block"


def test_subpackages_load_lazily_as_attributes():
    """``import gm_jax`` imports no subpackage (it must stay cheap); ``gm_jax.metrics.fid`` loads metrics."""
    code = ("import sys, gm_jax\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('gm_jax.'))\n"
            "assert not loaded and 'jax' not in sys.modules, loaded\n"
            "assert callable(gm_jax.metrics.fid) and 'gm_jax.metrics' in sys.modules\n"
            "assert gm_jax.losses.elbo is sys.modules['gm_jax.losses'].elbo\n"
            "import gm_jax.metrics\n"
            "assert set(gm_jax.__all__) <= set(dir(gm_jax))\n"
            "for name in gm_jax.__all__:\n"
            "    assert getattr(gm_jax, name).__name__ == 'gm_jax.' + name, name\n"
            "try:\n"
            "    gm_jax.nope\n"
            "except AttributeError as e:\n"
            "    assert 'nope' in str(e)\n"
            "else:\n"
            "    raise AssertionError('gm_jax.nope did not raise')\n")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=os.path.join(ROOT, ".."))
    assert r.returncode == 0, r.stderr


if __name__ == "__main__":
    g = import_graph()
    found = find_cycles(g)
    for c in found:
        print(_cycle_path(g, c))
    print(f"{len(g)} modules, {sum(map(len, g.values()))} edges, {len(found)} cycles")
    sys.exit(1 if found else 0)


def test_tests_mirror_the_package():
    """Each folder of tests/ is named after a gm_jax subpackage (``helpers`` folders hold scripts), so a
    module's tests are found where the module is."""
    tests_root = os.path.dirname(os.path.abspath(__file__))
    packages = {d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))}
    folders = {d for d in os.listdir(tests_root)
               if os.path.isdir(os.path.join(tests_root, d)) and not d.startswith((".", "_"))}
    assert folders - packages == set(), f"tests/ folders without a gm_jax subpackage: {sorted(folders - packages)}"
