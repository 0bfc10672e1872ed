"""The spool's promises under hostile input, with a real daemon and real files: nothing from a job file
runs, no file jams the intake, special files neither freeze nor exhaust it, the checks cannot be
bypassed, parallel submits are not lost, and no job writes into another job's folder."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import FARENSECTL, PY, REPO, ctl, record, small_job, wait_for


def rejected_reason(home: Path, job_id: str) -> str:
    rec = wait_for(lambda: (r := record(home, job_id)) and r["state"] == "rejected" and r, 60,
                   what=f"{job_id} rejected")
    assert (home / "spool" / "rejected" / f"{job_id}.toml").exists() or os.path.lexists(
        home / "spool" / "rejected" / f"{job_id}.toml")
    return rec["reason"]


def drop(home: Path, name: str, text: str) -> Path:
    spool = home / "spool"
    spool.mkdir(exist_ok=True)
    path = spool / name
    path.write_text(text)
    return path


def test_a_host_that_is_an_ssh_option_never_runs_a_command(home, tmp_path, daemon):
    # Given jobs whose host names are ssh options that would run a command
    pwned = tmp_path / "pwned"
    option = f"-oProxyCommand=touch {pwned}"
    hostfile = tmp_path / "hosts.json"
    hosts = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": option, "ips": ["10.9.9.9"]}]
    hostfile.write_text(json.dumps(hosts))
    by_hosts = drop(home, "by-hosts.toml",
                    small_job(2) + f'[distributed]\nbackend = "any"\nhosts = ["127.0.0.1", "{option}"]\n')
    drop(home, "by-file.toml", small_job(2) + f'[distributed]\nbackend = "ring"\nhostfile = "{hostfile}"\n')
    # When validate looks at one and the daemon takes both
    cp = ctl("validate", str(by_hosts), check=False)
    assert cp.returncode == 1 and "distributed.hosts" in cp.stderr and "Traceback" not in cp.stderr
    daemon()
    # Then both are rejected naming the host, and nothing ran
    assert "not an IP address or a host name" in rejected_reason(home, "by-hosts")
    assert "not an IP address or a host name" in rejected_reason(home, "by-file")
    assert not pwned.exists()


def test_no_file_jams_the_intake_whatever_its_check_raises(home, tmp_path, daemon):
    # Given files whose checks raise something other than farensed's own errors
    deep_data = tmp_path / "deep.jsonl"
    deep_data.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    hostile = {
        "digits.toml": small_job(2).replace("max_steps = 2", "max_steps = " + "9" * 5000),
        "nested.toml": small_job(2) + "x = " + "[" * 6000 + "]" * 6000 + "\n",
        "tables.toml": small_job(2) + "y = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "nul.toml": small_job(2).replace('name = "test"', 'name = "test"\noutput = "checkpoints/a\\u0000b"'),
        "deepdata.toml": small_job(2).replace(f'data = "{REPO / "data"}"', f'data = "{deep_data}"'),
    }
    for name, text in hostile.items():
        drop(home, name, text)
    d = daemon()
    # Then every one ends in rejected/ with its reason, and a good job dropped after them runs
    for name in hostile:
        assert rejected_reason(home, Path(name).stem)
    drop(home, "good.toml", small_job(2, "good"))
    wait_for(lambda: (record(home, "good") or {}).get("state") == "done", 120, what="good done")
    assert d.poll() is None


def test_special_files_neither_freeze_nor_exhaust_the_daemon(home, tmp_path, daemon):
    # Given a hostfile that is a FIFO, a job file that is a FIFO, and one linked to the zero device
    fifo = tmp_path / "hosts.fifo"
    os.mkfifo(fifo)
    spool = home / "spool"
    spool.mkdir()
    drop(home, "fifohosts.toml", small_job(2) + f'[distributed]\nbackend = "ring"\nhostfile = "{fifo}"\n')
    os.mkfifo(spool / "pipe.toml")
    job_fifo = tmp_path / "job.toml"
    os.mkfifo(job_fifo)
    # When validate and submit are given the FIFO, and the daemon finds the rest in its spool
    for verb in ("validate", "submit"):
        cp = subprocess.run([FARENSECTL, verb, str(job_fifo)], capture_output=True, text=True, timeout=30)
        assert cp.returncode != 0 and "FIFO" in cp.stderr and "Traceback" not in cp.stderr, cp.stderr
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    cp = subprocess.run([FARENSECTL, "validate", str(zero)], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 1 and "character device" in cp.stderr
    d = daemon()
    # Then each is rejected with a reason within seconds, and the daemon keeps its heartbeat
    assert "FIFO" in rejected_reason(home, "fifohosts")
    assert "FIFO" in rejected_reason(home, "pipe")
    assert json.loads((home / "status.json").read_text())["daemon"]["state"] in ("idle", "running")
    assert d.poll() is None


def test_a_job_file_put_straight_into_queued_passes_the_same_checks(home, tmp_path):
    # Given job files written into spool/queued/ by hand while the daemon is down: one writing outside
    # checkpoints/, one asking for remote code, and a good one
    queued = home / "spool" / "queued"
    queued.mkdir(parents=True)
    named = lambda extra: small_job(2).replace('name = "test"', f'name = "test"\n{extra}')  # noqa: E731
    (queued / "outside.toml").write_text(named(f'output = "{tmp_path}/x"'))
    (queued / "remote.toml").write_text(named("trust_remote_code = true"))
    (queued / "fine.toml").write_text(small_job(2, "fine"))
    # When the daemon starts and processes the queue
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr[-2000:]
    # Then the two bad ones are rejected with the reason and never ran; the good one ran
    for job_id, why in (("outside", "outside the checkpoints root"), ("remote", "trust_remote_code")):
        rec = record(home, job_id)
        assert rec["state"] == "rejected" and why in rec["reason"], rec
        assert not (tmp_path / "x").exists() and not (home / "checkpoints" / job_id).exists()
    assert record(home, "fine")["state"] == "done"


def test_twenty_parallel_submits_of_one_file_are_twenty_jobs(home, tmp_path):
    # Given one job file
    job = tmp_path / "same.toml"
    job.write_text(small_job(2))
    # When 20 submits of it run at once
    def submit(_):
        return subprocess.run([FARENSECTL, "submit", str(job)], capture_output=True, text=True, timeout=240)

    with ThreadPoolExecutor(20) as pool:
        runs = list(pool.map(submit, range(20)))
    # Then every one exited 0 with its own id, and each id is a file in the spool
    assert [cp.returncode for cp in runs] == [0] * 20, [cp.stderr for cp in runs if cp.returncode]
    ids = [cp.stdout.strip().splitlines()[-1] for cp in runs]
    assert len(set(ids)) == 20
    assert sorted(p.stem for p in (home / "spool").glob("*.toml")) == sorted(ids)


def test_a_job_never_writes_into_another_jobs_folder(home, daemon):
    # Given a finished victim job
    drop(home, "victim.toml", small_job(2, "victim"))
    d = daemon()
    wait_for(lambda: (record(home, "victim") or {}).get("state") == "done", 120, what="victim done")
    before = sorted(p.name for p in (home / "checkpoints" / "victim").iterdir())
    # When jobs name its folder through "..", the checkpoints root itself, or a folder inside it
    tricks = {"dotdot": "checkpoints/zz/../victim", "root": "checkpoints", "inside": "checkpoints/victim/sub"}
    for job_id, out in tricks.items():
        drop(home, f"{job_id}.toml", small_job(2).replace('name = "test"', f'name = "test"\noutput = "{out}"'))
    # Then each is rejected with the reason, and the victim's folder is untouched
    assert "already the output folder of job victim" in rejected_reason(home, "dotdot")
    assert "checkpoints root itself" in rejected_reason(home, "root")
    assert "inside or around the output folder of job victim" in rejected_reason(home, "inside")
    assert sorted(p.name for p in (home / "checkpoints" / "victim").iterdir()) == before
    # And validate says the same before anything is submitted
    probe = home / "probe.toml"
    probe.write_text(small_job(2).replace('name = "test"', 'name = "test"\noutput = "checkpoints/zz/../victim"'))
    cp = ctl("validate", str(probe), check=False)
    assert cp.returncode == 1 and "already the output folder of job victim" in cp.stderr
    assert d.poll() is None


def test_validate_reads_a_huge_single_line_data_file_quickly_and_names_the_line(home, tmp_path):
    # Given data whose second line is 50 MB and whose third is not UTF-8
    data = tmp_path / "big.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    with open(data, "wb") as f:
        f.write(good.encode() + b"\n" + b'{"text": "' + b"x" * 50_000_000 + b'"}\n' + b"\xff\n" + good.encode() + b"\n")
    job = tmp_path / "big.toml"
    job.write_text(small_job(2).replace(f'data = "{REPO / "data"}"', f'data = "{data}"'))
    # When validate checks it (under a memory cap far below what parsing the line whole would take)
    cp = subprocess.run(["bash", "-c", f"ulimit -v 6000000; exec {FARENSECTL} validate {job}"],
                        capture_output=True, text=True, timeout=120)
    # Then it names the two lines and exits 1, no traceback
    assert cp.returncode == 1, cp.stderr
    assert f"{data}:2: line is 50,000,013 bytes" in cp.stderr and f"{data}:3: not UTF-8 text" in cp.stderr
    assert "Traceback" not in cp.stderr
