"""The package's structure: no import cycles, models independent of inference, a light CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> installed package (the design card's layout)
PACKAGES = {"crowdzoo": "crowdzoo", "models": "crowdzoo.models",
            "inference": "crowdzoo.inference", "data": "crowdzoo.data"}


def import_graph() -> dict[str, set[str]]:
    """Module -> the crowdzoo modules it imports (module level and inside functions)."""
    modules = {}
    for folder, pkg in PACKAGES.items():
        for f in (ROOT / folder).glob("*.py"):
            modules[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        pkg = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = pkg.split(".")
                    base = parts[: len(parts) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {n for n in names if n in modules and n != name}
    return graph


def test_no_import_cycle_between_modules():
    """Package ``__init__`` re-exports aside, no module imports itself back through others."""
    graph = import_graph()
    inits = set(PACKAGES.values())
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node] - inits):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [nxt]))
            if not state.get(nxt):
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])


def test_models_do_not_import_inference():
    graph = import_graph()
    bad = {m: sorted(t for t in targets if t.startswith("crowdzoo.inference"))
           for m, targets in graph.items() if m.startswith("crowdzoo.models")}
    assert not {m: t for m, t in bad.items() if t}


def test_importing_the_cli_and_the_package_loads_no_jax():
    code = ("import sys, crowdzoo, crowdzoo.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'numpyro')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def test_import_has_no_side_effect_on_jax_settings():
    code = ("import os, crowdzoo; print(os.environ.get('XLA_FLAGS', '')); "
            "import jax; print(jax.config.jax_compilation_cache_dir)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=env)
    flags, cache = out.stdout.rstrip("\n").split("\n")
    assert flags == "" and cache in ("None", "")
