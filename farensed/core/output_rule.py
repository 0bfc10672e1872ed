"""Where a job may write (pure paths, no mlx): its output folder, and the one rule of validate, submit
and the daemon on it (inside checkpoints/, not the root, never inside or around another job's folder)."""

from __future__ import annotations

from pathlib import Path

from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.spool import records


def output_dir(spec: JobSpec, job_id: str, home: Home) -> Path:
    return home.resolve(spec.output) if spec.output else home.checkpoints / job_id


def output_problem(out: Path, home: Home, others: dict[str, str], job_id: str) -> str | None:
    """Why a job may not write to `out`, or None: the one rule of validate, submit and the daemon.
    Paths are compared resolved (`checkpoints/zz/../victim` is `checkpoints/victim`) and casefolded
    (on macOS's case-insensitive disk `checkpoints/Victim` is the same folder); the output must be a
    folder strictly inside the checkpoints root, and neither inside nor around another job's folder."""
    out, root = out.resolve(), home.checkpoints.resolve()
    if _folded(out) == _folded(root):
        return f"{out} is the checkpoints root itself; give a folder inside it"
    if root not in out.parents:
        return f"{out} is outside the checkpoints root {root}"
    mine = _folded(out)
    for other, folder in sorted(others.items()):
        theirs = Path(folder).resolve()
        if other == job_id:
            continue
        if _folded(theirs) == mine:
            return f"{out} is already the output folder of job {other}"
        if _inside(mine, _folded(theirs)) or _inside(_folded(theirs), mine):
            return f"{out} is inside or around the output folder of job {other} ({theirs})"
    return None


def _folded(p: Path) -> tuple[str, ...]:
    return tuple(part.casefold() for part in p.parts)


def _inside(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """`a` is strictly inside `b` (both casefolded parts)."""
    return len(a) > len(b) and a[: len(b)] == b


def recorded_outputs(home: Home) -> dict[str, str]:
    """Every recorded job's output folder, by job id (what validate and submit compare against)."""
    found, _ = records.scan(home.spool / "jobs")
    return {r.id: r.output_dir for r in found.values() if r.output_dir}
