"""Chaos benchmark (issue 9, part 6; a benchmark, not a test).

N short jobs (the tiny demo model on data/, a few dozen steps, a checkpoint every 3) run
through a real `farensed run` in a temp home. Reference runs of the same jobs go first,
undisturbed, through the same daemon. Then, at seeded random moments (a random step of a
running job, or while its worker loads, plus a random delay), it injects:

  kill_worker         SIGKILL of the worker's process group
  kill_daemon         SIGKILL of the daemon alone (its worker lives on); restarted as launchd would
  kill_both           SIGKILL of both; the daemon restarted
  remove_queued       a queued job file removed from spool/queued/ (that job cannot finish)
  corrupt_checkpoint  bytes flipped in the adapters of the newest checkpoint, of a running job
                      (stopped, corrupted, then killed) or of a job paused by a full disk; the
                      worker must fall back to the older checkpoint
  disk_full           the job's output root is a small tmpfs (root only), filled in an instant
                      (worker stopped meanwhile) to leave 1 MiB, less than a checkpoint needs
                      (`nearly`), or, every second time, nothing at all (`full`): the job must
                      pause; the bench then frees the space and runs `farensectl resume`. Not
                      root (or no mount): the worker's `disk_full@N` fault hook instead.

A daemon exit that the bench did not cause is counted, its stderr kept, and the daemon
restarted a second later. Five short-lived exits in a row are a crash loop: if a disk is
full then, it is freed and the daemon restarted once more; otherwise the run stops there.

    .venv/bin/python -m bench.chaos.chaos [--jobs 8] [--seed 0] [--minutes 10] [--keep]
        [--skip remove_queued,disk_full/full] [--no-tmpfs]

Exit status 0 on PASS: no job lost, no uninjected daemon exit, no job left unfinished, and
every job whose faults are all resumable done with final and best adapters bit-identical to
its reference.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos import rig
from bench.chaos.report import _ts, json_lines, report

KINDS = ("kill_worker", "kill_daemon", "kill_both", "remove_queued", "corrupt_checkpoint", "disk_full",
         "hostile_file")
# What hostile_file drops into the spool while a job runs: each must end rejected, jam nothing, run nothing
HOSTILE = {
    "ssh_option_host": '[distributed]\nbackend = "any"\nhosts = ["127.0.0.1", "-oProxyCommand=touch {home}/pwned"]\n',
    "deep_nesting": "x = " + "[" * 6000 + "]" * 6000 + "\n",
    "huge_integer": "priority = " + "9" * 5000 + "\n",
    "another_jobs_folder": 'output = "checkpoints/zz/../{victim}"\n',
    "wrong_type": 'mask_prompt = "yes"\n',
    "fifo": None,  # a FIFO named *.toml
    "newline_host": '[distributed]\nbackend = "any"\nhosts = ["127.0.0.1", "box\\n"]\n',
    "hostfile_env": '[distributed]\nbackend = "ring"\nhostfile = "{home}/hostile-hosts.json"\n',
    "case_folder": 'output = "checkpoints/{victim_upper}"\n',  # the running job's folder, other case
}
# hostfile_env's hostfile: loopback ranks, and an env that would preload code into every rank
HOSTILE_HOSTFILE = {"envs": ["LD_PRELOAD=/tmp/hostile.so"], "hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2}
VARIANTS = 3  # distinct jobs (training seeds); chaos job i is variant i % VARIANTS
CKPT_EVERY = 3
TMPFS_MIB = 80  # a checkpoint needs its tensors plus the worker's 64 MiB margin free
LEAVE = {"nearly": 1 << 20, "full": 0}  # bytes left free by disk_full
DISK_PAUSE_WAIT = 90.0
STALL = 150.0  # nothing changed on disk or in the daemon for this long: give up


@dataclass
class Fault:
    kind: str
    when_job: str  # the running job whose step sets the moment
    target: str  # the job it hits (differs for remove_queued)
    at_step: int
    jitter: float
    mode: str = ""  # corrupt_checkpoint: running|paused; disk_full: nearly|full|hook
    fired_at: float | None = None
    not_before: float = 0.0
    detail: str = ""
    skipped: str = ""
    expect: dict = field(default_factory=dict)  # what the run must show afterwards


@dataclass
class Job:
    id: str
    variant: int
    mount: Path | None = None
    removed: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.id}.toml"


def plan(n: int, steps: int, kinds: list[str], rng: random.Random,
         full_disk: bool = True) -> tuple[list[Job], list[Fault]]:
    """Every requested kind at least once, then more resumable faults: about 1.5 per job."""
    jobs = [Job(f"chaos-{i + 1:02d}", i % VARIANTS) for i in range(n)]
    faults: list[Fault] = []
    pool = jobs
    if "remove_queued" in kinds and n >= 2:  # the last job waits longest in the queue
        pool = jobs[:-1]
        when = rng.choice(pool[: max(1, len(pool) // 2)])
        faults.append(Fault("remove_queued", when.id, jobs[-1].id, rng.randint(1, steps - 2), rng.uniform(0, 0.3)))
    resumable = [k for k in kinds if k != "remove_queued"]
    todo = resumable + [rng.choice(resumable) for _ in range(max(0, (3 * n) // 2 - len(kinds)))] if resumable else []
    for kind in todo:
        job = rng.choice(pool)
        lo = 2 * CKPT_EVERY + 1 if kind in ("corrupt_checkpoint", "disk_full") else 1  # two checkpoints exist
        # a disk fill needs a checkpoint still to come; a daemon killed alone, a worker still running at its restart
        hi = {"disk_full": steps - CKPT_EVERY - 1, "kill_daemon": steps - 6}.get(kind, steps - 1)
        step = _spaced_step(job.id, faults, lo, hi, rng)
        if kind.startswith("kill") and rng.random() < 0.2:
            step = 0  # while the worker is still loading
        mode = {"corrupt_checkpoint": "running", "disk_full": "nearly"}.get(kind, "")
        faults.append(Fault(kind, job.id, job.id, step, rng.uniform(0, 0.3), mode))
    disks = [f for f in faults if f.kind == "disk_full"]
    for f in disks[1::2] if full_disk else []:
        f.mode = "full"  # every second one leaves nothing free at all
    if disks and "corrupt_checkpoint" in kinds:  # the paused variant of the corruption too
        d = disks[0]
        faults.append(Fault("corrupt_checkpoint", d.target, d.target, d.at_step, 0.0, "paused"))
    return jobs, sorted(faults, key=lambda f: (f.when_job, f.at_step))


def _spaced_step(job_id: str, faults: list[Fault], lo: int, hi: int, rng: random.Random) -> int:
    taken = [f.at_step for f in faults if f.when_job == job_id]
    step = rng.randint(lo, hi)
    for _ in range(50):
        if all(abs(step - t) >= 4 for t in taken):
            break
        step = rng.randint(lo, hi)
    return step


class Chaos:
    def __init__(self, args, home: Path, mounts: rig.Mounts):
        self.args, self.home, self.mounts = args, home, mounts
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.minutes * 60 - 50  # the stop and the report fit in the budget
        self.jobs, self.faults = plan(args.jobs, args.steps, args.kinds, self.rng, args.full_disk)
        self.refs = [Job(f"ref-{v + 1}", v) for v in range(min(VARIANTS, args.jobs))]
        # On CUDA two undisturbed runs already differ (~1e-10): each reference runs twice and the chaos
        # jobs are held to the difference the two show (report.identical); on a CPU, bit for bit.
        self.twins = [Job(f"twin-{v + 1}", v) for v in range(len(self.refs))] if args.noise == "measured" else []
        self.hook_step: int | None = None
        self.daemon = rig.Daemon(home, self.say)
        self.recs: dict[str, dict] = {}
        self.workers: dict[int, float] = {}  # pid -> start time of every worker a record named
        self.disk_wait: dict[str, tuple[Fault, float]] = {}
        self.last_change, self.last_sig = time.monotonic(), None
        self.notes: list[str] = []  # harness-side observations for the report
        self.aborted: str | None = None
        self.timings: dict[str, float] = {}

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    # --- set-up --------------------------------------------------------------------------
    def mount_disks(self) -> None:
        """A tmpfs per job with a disk_full fault; the fault hook where that is not possible."""
        targets = [j for j in self.jobs if any(f.target == j.id and f.kind == "disk_full" for f in self.faults)]
        why = "--no-tmpfs" if self.args.no_tmpfs else None
        for job in targets:
            path = self.home / "checkpoints" / f"small-{job.id}"
            why = why or self.mounts.tmpfs(path, TMPFS_MIB)
            if why is None:
                job.mount = path
        if why is not None and targets:
            self.use_hook(targets, why)
        elif targets:
            self.say(f"tmpfs of {TMPFS_MIB} MiB mounted as the output root of {', '.join(j.id for j in targets)}")

    def use_hook(self, targets: list[Job], why: str) -> None:
        self.mounts.unmount_all()
        for job in targets:
            job.mount = None
        self.hook_step = self.rng.randint(2 * CKPT_EVERY, self.args.steps - CKPT_EVERY)
        self.daemon.faults = f"disk_full@{self.hook_step}"
        for f in self.faults:
            if f.kind == "disk_full":
                f.mode, f.at_step = "hook", self.hook_step
        self.say(f"no tmpfs ({why}): disk_full through the worker's fault hook disk_full@{self.hook_step}")

    def job_text(self, job: Job) -> str:
        out = f"checkpoints/small-{job.id}/{job.id}" if job.mount else None
        return rig.job_toml(job.id, self.args.steps, seed=job.variant, output=out)

    # --- the loop ------------------------------------------------------------------------
    def tick(self, injecting: bool) -> None:
        now = time.monotonic()
        rig.reap_orphans(self.daemon.pids)
        self.daemon.check(now)
        self.recs = rig.records(self.home)
        self.note_workers()
        if self.hook_step is not None:
            self.hook_markers()
        self.handle_disk(now)
        if injecting:
            self.fire_due(now)
        self.watch_stall(now)

    def note_workers(self) -> None:
        for rec in self.recs.values():
            if rec.get("worker_pid") and rec.get("worker_started"):
                self.workers[rec["worker_pid"]] = rec["worker_started"]

    def watch_stall(self, now: float) -> None:
        sig = (tuple(sorted((k, r["state"], r.get("restarts"), r.get("worker_pid")) for k, r in self.recs.items())),
               tuple(self.step_of(k) for k in self.recs), len(self.daemon.lives), self.daemon.up)
        if sig != self.last_sig:
            self.last_sig, self.last_change = sig, now
        elif now - self.last_change > STALL:
            self.aborted = f"nothing changed for {STALL:.0f} s"

    def step_of(self, job_id: str) -> int | None:
        rec = self.recs.get(job_id) or {}
        prog = rig.read_json(Path(rec.get("output_dir") or "/nonexistent") / "progress.json") or {}
        return prog.get("step")

    def live_worker(self, job_id: str, loading: bool = False) -> tuple[int, int] | None:
        """(worker pid, step) of this job's live worker, once it has loaded (or while, with `loading`)."""
        rec = self.recs.get(job_id)
        if not rec or rec["state"] != "running" or not rec.get("worker_pid") or not rec.get("output_dir"):
            return None
        pid = rec["worker_pid"]
        prog = rig.read_json(Path(rec["output_dir"]) / "progress.json")
        if not prog or prog.get("worker_pid") != pid or not rig.alive(pid):
            return None
        if prog.get("phase") == "loading" and not loading:
            return None
        return pid, prog["step"]

    def run_until(self, done, injecting: bool, what: str) -> bool:
        """Tick until `done()`; False (and `aborted` set) on the deadline, a crash loop or a stall."""
        while not done():
            self.tick(injecting)
            if self.daemon.crash_loop and self.disk_wait:
                self.free_all_disks()
            if self.daemon.crash_loop:
                self.aborted = "the daemon is crash-looping"
            elif time.monotonic() > self.deadline:
                self.aborted = f"the time budget ran out during {what}"
            if self.aborted:
                self.say(f"giving up: {self.aborted}")
                return False
            time.sleep(0.1)
        return True

    def finished(self, jobs: list[Job]) -> bool:
        return all((self.recs.get(j.id) or {}).get("state") in rig.FINAL for j in jobs) and not self.disk_wait

    # --- faults --------------------------------------------------------------------------
    def fire_due(self, now: float) -> None:
        for f in self.faults:
            if f.fired_at is not None or f.skipped or f.mode == "hook" or f.mode == "paused" or now < f.not_before:
                continue
            w = self.live_worker(f.when_job, loading=f.at_step == 0)
            if w is None or w[1] < f.at_step:
                continue
            time.sleep(f.jitter)
            self.inject(f, *w)
            return  # one fault per tick

    def inject(self, f: Fault, pid: int, step: int) -> None:
        act = getattr(self, f"do_{f.kind}")
        detail = act(f, pid, step)
        if detail is None:  # not possible right now: try again a little later
            f.not_before = time.monotonic() + 0.5
            return
        f.fired_at, f.detail = time.monotonic() - self.t0, detail
        self.say(f"{f.kind}{'/' + f.mode if f.mode else ''} {f.target}: {detail}")

    def do_kill_worker(self, f: Fault, pid: int, step: int) -> str | None:
        return f"worker pid {pid} at step {step}" if rig.signal_group(pid, signal.SIGKILL) else None

    def do_kill_daemon(self, f: Fault, pid: int, step: int) -> str | None:
        dpid = self.daemon.kill(self.rng.uniform(0.2, 2.0))
        return None if dpid is None else f"daemon pid {dpid} (worker pid {pid} at step {step} left running)"

    def do_kill_both(self, f: Fault, pid: int, step: int) -> str | None:
        if not self.daemon.up:
            return None
        dpid = self.daemon.kill(self.rng.uniform(0.2, 2.0))
        rig.signal_group(pid, signal.SIGKILL)
        return f"daemon pid {dpid} and worker pid {pid} at step {step}"

    def do_hostile_file(self, f: Fault, pid: int, step: int) -> str | None:
        """Drop one file of every hostile kind into the spool; the report checks that each ended rejected."""
        names = []
        (self.home / "hostile-hosts.json").write_text(json.dumps(HOSTILE_HOSTFILE))
        fifo = self.home / "spool" / "requests" / f"{time.time_ns()}-1-cancel-{f.target}.json"
        os.mkfifo(fifo)  # a FIFO among the control requests: set aside unread, the daemon never freezes
        f.expect["request_fifos"] = [str(fifo)]
        for kind, extra in sorted(HOSTILE.items()):
            name = f"hostile-{kind}-{len(self.faults)}-{int(time.monotonic() * 1000) % 100000}"
            path = self.home / "spool" / f"{name}.toml"
            if extra is None:
                os.mkfifo(path)
            else:
                folder = self.folder_of(f.target)  # a mount job's folder is nested: name the real one
                extra = extra.format(home=self.home, victim=folder, victim_upper=folder.upper())
                top, _, rest = rig.job_toml(name, 2, seed=0).partition("\n[")
                path.write_text(rig.job_toml(name, 2, seed=0) + extra if extra.startswith("[") else
                                top + "\n" + extra + "\n[" + rest)
            names.append(name)
        f.expect["hostile_files"] = names
        kinds = ", ".join(sorted(HOSTILE))
        return f"dropped {len(names)} hostile files ({kinds}) while {f.when_job} ran at step {step}"

    def folder_of(self, job_id: str) -> str:
        """The job's output folder under checkpoints/, as its record has it (a mount job's is nested)."""
        out = (self.recs.get(job_id) or {}).get("output_dir") or str(self.home / "checkpoints" / job_id)
        try:
            return str(Path(out).resolve().relative_to((self.home / "checkpoints").resolve()))
        except ValueError:
            return job_id

    def do_remove_queued(self, f: Fault, pid: int, step: int) -> str | None:
        queued = [j for j in self.jobs if (self.recs.get(j.id) or {}).get("state") == "queued"
                  and (self.home / "spool" / "queued" / j.file_name).exists()]
        mine = [j for j in queued if j.id == f.target] or [j for j in queued if not self.faults_of(j.id)]
        if not mine:
            return None
        job = mine[0]
        (self.home / "spool" / "queued" / job.file_name).unlink()
        job.removed, f.target = True, job.id
        return f"spool/queued/{job.file_name} removed while {f.when_job} ran at step {step}"

    def do_corrupt_checkpoint(self, f: Fault, pid: int | None, step: int | None) -> str | None:
        run_dir = Path(self.recs[f.target]["output_dir"])
        if pid is not None:
            rig.signal_group(pid, signal.SIGSTOP)  # nothing new is written while we choose and corrupt
        hit = corrupt_newest(run_dir, self.rng)
        if pid is not None:
            rig.signal_group(pid, signal.SIGKILL if hit else signal.SIGCONT)
        if hit is None:
            f.at_step += CKPT_EVERY
            return None
        f.expect = {"invalid": hit[0], "resume_from": hit[1], "after": time.time()}
        how = f"worker pid {pid} stopped at step {step}, corrupted, killed" if pid else "job paused"
        return f"{hit[0]}/adapters.safetensors flipped ({how}); the older {hit[1]} must be used"

    def do_disk_full(self, f: Fault, pid: int, step: int) -> str | None:
        job = next(j for j in self.jobs if j.id == f.target)
        f.expect = {"filled_at": time.time()}
        rig.signal_group(pid, signal.SIGSTOP)  # the disk fills in an instant, as far as the worker can tell
        try:
            written = rig.fill(job.mount, LEAVE[f.mode])
        finally:
            rig.signal_group(pid, signal.SIGCONT)
        self.disk_wait[job.id] = (f, time.monotonic())
        return f"{job.mount.name} filled with {written / 2**20:.1f} MiB at step {step}, {LEAVE[f.mode]} bytes left"

    def faults_of(self, job_id: str) -> list[Fault]:
        return [f for f in self.faults if f.target == job_id or f.when_job == job_id]

    # --- a job paused by a full disk: (corrupt,) free the space, resume ------------------
    def handle_disk(self, now: float) -> None:
        if self.hook_step is not None:
            self.hook_pauses()
        for job_id, (f, since) in list(self.disk_wait.items()):
            rec = self.recs.get(job_id) or {}
            job = next(j for j in self.jobs if j.id == job_id)
            if rec.get("state") == "paused":
                f.expect.update(paused=True, reason=rec.get("reason"))
                self.corrupt_paused(job_id)
                rig.free(job.mount)
                self.resume(job_id, f"{job.mount.name} freed")
            elif rec.get("state") in rig.FINAL or now - since > DISK_PAUSE_WAIT:
                rig.free(job.mount)
                self.no_pause(f, rec)
            else:
                continue
            del self.disk_wait[job_id]

    def no_pause(self, f: Fault, rec: dict) -> None:
        """A fill the job did not pause for: a bug if a checkpoint came after it, else too late."""
        log = json_lines(Path(rec.get("output_dir") or "/nonexistent") / "worker.log")
        saved = [e.get("step") for e in log if e.get("event") == "checkpoint_saved" and _ts(e) > f.expect["filled_at"]]
        if rec.get("state") == "done" and not saved:
            f.fired_at, f.skipped = None, "too late: the job ended without another checkpoint"
            self.say(f"disk_full {f.target}: too late (no checkpoint after the fill); space freed")
            return
        f.expect.update(paused=False, state=rec.get("state"), reason=rec.get("reason"), saved_after=saved)
        self.say(f"disk_full {f.target}: NO pause (job {rec.get('state')}: {rec.get('reason')};"
                 f" checkpoints saved after the fill: {saved}); space freed")

    def free_all_disks(self) -> None:
        """The daemon crash-loops while a disk is full: free it, as its owner would, and restart."""
        for job_id, (f, _) in list(self.disk_wait.items()):
            job = next(j for j in self.jobs if j.id == job_id)
            rig.free(job.mount)
            f.expect.update(paused=False, state="daemon crash loop", reason="the daemon crash-looped while the"
                            " disk was full", saved_after=[])
            del self.disk_wait[job_id]
            self.say(f"{job.mount.name} freed because the daemon crash-loops; daemon restarted")
            self.notes.append(f"the daemon crash-looped while {job.mount.name} was full; freed, restarted")
        self.daemon.revive()

    def hook_pauses(self) -> None:
        for f in self.faults:
            rec = self.recs.get(f.target) or {}
            if f.kind == "disk_full" and f.fired_at is None and rec.get("state") == "paused":
                f.fired_at, f.detail = time.monotonic() - self.t0, f"fault hook disk_full@{self.hook_step}"
                f.expect = {"paused": True, "reason": rec.get("reason")}
                self.say(f"disk_full/hook {f.target}: paused ({rec.get('reason')})")
                self.corrupt_paused(f.target)
                self.resume(f.target, "fault hook spent")

    def hook_spent_without_pause(self, f: Fault) -> None:
        """The job ended: if the hook fired (its marker is there), it should have paused the job."""
        rec = self.recs.get(f.target) or {}
        if (Path(rec.get("output_dir") or "/nonexistent") / f".fault-disk_full-{self.hook_step}").exists():
            f.fired_at, f.detail = time.monotonic() - self.t0, f"fault hook disk_full@{self.hook_step}"
            f.expect = {"paused": False, "state": rec.get("state"), "reason": rec.get("reason"), "saved_after": "?"}

    def hook_markers(self) -> None:
        """The hook is set for every worker: mark it spent in the folders of jobs it must spare."""
        hit = {f.target for f in self.faults if f.kind == "disk_full"}
        for job_id, rec in self.recs.items():
            out = Path(rec.get("output_dir") or "/nonexistent")
            marker = out / f".fault-disk_full-{self.hook_step}"
            if job_id not in hit and out.is_dir() and not marker.exists():
                marker.touch()

    def corrupt_paused(self, job_id: str) -> None:
        for f in self.faults:
            if f.kind == "corrupt_checkpoint" and f.mode == "paused" and f.target == job_id and f.fired_at is None:
                f.detail = self.do_corrupt_checkpoint(f, None, None) or ""
                f.fired_at = time.monotonic() - self.t0
                self.say(f"corrupt_checkpoint/paused {job_id}: {f.detail or 'fewer than two checkpoints'}")
                if not f.detail:
                    f.fired_at, f.skipped = None, "fewer than two checkpoints while paused"

    def resume(self, job_id: str, why: str) -> None:
        cp = rig.ctl(self.home, "resume", job_id)
        out = (cp.stdout + cp.stderr).strip().splitlines()
        self.say(f"{why}; farensectl resume {job_id}: exit {cp.returncode}: {out[-1] if out else ''}")
        if cp.returncode != 0:
            self.notes.append(f"farensectl resume {job_id} exited {cp.returncode}: {out[-1] if out else ''}")

    # --- phases --------------------------------------------------------------------------
    def start(self) -> bool:
        self.mount_disks()
        self.daemon.start()
        ok = self.run_until(lambda: (self.home / "status.json").exists(), False, "the daemon's start")
        self.say(f"daemon started (pid {self.daemon.pid}), home {self.home}")
        return ok

    def references(self) -> bool:
        t = time.monotonic()
        for job in self.refs + self.twins:
            rig.drop(self.home, job.file_name, rig.job_toml(job.id, self.args.steps, seed=job.variant))
        ok = self.run_until(lambda: self.finished(self.refs + self.twins), False, "the reference runs")
        self.timings["references"] = time.monotonic() - t
        self.say(f"{len(self.refs)} reference runs ended in {self.timings['references']:.1f} s: "
                 + ", ".join(f"{j.id} {(self.recs.get(j.id) or {}).get('state')}" for j in self.refs))
        return ok

    def chaos(self) -> None:
        t = time.monotonic()
        for job in self.jobs:
            rig.drop(self.home, job.file_name, self.job_text(job))
        self.say(f"{len(self.jobs)} jobs dropped; {len(self.faults)} faults planned")
        self.run_until(lambda: self.finished(self.jobs) and self.all_fired(), True, "the chaos runs")
        if not self.finished(self.jobs) and not self.aborted:  # the faults are spent or cannot be: let the jobs end
            self.run_until(lambda: self.finished(self.jobs), False, "the last jobs")
        self.timings["chaos"] = time.monotonic() - t

    def all_fired(self) -> bool:
        for f in self.faults:
            if f.mode == "hook" and f.fired_at is None and self.finished([j for j in self.jobs if j.id == f.target]):
                self.hook_spent_without_pause(f)
            if f.fired_at is None and not f.skipped and self.finished([j for j in self.jobs if j.id == f.when_job]):
                f.skipped = (f"{f.target} was never paused by a full disk" if f.mode in ("paused", "hook") else
                             f"{f.when_job} ended before a live worker reached step {f.at_step}")
        return all(f.fired_at is not None or f.skipped for f in self.faults)

    def stop(self) -> int | None:
        if self.daemon.proc is None:
            return None
        rc = self.daemon.stop()
        self.say(f"daemon stopped with SIGTERM: exit {rc}")
        return rc


def corrupt_newest(run_dir: Path, rng: random.Random) -> tuple[str, str] | None:
    """Flip 16 bytes in the tensor data of the newest checkpoint's adapters (same size, wrong
    checksum); (its name, the next older one's name), or None with fewer than two."""
    ckpts = sorted((p for p in run_dir.glob("checkpoint_epoch*_step*") if p.is_dir()),
                   key=lambda p: int(p.name.rsplit("step", 1)[1]), reverse=True)
    if len(ckpts) < 2:
        return None
    path = ckpts[0] / "adapters.safetensors"
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # past the safetensors header
    at = rng.randrange(start, len(data) - 16)
    data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])
    with open(path, "r+b") as f:  # in place, as bit rot would
        f.write(data)
    return ckpts[0].name, ckpts[1].name


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=8, help="chaos jobs (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=10.0, help="time budget for the whole run")
    ap.add_argument("--steps", type=int, default=36, help="optimizer steps per job")
    ap.add_argument("--faults", default=",".join(KINDS), help="kinds to inject (comma-separated)")
    ap.add_argument("--skip", default="", help="kinds not to inject (comma-separated); disk_full/full: every"
                    " disk_full leaves a little space free, none leaves nothing")
    ap.add_argument("--no-tmpfs", action="store_true", help="disk_full through the fault hook even as root")
    ap.add_argument("--keep", action="store_true", help="keep the temp home")
    ap.add_argument("--noise", choices=("auto", "exact", "measured"), default="auto",
                    help="exact: resumed jobs must be bit-identical to their reference (a CPU's promise);"
                         " measured: each reference runs twice and resumed jobs must be as close to it as the"
                         " two are to each other (CUDA, where MLX is not bit-reproducible); auto: measured"
                         " when MLX's default device is a GPU")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    args.full_disk = "disk_full/full" not in skip
    args.kinds = [k for k in args.faults.split(",") if k and k not in skip]
    if bad := [k for k in args.kinds if k not in KINDS]:
        ap.error(f"unknown fault kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}")
    if args.noise == "auto":
        args.noise = "measured" if rig.worker_device() == "gpu" else "exact"
    if args.jobs < 1 or args.steps < 3 * CKPT_EVERY + 2:
        ap.error(f"--jobs must be >= 1 and --steps >= {3 * CKPT_EVERY + 2}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rig.become_subreaper()
    home, mounts = rig.make_home(), rig.Mounts()
    c = Chaos(args, home, mounts)
    cleaned = []

    def clean_up() -> None:
        if cleaned:
            return
        cleaned.append(True)
        rig.kill_everything(c.workers)
        for problem in mounts.unmount_all(keep=args.keep):
            print(f"warning: {problem}")
        if not args.keep and (problem := rig.remove_home(home, mounts)):
            print(f"warning: {problem}")

    atexit.register(clean_up)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    print(f"chaos: {args.jobs} jobs of {args.steps} steps, seed {args.seed}, faults {','.join(args.kinds)},"
          f" budget {args.minutes:g} min", flush=True)
    interrupted = True
    try:
        try:
            if c.start() and c.references():
                c.chaos()
        except Exception as e:  # noqa: BLE001 - a bug of the bench itself: still stop, report, clean up
            traceback.print_exc()
            c.aborted = f"bench error: {type(e).__name__}: {e}"
        stop_rc = c.stop()
        ok = report(c, stop_rc)
        interrupted = False
    finally:
        if interrupted:
            print("interrupted: stopping every process started, unmounting, removing the home", flush=True)
        clean_up()
    if args.keep:
        print(f"home kept: {home}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
