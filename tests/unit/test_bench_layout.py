"""bench/'s layout rules: scripts run as modules from the repository root (no sys.path changes), the
worker's internals are reached through bench/worker_internals.py alone, every script is in
bench/README.md, and every bench command the docs give names a file that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

BENCH = REPO / "bench"
GATEWAY = BENCH / "worker_internals.py"
DOCS = [REPO / "README.md", BENCH / "README.md", *(REPO / "docs").glob("*.md")]


def bench_files(ext: str) -> list[Path]:
    return sorted(p for p in BENCH.rglob(f"*.{ext}") if not {"results", "device-inputs"} & set(p.parts))


def imports(path: Path) -> set[str]:
    """Every absolute module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def entry_points() -> list[Path]:
    return [p for p in bench_files("py") if '__name__ == "__main__"' in p.read_text(encoding="utf-8")]


def test_bench_never_touches_sys_path():
    # Given every Python file under bench/
    files = bench_files("py")
    # Then none reads or changes sys.path: they run as `python -m bench.KIND.NAME` from the root
    assert files
    touching = [str(p.relative_to(REPO)) for p in files
                if any(isinstance(n, ast.Attribute) and n.attr == "path" and isinstance(n.value, ast.Name)
                       and n.value.id == "sys" for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert touching == []


def test_only_worker_internals_imports_the_worker_modules():
    # Given every bench file but the one gateway module
    files = [p for p in bench_files("py") if p != GATEWAY]
    # Then none imports a farensed.worker module (the worker is driven as `python -m farensed.worker`)
    hits = {str(p.relative_to(REPO)): sorted(m for m in imports(p) if m == "farensed.worker"
                                                 or m.startswith("farensed.worker."))
            for p in files}
    assert {k: v for k, v in hits.items() if v} == {}
    # And the gateway does, so that the rule above has a place to send them
    assert any(m.startswith("farensed.worker") for m in imports(GATEWAY))


def test_every_bench_folder_is_a_package():
    # Given every folder under bench/ holding Python files
    folders = {p.parent for p in bench_files("py")}
    # Then each has an __init__.py, so `python -m bench.KIND.NAME` resolves
    assert sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists()) == []


def test_every_script_is_in_the_bench_readme():
    # Given bench/README.md and every runnable bench script and shell script
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    scripts = [p.stem for p in entry_points()] + [p.name for p in bench_files("sh")]
    # Then the README names each one
    assert scripts and [s for s in scripts if f"`{s}`" not in readme] == []


def test_every_bench_command_in_the_docs_names_a_file_that_exists():
    # Given the READMEs, docs/, bench's own usage lines and the package's comments
    files = DOCS + bench_files("py") + bench_files("sh") + sorted((REPO / "farensed").rglob("*.py"))
    texts = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in files}
    missing = []
    for name, text in texts.items():
        # When every `-m bench.X.Y` module and every bench/....py|sh path is looked up
        for module in re.findall(r"-m (bench(?:\.[a-z_]+)+)", text):
            if not (REPO / (module.replace(".", "/") + ".py")).exists():
                missing.append(f"{name}: -m {module}")
        for path in re.findall(r"\bbench/[\w/]+\.(?:py|sh)\b", text):
            if not (REPO / path).exists():
                missing.append(f"{name}: {path}")
        # And no doc runs a bench script as a file (its `bench.` imports would not resolve)
        missing += [f"{name}: {m} (run it as a module)" for m in re.findall(r"python3? bench/\S+\.py", text)]
    # Then each one is there
    assert missing == []


def test_every_worker_internal_a_bench_uses_is_exported():
    # Given the names bench/worker_internals.py exports (read from its source: importing it loads mlx)
    tree = ast.parse(GATEWAY.read_text(encoding="utf-8"))
    exported = {ast.literal_eval(e) for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets) for e in n.value.elts}
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    # When every `worker_internals.NAME` the scripts use is collected
    used = {n.attr for p in bench_files("py") for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "worker_internals"}
    # Then each is exported, and each export is imported there
    assert used and used - exported == set()
    assert exported - imported == set()
