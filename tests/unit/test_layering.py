"""The import rules, in one place, read from the source with ast (and one real import): only worker/
and the demo model's builder import mlx; the client (cli/, results/) never imports the daemon; the
daemon imports no client code; the shared core imports none of the packages above it; nothing but
__init__.py sits at the top of the package; bench/ never imports the tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "farensed"
MLX_ALLOWED = ("farensed.worker", "farensed.demo.model")  # the worker; scripts/setup's model builder
TEST_MODULES = {"tests", "conftest", "worker_support"} | {p.stem for p in (REPO / "tests").rglob("*.py")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Every module `path` imports, relative imports resolved to absolute names."""
    package = list(path.relative_to(REPO).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def package_files(*subs: str) -> list[Path]:
    return [p for sub in subs for p in (PACKAGE / sub).rglob("*.py")]


def importers_of(prefixes: tuple[str, ...], files) -> dict[str, list[str]]:
    out = {}
    for path in files:
        hits = sorted(m for m in imported_modules(path) for p in prefixes if m == p or m.startswith(p + "."))
        if hits:
            out[str(path.relative_to(REPO))] = hits
    return out


def test_only_the_worker_and_the_demo_model_builder_import_mlx():
    # Given every module of the package outside worker/ and demo/model/
    files = [p for p in PACKAGE.rglob("*.py") if not module_name(p).startswith(MLX_ALLOWED)]
    # Then none imports mlx or mlx_lm, at the top or inside a function
    assert files and importers_of(("mlx", "mlx_lm"), files) == {}


def test_importing_every_module_outside_the_worker_loads_no_mlx():
    # Given every module the daemon, the client and the core are made of
    mods = sorted(module_name(p) for p in PACKAGE.rglob("*.py")
                  if not module_name(p).startswith(MLX_ALLOWED) and p.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm')))")
    # When all of them are imported in one fresh interpreter
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    # Then mlx was never loaded
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_client_never_imports_the_daemon_and_the_daemon_no_client_code():
    assert importers_of(("farensed.daemon",), package_files("cli", "results", "dashboard")) == {}
    assert importers_of(("farensed.cli", "farensed.results", "farensed.dashboard"), package_files("daemon")) == {}


def test_the_shared_layers_import_nothing_above_them():
    above = ("farensed.daemon", "farensed.cli", "farensed.results", "farensed.worker", "farensed.demo")
    for sub in ("core", "memory", "scoring", "serving"):
        files = package_files(sub)
        assert files, sub
        assert importers_of(above, files) == {}, sub
    # The memory plan is pure Python: not even numpy
    assert importers_of(("numpy",), package_files("memory")) == {}


def test_nothing_but_the_package_face_sits_at_the_top_of_the_package():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == []


def test_the_check_sees_relative_imports():
    # Given a client module that would import the daemon relatively
    source = "from ..daemon import loop\nfrom . import client\n"
    # Then the reader resolves both to absolute names, so the rules above would catch it
    found = imported_modules(PACKAGE / "cli" / "probe.py", source)
    assert {"farensed.daemon.loop", "farensed.cli.client"} <= found


def sys_path_additions(path: Path) -> list[str]:
    """The source of every argument given to sys.path.insert/append in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [ast.unparse(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("insert", "append") and ast.unparse(n.func.value) == "sys.path" for a in n.args]


def test_bench_never_imports_the_tests():
    files = list((REPO / "bench").rglob("*.py"))
    assert files
    for path in files:
        roots = {m.split(".")[0] for m in imported_modules(path)}
        assert not roots & TEST_MODULES, path
        assert not [a for a in sys_path_additions(path) if "tests" in a], path
