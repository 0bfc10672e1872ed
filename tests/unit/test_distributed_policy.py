"""Data-parallel jobs, the pure parts: the [distributed] section, the split of a step among
ranks, the mlx.launch command, reading the launcher's end, and comparing hosts."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from farensed.core.errors import JobFileError
from farensed.core.exitcodes import EXIT_CRASH, EXIT_OK, EXIT_PEER_LOST, EXIT_STOPPED
from farensed.core.formats import HostfileHost
from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.daemon import launch
from farensed.daemon.policy import classify, launched_exit
from farensed.host.cluster import HostfileError, is_this_machine, rank_hosts, read_hostfile, remote_names
from farensed.host.doctor import host_check
from farensed.host.facts import compare
from farensed.worker.faults import Faults
from farensed.worker.sharding import share, shares

BASE = 'schema_version = 1\nname = "d"\nmodel = "m"\ndata = "d"\n'


def _spec(section: str):
    return parse_job(BASE + "[distributed]\n" + section, "job.toml")


def _problems(section: str) -> str:
    with pytest.raises(JobFileError) as e:
        _spec(section)
    return str(e.value)


def test_the_distributed_section_takes_hosts_or_a_hostfile_and_says_what_is_wrong_with_its_line():
    # Given valid sections: one machine with 2 processes, two IPs, a hostfile
    assert _spec("processes = 2\n").distributed.ranks == 2
    assert _spec('hosts = ["10.0.0.1", "10.0.0.2"]\nprocesses = 2\n').distributed.ranks == 4
    assert _spec('hostfile = "hosts.json"\nbackend = "jaccl"\n').distributed.hostfile == "hosts.json"
    # Then each mistake is named, at the section's line
    both = _problems('hosts = ["10.0.0.1"]\nhostfile = "h.json"\n')
    assert "job.toml:5: distributed: Value error, give hosts or hostfile, not both" in both
    assert "fewer than 2 processes" in _problems("processes = 1\n")
    assert "needs IP addresses" in _problems('hosts = ["mac-a.local", "mac-b.local"]\n')
    assert "jaccl backend needs a hostfile" in _problems('backend = "jaccl"\nprocesses = 2\n')
    assert "list a host once per process" in _problems('hostfile = "h.json"\nprocesses = 2\n')
    assert "distributed.backend" in _problems('backend = "gloo"\nprocesses = 2\n')
    assert "unknown key (did you mean hosts?)" in _problems('host = ["10.0.0.1", "10.0.0.2"]\n')


def test_a_step_is_split_among_ranks_once_each_with_balanced_tokens_and_deterministically():
    rng = np.random.default_rng(0)
    for size in (2, 3, 4):
        for _ in range(50):
            lengths = rng.integers(5, 512, size=int(rng.integers(1, 17)))
            parts = shares(lengths, size)
            # every example exactly once, each share in step order
            assert sorted(np.concatenate(parts).tolist()) == list(range(len(lengths)))
            assert all((np.diff(p) > 0).all() for p in parts)
            # tokens balanced: no rank carries more than the least loaded plus one example
            load = [int(lengths[p].sum()) for p in parts]
            assert max(load) - min(load) <= lengths.max()
            # the same lengths always give the same split
            assert all((a == b).all() for a, b in zip(parts, shares(lengths.copy(), size)))
    step, lengths = np.array([7, 3, 9, 1]), np.array([0, 50, 0, 40, 0, 0, 0, 10, 0, 30])
    assert share(step, lengths, 0, 1) is step
    assert sorted(np.concatenate([share(step, lengths, r, 2) for r in range(2)]).tolist()) == [1, 3, 7, 9]
    assert [len(share(np.array([4]), lengths, r, 3)) for r in range(3)] == [1, 0, 0]  # fewer examples than ranks


def test_the_launcher_exit_is_read_from_the_rank_that_ended_the_job():
    killed = ("\x1b[33m[WARN] Node with rank 1 exited with code -9 \x1b[0m\n"
              "[WARN] Node with rank 0 exited with code 76\n")
    echo_first = "[WARN] Node with rank 0 exited with code 76\n[WARN] Node with rank 1 exited with code 72\n"
    stopped = "[WARN] Node with rank 0 exited with code 75\n[WARN] Node with rank 1 was killed\n"
    # mlx.launch exits 0 whatever its ranks did: the first rank end that is not an echo decides
    assert launched_exit(0, killed, False) == (-signal.SIGKILL, 1)
    assert launched_exit(0, echo_first, False) == (72, 1)
    assert launched_exit(0, stopped, False) == (EXIT_STOPPED, 0)
    assert launched_exit(0, "[WARN] Node with rank 1 exited with code 76\n", False) == (EXIT_PEER_LOST, 1)
    # no rank failed: done only if rank 0 wrote that it is done
    assert launched_exit(0, "", True) == (EXIT_OK, None)
    assert launched_exit(0, "", False) == (EXIT_CRASH, None)
    # the launcher itself killed (stall watchdog, stop grace): its own code
    assert launched_exit(-9, killed, False) == (-9, None)
    # and the daemon classifies that end as it classifies one process's
    assert classify(-signal.SIGKILL, killed).detail == "terminated unexpectedly (SIGKILL)"


def test_the_ranks_are_started_by_mlx_launch_beside_this_python_with_the_worker_and_its_environment(tmp_path):
    spec = _spec("processes = 2\nport = 40000\n")
    env = {"LD_PRELOAD": "/usr/lib/libblas.so.3", "PATH": "/bin", "OPENBLAS_NUM_THREADS": "1"}
    cmd = launch.worker_command("/venv/bin/python", Path("/h/checkpoints/j"), Path("/h"), spec.distributed, None, env)
    assert cmd[:4] == ["/bin/sh", "-c", launch.IGNORE_TERM, "/venv/bin/mlx.launch"]
    args = " ".join(cmd[4:])
    assert "--hosts 127.0.0.1 -n 2 --backend ring --starting-port 40000" in args and "--cwd /h" in args
    assert "--env LD_PRELOAD=/usr/lib/libblas.so.3 --env OPENBLAS_NUM_THREADS=1 --" in args and "PATH=" not in args
    assert cmd[cmd.index("--") + 1:] == ["/venv/bin/python", "-m", "farensed.worker", "/h/checkpoints/j",
                                         "--home", "/h", "--distributed", "ring"]
    assert launch.worker_command("/venv/bin/python", Path("/r"), Path("/h")) == [
        "/venv/bin/python", "-m", "farensed.worker", "/r", "--home", "/h"]
    dist = _spec('backend = "any"\nhostfile = "x"\n').distributed
    any_backend = launch.worker_command("py", Path("/r"), Path("/h"), dist, Path("/h/x"))
    assert "--backend" not in any_backend and "--hostfile" in any_backend
    assert [launch.threads_per_rank(n, 2) for n in (1, 2, 4)] == [2, 1, 1]
    assert launch.threads_per_rank(2, 16) == 8


def test_hostfiles_in_mlx_format_give_one_host_per_rank(tmp_path):
    home = Home(tmp_path)
    (tmp_path / "hosts.json").write_text(json.dumps({"backend": "ring", "hosts": [
        {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "mac-b", "ips": ["10.0.0.2"]}]}))
    (tmp_path / "list.json").write_text(json.dumps([{"ssh": "mac-a"}, {"ssh": "mac-b"}]))
    hosts = rank_hosts(_spec('hostfile = "hosts.json"\n').distributed, home)
    assert [h.ssh for h in hosts] == ["127.0.0.1", "mac-b"] and remote_names(hosts) == ["mac-b"]
    assert [h.ssh for h in read_hostfile(tmp_path / "list.json").hosts] == ["mac-a", "mac-b"]
    assert [h.ssh for h in rank_hosts(_spec("processes = 3\n").distributed, home)] == ["127.0.0.1"] * 3
    (tmp_path / "bad.json").write_text('{"hosts": [{"name": "x"}]}')
    with pytest.raises(HostfileError, match="bad.json: not an mlx hostfile"):
        read_hostfile(tmp_path / "bad.json")
    with pytest.raises(HostfileError, match="nothere.json: cannot read"):
        read_hostfile(tmp_path / "nothere.json")
    assert is_this_machine(HostfileHost(ssh="127.0.0.1"), set())
    assert is_this_machine(HostfileHost(ssh="mac-a", ips=["10.0.0.1"]), {"10.0.0.1"})
    assert not is_this_machine(HostfileHost(ssh="mac-b", ips=["10.0.0.2"]), {"10.0.0.1"})


def test_doctor_says_exactly_what_differs_on_another_host():
    here = {"farensed": "0.1.0 (abc)", "mlx": "0.32.4", "blas": "OpenBLAS", "model": "1f2e (9 files, 4.1 MB)",
            "data": "77aa (2 files, 0.1 MB)", "platform": "Darwin arm64"}
    there = {**here, "mlx": "0.31.0", "data": "missing: /Users/me/farensed/data"}
    assert compare(here, there, "mac-b") == [
        "mlx: 0.32.4 here, 0.31.0 on mac-b",
        "data: 77aa (2 files, 0.1 MB) here, missing: /Users/me/farensed/data on mac-b"]
    assert host_check("mac-b", "1", here, there).level == "fail"
    assert host_check("mac-b", "1", here, dict(here)).level == "ok"
    gone = host_check("mac-c", "2,3", here, "ssh: Could not resolve hostname mac-c")
    assert (gone.name, gone.level) == ("host mac-c (rank 2,3)", "fail") and "Could not resolve" in gone.detail


def test_faults_can_be_aimed_at_one_rank(tmp_path):
    assert Faults(tmp_path, "kill@5:1,oom@3", rank=1).planned == [("kill", 5), ("oom", 3)]
    assert Faults(tmp_path, "kill@5:1,oom@3", rank=0).planned == [("oom", 3)]
