"""farensectl doctor: real checks of this machine, ok / warn / fail with a fix, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from farensed.core.paths import REPO_ROOT


def doctor(home, *args, **env):
    e = dict(os.environ, HOME=str(home), **env)
    return subprocess.run([sys.executable, "-m", "farensed.cli.main", "doctor", "--home", str(home), *args],
                          capture_output=True, text=True, env=e)


def _checks(proc) -> dict:
    return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


def test_doctor_reports_mlx_device_memory_disk_and_demo_as_json(tmp_path):
    # Given a home with the demo model and data linked in and a private spool
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "farense-tiny").symlink_to(REPO_ROOT / "models" / "farense-tiny")
    (tmp_path / "data").symlink_to(REPO_ROOT / "data")
    (tmp_path / "spool").mkdir(mode=0o755)
    # When doctor runs
    proc = doctor(tmp_path, "--json")
    # Then every check is there with a level, MLX answered from a worker subprocess, and nothing failed
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = _checks(proc)
    assert {"python", "mlx", "device", "memory", "disk", "spool", "service", "demo"} <= set(checks)
    assert checks["mlx"]["detail"].startswith("mlx 0.") and checks["demo"]["level"] == "ok"
    assert "CPU" in checks["device"]["detail"] and checks["device"]["level"] == "warn"  # no GPU on Linux
    assert checks["service"]["fix"] == "farensectl install"
    assert json.loads(proc.stdout)["ok"] is True


def test_a_spool_other_users_can_write_fails_with_the_fix(tmp_path):
    # Given a world-writable spool
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(0o777)
    # When doctor runs, Then it fails, naming the folder and the chmod that fixes it
    proc = doctor(tmp_path)
    assert proc.returncode == 1
    assert f"FAIL  spool    {spool}: writable by other users" in proc.stdout
    assert f"fix: chmod go-w {spool}" in proc.stdout


def test_a_missing_demo_model_and_the_slow_blas_are_warnings_with_fixes(tmp_path):
    proc = doctor(tmp_path, "--json", FARENSED_NO_BLAS_PRELOAD="1")
    checks = _checks(proc)
    assert checks["demo"]["level"] == "warn" and "demo.model --if-missing" in checks["demo"]["fix"]
    if sys.platform.startswith("linux"):
        assert checks["blas"]["level"] == "warn" and "libopenblas0-pthread" in checks["blas"]["fix"]


def test_doctor_job_compares_every_host_with_this_one_and_names_the_one_that_is_gone(tmp_path):
    # Given a home with the demo model and data, and a job over this machine and a host that does not exist
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "farense-tiny").symlink_to(REPO_ROOT / "models" / "farense-tiny")
    (tmp_path / "data").symlink_to(REPO_ROOT / "data")
    hosts = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "farensed-gone.invalid", "ips": ["127.0.0.1"]}]
    (tmp_path / "hosts.json").write_text(json.dumps({"hosts": hosts}))
    job = tmp_path / "job.toml"
    job.write_text('schema_version = 1\nname = "d"\nmodel = "models/farense-tiny"\ndata = "data"\n'
                   '[distributed]\nhostfile = "hosts.json"\n')
    # When doctor checks the job's hosts
    proc = doctor(tmp_path, "--json", "--job", str(job))
    # Then this machine, probed as 127.0.0.1 through the same command as a remote host, matches itself;
    # the missing host fails with ssh's own words; and doctor exits 1
    checks = _checks(proc)
    assert checks["launch"]["level"] == "ok"
    here = checks["host 127.0.0.1 (rank 0)"]
    assert here["level"] == "ok" and here["detail"].startswith("same farensed, mlx, BLAS, model and data")
    gone = checks["host farensed-gone.invalid (rank 1)"]
    assert gone["level"] == "fail" and gone["detail"].startswith("does not answer:") and "ssh" in gone["fix"]
    assert proc.returncode == 1 and json.loads(proc.stdout)["ok"] is False


def test_the_demo_fix_is_one_absolute_command_that_works_from_any_folder(tmp_path):
    # Given a home without the demo model or data, and a folder outside the repository
    home, elsewhere = tmp_path / "bare", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    fix = _checks(doctor(home, "--json"))["demo"]["fix"]
    assert all(cmd.split()[0] in ("mkdir", "cp") or cmd.startswith("/") for cmd in fix.split(" && ")), fix
    # When the fix is run as printed, from that folder
    cp = subprocess.run(fix, shell=True, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    # Then it worked, and doctor says the demo is ready
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert _checks(doctor(home, "--json"))["demo"]["level"] == "ok"
