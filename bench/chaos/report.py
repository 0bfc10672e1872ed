"""The figures bench/chaos/chaos.py prints at the end, the evidence behind them, and PASS/FAIL."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path

from bench.chaos import rig

ADAPTERS = {"final": "adapters.safetensors", "best": "adapters/adapters.safetensors"}


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def digests(rec: dict | None) -> dict[str, str | None]:
    out = Path((rec or {}).get("output_dir") or "/nonexistent")
    return {k: digest(out / rel) for k, rel in ADAPTERS.items()}


def tensor_diff(a: Path, b: Path) -> str:
    """Which tensors differ between two safetensors files, and by how much (numpy, no mlx)."""
    try:
        import numpy as np
        ta, tb = _tensors(a), _tensors(b)
    except (ImportError, OSError, ValueError, KeyError) as e:
        return f"cannot compare tensors: {e}"
    diff = {k: float(np.max(np.abs(ta[k] - tb[k]))) for k in ta if k in tb and not np.array_equal(ta[k], tb[k])}
    if not diff and set(ta) == set(tb):
        return "same tensors, different file bytes (metadata)"
    worst = max(diff.items(), key=lambda kv: kv[1]) if diff else ("-", 0.0)
    return f"{len(diff)} of {len(ta)} tensors differ, largest |diff| {worst[1]:.3g} in {worst[0]}"


def _tensors(path: Path) -> dict:
    import numpy as np
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    types = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], types[v["dtype"]]).astype(np.float64)
            for k, v in header.items() if k != "__metadata__"}


def json_lines(path: Path) -> list[dict]:
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')


def tracebacks(text: str) -> list[str]:
    """Every Python traceback in `text`, each as one line: our frames, then the exception (a
    traceback cut short, e.g. by a full disk under worker.log, ends in "(cut off)")."""
    out, frames, inside = [], [], False
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            inside, frames = True, []
        elif inside and (m := FRAME.match(line)):
            if "/farensed/" in m.group(1):
                frames.append(f"{m.group(1).split('/farensed/')[-1]}:{m.group(2)} {m.group(3)}")
        elif inside and line.startswith("{"):  # the next JSON log line: the traceback was cut
            out.append(" > ".join(frames[-6:]) + ": (cut off)")
            inside = False
        elif inside and line and not line.startswith((" ", "\t")) and not line.startswith("During handling"):
            exc = line.split('{"', 1)[0].strip()[:200]  # a cut line runs into the next log line
            out.append(" > ".join(frames[-6:]) + f": {exc}")
            inside = False
    if inside:
        out.append(" > ".join(frames[-6:]) + ": (cut off)")
    return out


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class Report:
    def __init__(self, c, stop_rc):
        self.c, self.stop_rc = c, stop_rc
        self.recs = rig.records(c.home)
        self.fail: list[str] = []

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def run(self) -> bool:
        c = self.c
        self.line()
        self.line(f"== chaos summary (seed {c.args.seed}, {len(c.jobs)} jobs of {c.args.steps} steps,"
                  f" disk_full by {'the fault hook' if c.hook_step else 'tmpfs'})")
        if c.aborted:
            self.line(f"run cut short: {c.aborted}")
            self.fail.append(f"run cut short: {c.aborted}")
        self.faults()
        self.jobs()
        self.lost()
        self.hostile()
        self.daemon_exits()
        self.identical()
        self.evidence()
        for note in c.notes:
            self.line(f"note: {note}")
        self.line(f"wall time: references {c.timings.get('references', 0):.0f} s,"
                  f" chaos {c.timings.get('chaos', 0):.0f} s")
        close = "bit-identical to" if c.args.noise == "exact" else "within the run-to-run noise of"
        verdict = ("PASS: no job lost, no daemon exit the bench did not cause, every job finished, and every"
                   f" job whose faults are resumable {close} its reference") if not self.fail else \
            "FAIL: " + "; ".join(self.fail)
        self.line(verdict)
        return not self.fail

    # --- figures ---------------------------------------------------------------------------
    def faults(self) -> None:
        c = self.c
        fired = [f for f in c.faults if f.fired_at is not None and f.detail]
        by_kind = Counter(f.kind + (f"/{f.mode}" if f.mode else "") for f in fired)
        self.line(f"faults injected: {len(fired)} of {len(c.faults)} planned")
        for kind, n in sorted(by_kind.items()):
            self.line(f"  {kind:<30} {n}")
        for f in c.faults:
            if f.fired_at is None or not f.detail:
                why = f.skipped or "no moment came"
                self.line(f"  not injected: {f.kind} on {f.target} at step {f.at_step}: {why}")
        missing = sorted(set(c.args.kinds) - {f.kind for f in fired})
        if missing:
            self.line(f"  kinds never injected: {', '.join(missing)}")
        self.disk_pauses([f for f in fired if f.kind == "disk_full"])
        self.fallbacks([f for f in fired if f.kind == "corrupt_checkpoint"])

    def disk_pauses(self, disks) -> None:
        if not disks:
            return
        paused = [f for f in disks if f.expect.get("paused")]
        self.line(f"disk_full treated as a pause: {len(paused)} of {len(disks)}")
        for f in disks:
            e = f.expect
            self.line(f"  {f.target} ({f.mode}): " + (f"paused: {e.get('reason')}" if e.get("paused") else
                                                       f"NOT paused: job {e.get('state')}: {e.get('reason')};"
                                                       f" checkpoints saved after the fill: {e.get('saved_after')}"))
        if len(paused) < len(disks):
            self.fail.append(f"{len(disks) - len(paused)} disk_full fault(s) not treated as a pause")

    def fallbacks(self, corrupts) -> None:
        if not corrupts:
            return
        seen = 0
        for f in corrupts:
            rec = self.recs.get(f.target) or {}
            log = json_lines(Path(rec.get("output_dir") or "/nonexistent") / "worker.log")
            after = [e for e in log if _ts(e) >= f.expect.get("after", 0)]
            invalid = any(e.get("event") == "checkpoint_invalid" and e.get("checkpoint") == f.expect.get("invalid")
                          for e in after)
            resumed = next((e.get("checkpoint") for e in after if e.get("event") == "resumed"), None)
            ok = invalid and resumed == f.expect.get("resume_from")
            seen += ok
            self.line(f"  {f.target}: corrupted {f.expect.get('invalid')}: "
                      f"{'seen as invalid' if invalid else 'NOT reported invalid'}; next resume from {resumed}")
        self.line(f"checkpoint corruption -> fallback to the older checkpoint: {seen} of {len(corrupts)}")

    def jobs(self) -> None:
        c = self.c
        states = Counter((self.recs.get(j.id) or {}).get("state", "no record") for j in c.jobs)
        self.line(f"jobs: {len(c.jobs)}: " + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
        for j in c.jobs:
            rec = self.recs.get(j.id) or {}
            hits = ", ".join(f"{f.kind}{'/' + f.mode if f.mode else ''}@{f.at_step}" for f in c.faults
                             if f.target == j.id and f.fired_at is not None and f.detail) or "none"
            self.line(f"  {j.id}  {rec.get('state', 'no record'):<9} restarts {rec.get('restarts', '-'):<2}"
                      f" faults: {hits}" + (f"  reason: {rec.get('reason')}" if rec.get("state") != "done" else ""))
        failed = [j for j in c.jobs if (self.recs.get(j.id) or {}).get("state") == "failed"]
        self.line(f"jobs done: {states.get('done', 0)}; jobs failed: {len(failed)}")
        for reason, n in Counter((self.recs[j.id].get("reason") or "(no reason)") for j in failed).items():
            self.line(f"  failed x{n}: {reason}")
        refs = Counter((self.recs.get(j.id) or {}).get("state", "no record") for j in c.refs)
        self.line("reference runs: " + ", ".join(f"{s} {n}" for s, n in refs.items()))
        unfinished = [j.id for j in c.refs + c.jobs if (self.recs.get(j.id) or {}).get("state") not in rig.FINAL]
        self.line(f"jobs unfinished at the end: {len(unfinished)} {' '.join(unfinished)}")
        if unfinished:
            self.fail.append(f"{len(unfinished)} job(s) unfinished")

    def lost(self) -> None:
        c, lost, misplaced = self.c, [], []
        for j in c.refs + c.jobs:
            rec, files = self.recs.get(j.id), rig.job_files(c.home, j.id)
            if rec is None:
                lost.append(f"{j.id}: no record (job file in {files or 'no state folder'})")
            elif (len(files) > 1) or (len(files) == 0 and not j.removed):
                lost.append(f"{j.id}: record {rec['state']}, job file in {files or 'no state folder'}")
            elif files and files[0] != rec["state"]:
                misplaced.append(f"{j.id}: record {rec['state']}, job file in {files[0]}/")
        ours = {j.file_name for j in c.refs + c.jobs}
        ids = {j.id for j in c.refs + c.jobs}
        extra = [k for k, r in self.recs.items() if r.get("file_name") in ours and k not in ids]
        left = [p.name for p in (c.home / "spool").glob("*.toml") if not p.name.startswith("hostile-")]
        self.line(f"jobs lost: {len(lost)} (a job file not in exactly one state folder, or no record;"
                  f" a removed queued file excepted)")
        for x in lost + [f"extra record {k} for one of our files" for k in extra]:
            self.line(f"  {x}")
        self.line(f"job files in a state folder other than their record's: {len(misplaced)}")
        for x in misplaced:
            self.line(f"  {x}")
        if left:
            self.line(f"  never claimed from spool/: {' '.join(left)}")
        if lost or misplaced or extra:
            self.fail.append(f"{len(lost)} job(s) lost, {len(misplaced)} misplaced, {len(extra)} duplicated")

    def hostile(self) -> None:
        """Every hostile file ends rejected with its reason; none is stuck in spool/ and none ran."""
        names = [n for f in self.c.faults for n in f.expect.get("hostile_files", [])]
        if not names:
            return
        states = {n: (self.recs.get(n) or {}).get("state") for n in names}
        stuck = [n for n, st in states.items() if st is None]
        ran = [n for n, st in states.items() if st not in (None, "rejected")]
        pwned = (self.c.home / "pwned").exists()
        fifos = [p for f in self.c.faults for p in f.expect.get("request_fifos", []) if os.path.lexists(p)]
        if fifos:
            self.fail.append(f"request FIFOs left in spool/requests (never set aside): {len(fifos)}")
        self.line(f"hostile files: {len(names)} dropped, {len(names) - len(stuck) - len(ran)} rejected,"
                  f" {len(ran)} accepted, {len(stuck)} stuck; a command from a job file ran: {pwned}")
        for n in stuck + ran:
            self.line(f"  {n}: {states[n] or 'never claimed'}")
        if stuck or ran or pwned:
            self.fail.append(f"hostile files: {len(stuck)} stuck, {len(ran)} accepted, command ran: {pwned}")

    def daemon_exits(self) -> None:
        lives = self.c.daemon.lives
        own = [life for life in lives if life.returncode is not None and not life.injected]
        killed = sum(1 for life in lives if life.injected) - (self.stop_rc is not None)
        self.line(f"daemon processes: {len(lives)}; killed by the bench: {killed}; exits not injected: {len(own)}")
        why: dict[str, list] = {}
        for life in own:
            text = read_text(life.stderr)
            key = (tracebacks(text) or [(life.stderr_tail(1) or ["(nothing on stderr)"])[-1]])[-1]
            why.setdefault(key, []).append(life)
        for key, group in why.items():
            runs = ", ".join(f"#{life.n} rc {life.returncode} after {life.ended - life.started:.1f} s"
                             for life in group)
            self.line(f"  x{len(group)} ({runs}):")
            self.line(f"    {key[:600]}")
        if own:
            self.fail.append(f"{len(own)} daemon exit(s) not injected")
        self.line(f"daemon exit at the final SIGTERM: {self.stop_rc}")
        if self.stop_rc not in (0, None):
            self.fail.append(f"daemon exited {self.stop_rc} on SIGTERM")

    def identical(self) -> None:
        c = self.c
        ref = {j.variant: digests(self.recs.get(j.id)) for j in c.refs
               if (self.recs.get(j.id) or {}).get("state") == "done"}
        noise = self.noise()
        resumable = [j for j in c.jobs if not j.removed]
        done = [j for j in c.jobs if (self.recs.get(j.id) or {}).get("state") == "done"]
        same = []
        for j in done:
            mine, want = digests(self.recs[j.id]), ref.get(j.variant)
            if want and all(mine[k] and mine[k] == want[k] for k in ADAPTERS):
                same.append(j.id)
            elif want and j.variant in noise and self.largest_diff(j.id, f"ref-{j.variant + 1}") <= noise[j.variant]:
                same.append(j.id)  # CUDA: as close to the reference as a second undisturbed run is
            else:
                self.line(f"  {j.id} differs from ref-{j.variant + 1}: {self.differences(j, want)}")
        how = "bit-identical to" if c.args.noise == "exact" else "within the run-to-run noise of"
        self.line(f"finished jobs with final and best adapters {how} the reference: {len(same)} of"
                  f" {len(done)} done (must be all {len(resumable)} jobs whose faults are resumable)")
        if len(same) < len(resumable):
            self.fail.append(f"{len(same)} of {len(resumable)} resumable jobs bit-identical")
        if len(ref) < len(c.refs):
            self.fail.append(f"{len(c.refs) - len(ref)} reference run(s) not done")

    def largest_diff(self, a: str, b: str) -> float:
        """The largest |difference| of any adapter tensor between two jobs' final and best adapters."""
        import numpy as np

        worst = 0.0
        for rel in ADAPTERS.values():
            ta = _tensors(Path(self.recs[a]["output_dir"]) / rel)
            tb = _tensors(Path(self.recs[b]["output_dir"]) / rel)
            if set(ta) != set(tb):
                return float("inf")
            worst = max([worst, *(float(np.max(np.abs(ta[k] - tb[k]))) for k in ta)])
        return worst

    def noise(self) -> dict[int, float]:
        """Per variant, how far two undisturbed runs ended apart (measured mode only): the tolerance."""
        c, out = self.c, {}
        for twin in getattr(c, "twins", []):
            ref = f"ref-{twin.variant + 1}"
            if all((self.recs.get(j) or {}).get("state") == "done" for j in (ref, twin.id)):
                out[twin.variant] = self.largest_diff(ref, twin.id)
                self.line(f"run-to-run noise of variant {twin.variant + 1}: largest |diff| {out[twin.variant]:.3g}"
                          f" between {ref} and {twin.id}")
        return out

    def differences(self, j, want) -> str:
        if not want:
            return "no reference (its run did not finish)"
        rec = self.recs[j.id]
        ref_dir = Path(self.recs[f"ref-{j.variant + 1}"]["output_dir"])
        parts = []
        for k, rel in ADAPTERS.items():
            a, b = Path(rec["output_dir"]) / rel, ref_dir / rel
            if digest(a) != digest(b):
                parts.append(f"{k}: " + (tensor_diff(a, b) if a.exists() else "missing"))
        return "; ".join(parts)

    # --- evidence for the bugs -------------------------------------------------------------
    def evidence(self) -> None:
        c = self.c
        events = json_lines(c.home / "logs" / "farensed.jsonl")
        errors = Counter((e.get("event"), " ".join(f"{k}={e[k]}" for k in ("phase", "at") if e.get(k)),
                          str(e.get("error") or e.get("reason") or "")[:300])
                         for e in events if e.get("level") in ("error", "critical"))
        warns = Counter(e.get("event") for e in events if e.get("level") == "warning")
        self.line(f"daemon log: {len(events)} events; errors: {sum(errors.values())};"
                  f" warnings: " + (", ".join(f"{k} x{n}" for k, n in sorted(warns.items())) or "none"))
        for (event, where, msg), n in errors.most_common(12):
            self.line(f"  error x{n}: {event}{' (' + where + ')' if where else ''}: {msg}")
        ends = Counter(f"{e.get('outcome')} (exit {e.get('returncode')})" for e in events
                       if e.get("event") == "worker_exited")
        self.line("worker ends: " + ", ".join(f"{k} x{n}" for k, n in ends.most_common()))
        exc: Counter = Counter()
        for j in c.refs + c.jobs:
            rec = self.recs.get(j.id) or {}
            for ln in tracebacks(read_text(Path(rec.get("output_dir") or "/nonexistent") / "worker.log")):
                exc[(j.id, re.sub(r"/tmp/farensed-chaos-\w+", "<home>", ln))] += 1
        self.line(f"worker tracebacks: {sum(exc.values())}")
        for (job_id, ln), n in exc.most_common(8):
            self.line(f"  {job_id} x{n}: {ln}")


def _ts(event: dict) -> float:
    from datetime import datetime
    try:
        return datetime.fromisoformat(str(event.get("timestamp", ""))).timestamp()
    except ValueError:
        return 0.0


def report(c, stop_rc) -> bool:
    return Report(c, stop_rc).run()
