"""Who may import whom, read from the source with ast: the client (cli/, results/) and the shared
core (spool/) never import the daemon; bench/ never imports the tests."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "farensed"
DAEMON_ENTRY = PACKAGE / "cli" / "daemon_main.py"  # `farensed run`: the one client file that starts the daemon
TEST_MODULES = {"tests", "conftest", "worker_support"} | {p.stem for p in (REPO / "tests").glob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved to absolute names."""
    package = list(path.relative_to(REPO).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def importers_of(prefix: str, files) -> dict[str, list[str]]:
    out = {}
    for path in files:
        hits = sorted(m for m in imported_modules(path) if m == prefix or m.startswith(prefix + "."))
        if hits:
            out[str(path.relative_to(REPO))] = hits
    return out


def test_the_client_never_imports_the_daemon():
    # Given every module of cli/ and results/ but the daemon's entry point
    files = [p for sub in ("cli", "results") for p in (PACKAGE / sub).rglob("*.py") if p != DAEMON_ENTRY]
    # Then none imports farensed.daemon (what both read lives in farensed.spool)
    assert files and importers_of("farensed.daemon", files) == {}


def test_the_shared_core_imports_neither_daemon_nor_client():
    files = list((PACKAGE / "spool").rglob("*.py"))
    assert files
    for side in ("farensed.daemon", "farensed.cli", "farensed.results", "farensed.worker"):
        assert importers_of(side, files) == {}, side


def test_the_check_sees_relative_imports():
    # Given the daemon's entry point, which starts the daemon with a relative import
    # Then the check above would have caught it
    assert "farensed.daemon.loop" in imported_modules(DAEMON_ENTRY)


def sys_path_additions(path: Path) -> list[str]:
    """The source of every argument given to sys.path.insert/append in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [ast.unparse(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("insert", "append") and ast.unparse(n.func.value) == "sys.path" for a in n.args]


def test_bench_never_imports_the_tests():
    files = list((REPO / "bench").glob("*.py"))
    assert files
    for path in files:
        roots = {m.split(".")[0] for m in imported_modules(path)}
        assert not roots & TEST_MODULES, path
        assert not [a for a in sys_path_additions(path) if "tests" in a], path
