"""The dashboard's actions, done exactly as farensectl does them: a control request file for
pause/resume/cancel/retry (core/spool/requests.py), a job file written into the spool for submit
(after `validate`'s checks). The daemon applies them; the dashboard keeps no state of its own."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from farensed.core.jobspec import MAX_JOB_FILE_BYTES
from farensed.core.paths import Home
from farensed.core.spool.drops import drop, predicted_id
from farensed.core.spool.folders import SpoolDirs
from farensed.core.spool.requests import write_request
from farensed.core.states import VERBS, verb_target
from farensed.dashboard import data

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.toml$")


class ActionRefused(Exception):
    """An action that does not apply (unknown job, wrong state, bad file name): HTTP 4xx with this text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def request(home: Home, verb: str, job_id: str) -> dict:
    """Drop one control request, after the same check `farensectl VERB JOB` makes."""
    if verb not in VERBS:
        raise ActionRefused(404, f"no action {verb!r}: one of {', '.join(VERBS)}")
    found = data.find(home, job_id)
    if found is None:
        raise ActionRefused(404, f"no job {job_id!r} in {home.spool}")
    rec = found[0]
    if verb_target(verb, rec.state) is None:
        raise ActionRefused(409, f"job {job_id} is {rec.state}: cannot {verb} it")
    path = write_request(SpoolDirs(home.spool).requests, verb, job_id)
    return {"ok": True, "message": f"{verb} requested for {job_id} ({rec.state})", "request": path.name}


def _problem(p, tmp_path: Path, file_name: str) -> dict:
    """One problem, naming the file as the user called it (not the temporary copy checked)."""
    return {"line": p.line, "key": p.key, "message": p.message.replace(str(tmp_path), file_name),
            "text": str(p).replace(str(tmp_path), file_name)}


def submit(home: Home, file_name: str, text: str, dry_run: bool = False) -> dict:
    """Check a job file as `farensectl submit` does; when it passes (and not dry_run), queue it."""
    from farensed.core.checks import check_job  # heavy (tokenizer): only when a file is submitted

    if not SAFE_NAME.match(file_name or ""):
        raise ActionRefused(400, f"{file_name!r}: a job file name is letters, digits, . _ - and ends in .toml")
    body = text.encode("utf-8")
    if len(body) > MAX_JOB_FILE_BYTES:
        raise ActionRefused(413, f"{file_name}: larger than {MAX_JOB_FILE_BYTES} bytes")
    job_id = predicted_id(home, file_name)
    with tempfile.TemporaryDirectory(prefix="farensed-dashboard-") as tmp:
        path = Path(tmp) / file_name
        path.write_bytes(body)
        rep = check_job(path, home, job_id=job_id, measure_tokens=False)
        problems = [_problem(p, path, file_name) for p in rep.problems]
    out = {"ok": rep.ok, "job_id": job_id, "problems": problems, "notes": rep.notes, "submitted": False}
    if rep.ok and not dry_run:
        out["job_id"] = drop(home, file_name, body)  # exclusive create, as farensectl submit
        out["submitted"] = True
    return out
