"""Holes an adversarial review found open after the hostile-spool round, each with a real daemon, real
files and real processes: a host name with a trailing newline and unchecked hostfile envs, a FIFO among
the control requests, job files edited after intake or before a retry, parallel submits racing the
daemon's claim, outputs differing only in case, and data that leaves no target token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import FARENSECTL, PY, REPO, ctl, record, small_job, wait_for
from farensed.core.formats import JOB_FILE
from farensed.core.paths import Home
from farensed.core.spool.records import unique_id
from farensed.host.cluster import HostfileError


def state_of(home, job_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    return wait_for(lambda: (r := record(home, job_id)) and r["state"] in states and r, timeout,
                    what=f"{job_id} in {states}")


def with_top(text: str, extra: str) -> str:
    """The job with top-level keys added after its name (before any table)."""
    return text.replace('\nname = ', f"\n{extra}\nname = ", 1)


def test_host_names_with_a_trailing_newline_and_unsafe_hostfile_envs_are_refused(home, tmp_path):
    # Given a job whose second host ends in a newline, and hostfiles whose envs would preload code or
    # hold shell syntax
    newline = tmp_path / "newline.toml"
    newline.write_text(small_job(2) + '[distributed]\nbackend = "any"\nhosts = ["127.0.0.1", "box\\n"]\n')
    jobs = {"newline": (newline, "distributed.hosts")}
    loop = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2
    in_file = tmp_path / "in-file.json"
    in_file.write_text(json.dumps([loop[0], {"ssh": "box\n", "ips": ["10.9.9.9"]}]))
    (tmp_path / "in-file.toml").write_text(small_job(2) + f'[distributed]\nbackend = "ring"\nhostfile = "{in_file}"\n')
    jobs["in-file"] = (tmp_path / "in-file.toml", "hosts.1.ssh")
    for name, envs in {"preload": ["LD_PRELOAD=/tmp/evil.so"], "shell": ["MLX_X=$(touch /tmp/p)"],
                       "bare": ["MLX_X"], "lower": ["mlx_x=1"]}.items():
        hf = tmp_path / f"{name}.json"
        hf.write_text(json.dumps({"envs": envs, "hosts": loop}))
        job = tmp_path / f"{name}.toml"
        job.write_text(small_job(2) + f'[distributed]\nbackend = "ring"\nhostfile = "{hf}"\n')
        jobs[name] = (job, "envs.0")
    # When validate checks each
    for name, (job, where) in jobs.items():
        cp = ctl("validate", str(job), check=False)
        # Then each is refused, naming what is wrong, without a traceback
        assert cp.returncode == 1, (name, cp.stdout, cp.stderr)
        assert where in cp.stderr and "Traceback" not in cp.stderr, (name, cp.stderr)


def test_host_names_for_the_any_backend_are_checked_not_crashed_on(home, tmp_path):
    # Given a job listing host names (not IPs) for mlx.launch's own choice of backend
    job = tmp_path / "names.toml"
    job.write_text(small_job(2) + '[distributed]\nbackend = "any"\nhosts = ["127.0.0.1", "box"]\n')
    # When validate checks it
    cp = ctl("validate", str(job), check=False)
    # Then it is judged (not "could not be checked": a name is no IP, and needs none for this backend)
    assert cp.returncode == 0 and "distributed: 2 ranks" in cp.stdout, cp.stderr


def test_mlx_launch_reads_the_checked_copy_of_the_hostfile(home, tmp_path):
    from farensed.daemon.launch import CHECKED_HOSTFILE, plan  # here: main before the fix has no copy to name

    # Given a run folder of a data-parallel job whose hostfile has an allowed env
    hf = tmp_path / "hosts.json"
    loop = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2
    hf.write_text(json.dumps({"envs": ["MLX_METAL_FAST_SYNCH=1"], "hosts": loop}))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / JOB_FILE).write_text(small_job(2) + f'[distributed]\nbackend = "ring"\nhostfile = "{hf}"\n')
    # When the daemon plans the launch, and the job's hostfile is changed afterwards
    p = plan(run_dir, Home(home), PY)
    hf.write_text(json.dumps({"envs": ["LD_PRELOAD=/tmp/evil.so"], "hosts": loop}))
    # Then mlx.launch is given the run folder's checked copy, which holds what was checked
    copy = run_dir / CHECKED_HOSTFILE
    assert p.command[p.command.index("--hostfile") + 1] == str(copy)
    assert json.loads(copy.read_text())["envs"] == ["MLX_METAL_FAST_SYNCH=1"]
    # And planning again refuses the changed file
    try:
        plan(run_dir, Home(home), PY)
        raise AssertionError("a hostfile with LD_PRELOAD was planned")
    except HostfileError as e:
        assert "envs.0" in str(e) and "LD_PRELOAD" in str(e)


def test_a_data_parallel_job_runs_from_the_checked_copy_of_its_hostfile(home):
    # Given a two-rank job on this machine whose hostfile sets an allowed env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2
    (home / "hosts.json").write_text(json.dumps({"envs": ["MLX_FARENSED_PROBE=1"], "hosts": loop}))
    (home / "spool").mkdir()
    (home / "spool" / "pair.toml").write_text(
        small_job(2, "pair") + f'[distributed]\nbackend = "ring"\nhostfile = "hosts.json"\nport = {port}\n')
    # When the daemon runs it through mlx.launch
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
    # Then it ends done, with the checked copy (what mlx.launch read) in the run folder
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert record(home, "pair")["state"] == "done", record(home, "pair")
    copy = home / "checkpoints" / "pair" / "hostfile.json"
    assert json.loads(copy.read_text())["envs"] == ["MLX_FARENSED_PROBE=1"]
    started = [json.loads(x) for x in (home / "logs" / "farensed.jsonl").read_text().splitlines()]
    assert any(e["event"] == "worker_started" for e in started)


def test_a_fifo_among_the_requests_leaves_the_daemon_responsive(home, daemon):
    # Given a FIFO named like a control request, waiting in spool/requests/
    requests = home / "spool" / "requests"
    requests.mkdir(parents=True)
    fifo = requests / f"{time.time_ns()}-1-cancel-good.json"
    os.mkfifo(fifo)
    # When the daemon starts and a job is dropped after it
    d = daemon()
    (home / "spool" / "good.toml").write_text(small_job(2, "good"))
    # Then the FIFO is set aside unread and the job runs to done; the daemon still answers
    state_of(home, "good", ("done",), 120)
    assert not os.path.lexists(fifo)
    assert d.poll() is None
    assert "good" in ctl("status").stdout
    assert json.loads((home / "status.json").read_text())["daemon"]["state"] in ("idle", "running")


def test_job_files_edited_after_intake_or_before_a_retry_are_checked_again(home, daemon):
    # Given a long job running and a second one queued behind it
    d = daemon()
    spool = home / "spool"
    (spool / "blocker.toml").write_text(small_job(5000, "blocker"))
    state_of(home, "blocker", ("running",), 60)
    (spool / "edited.toml").write_text(small_job(2, "edited"))
    state_of(home, "edited", ("queued",), 60)
    # When the queued file is edited to ask for remote code, and the running job is cancelled
    queued = spool / "queued" / "edited.toml"
    queued.write_text(with_top(queued.read_text(), "trust_remote_code = true"))
    ctl("cancel", "blocker")
    # Then the edited job fails at its start with the reason, and no worker ran for it
    rec = state_of(home, "edited", ("failed", "done"), 120)
    assert rec["state"] == "failed" and "no longer passes the checks" in rec["reason"], rec
    assert "trust_remote_code" in rec["reason"]
    assert not (home / "checkpoints" / "edited").exists()  # nothing copied: fixed and retried, it runs
    # When the cancelled job's run-folder copy is edited the same way and retried
    state_of(home, "blocker", ("cancelled",), 120)
    run_job = home / "checkpoints" / "blocker" / JOB_FILE
    run_job.write_text(with_top(run_job.read_text(), "trust_remote_code = true"))
    log_size = (home / "checkpoints" / "blocker" / "worker.log").stat().st_size
    ctl("retry", "blocker")
    # Then it fails again at its start, before any worker runs it
    rec = wait_for(lambda: (r := record(home, "blocker")) and r["state"] in ("failed", "done", "running")
                   and "retry requested" not in (r["reason"] or "") and r, 120, what="blocker after retry")
    assert rec["state"] == "failed" and "trust_remote_code" in rec["reason"], rec
    assert (home / "checkpoints" / "blocker" / "worker.log").stat().st_size == log_size
    assert d.poll() is None


def test_parallel_submits_while_the_daemon_claims_each_print_their_own_jobs_id(home, tmp_path, daemon):
    # Given a running daemon claiming dropped files as they settle
    job = tmp_path / "same.toml"
    job.write_text(small_job(2))
    d = daemon()
    # When rounds of parallel submits of one file run while it claims the earlier ones
    def submit(_):
        return subprocess.run([FARENSECTL, "submit", str(job)], capture_output=True, text=True, timeout=240)

    runs = []
    with ThreadPoolExecutor(8) as pool:
        for _ in range(4):
            runs += list(pool.map(submit, range(8)))
    # Then every submit exited 0 with an id no other printed, and that id is the job made from its file
    assert [cp.returncode for cp in runs] == [0] * len(runs), [cp.stderr for cp in runs if cp.returncode]
    ids = [cp.stdout.strip().splitlines()[-1] for cp in runs]
    assert len(set(ids)) == len(ids), sorted(ids)
    for job_id in ids:
        rec = wait_for(lambda j=job_id: record(home, j), 120, what=f"{job_id} recorded")
        assert rec["file_name"] == f"{job_id}.toml", rec
    assert d.poll() is None


def test_outputs_and_ids_differing_only_in_case_are_the_same_folder(home, daemon):
    # Given a finished job "victim"
    (home / "spool").mkdir()
    (home / "spool" / "victim.toml").write_text(small_job(2, "victim"))
    d = daemon()
    state_of(home, "victim", ("done",), 120)
    # When a job names its folder in other letters' case, and a file named Victim.toml is dropped
    probe = home / "probe.toml"
    probe.write_text(with_top(small_job(2), 'output = "checkpoints/VICTIM"'))
    cp = ctl("validate", str(probe), check=False)
    (home / "spool" / "Victim.toml").write_text(small_job(2, "other"))
    # Then validate refuses the output, and the new file gets an id (and folder) of its own
    assert cp.returncode == 1 and "already the output folder of job victim" in cp.stderr, cp.stderr
    rec = state_of(home, "Victim-2", ("queued", "running", "done"), 60)
    assert rec["output_dir"].endswith("Victim-2")
    assert unique_id("JOB", {"job"}) == "JOB-2"
    assert d.poll() is None


def test_data_without_target_tokens_is_refused_and_never_ends_done(home, daemon):
    # Given a job whose every example is cut, at max_seq_length 8, before its reply begins
    text = small_job(2, "empty").replace("[training]\n", "[training]\nmax_seq_length = 8\n")
    job = home / "empty.toml"
    job.write_text(text)
    # When validate checks it
    cp = ctl("validate", str(job), check=False)
    # Then it is refused, naming the training file
    assert cp.returncode == 1 and f"{REPO / 'data' / 'train.jsonl'}: the training examples hold no target tokens" \
        in cp.stderr, cp.stderr
    # And when it reaches the worker anyway (submit does not tokenize), it fails with the data-error code
    ctl("submit", str(job))
    daemon()
    rec = state_of(home, "empty", ("done", "failed"), 180)
    assert rec["state"] == "failed" and rec["exit_code"] == 65, rec
    assert "no target tokens" in rec["reason"], rec
