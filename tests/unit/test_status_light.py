"""`farensectl status` with the daemon down reads the spool as plain JSON (no pydantic, issue 23 item 7),
and shows what the models' view shows."""

from __future__ import annotations

import subprocess
import time

from conftest import PY, REPO
from dashboard_support import write_record
from farensed.cli import client
from farensed.cli.status_cmd import overview
from farensed.core import spool_peek
from farensed.core.atomic import atomic_write_json
from farensed.core.formats import LiveProgress, TrainingState
from farensed.core.paths import Home

RUN_STATUS = ("import sys\nfrom farensed.cli.main import main\nsys.argv = ['farensectl', 'status']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'rich', 'farensed'}),"
              " sorted(m for m in sys.modules if m.startswith('farensed.memory') or m == 'farensed.core.formats'))\n")


def spool(home):
    run = home / "checkpoints" / "a"
    run.mkdir(parents=True)
    now = time.time()
    atomic_write_json(run / "training_state.json", TrainingState(status="running", step=4, total_steps=12, epoch=0,
                      micro_batch=2, grad_accumulation=4, effective_batch=8, updated_at=now - 5))
    atomic_write_json(run / "progress.json", LiveProgress(worker_pid=1, step=6, total_steps=12, epoch=0,
                      train_loss=1.234, tokens_per_sec=321.0, micro_batch=2, grad_accumulation=4, eta_seconds=50,
                      updated_at=now))
    write_record(home, "a", state="paused", output=run)
    write_record(home, "b", state="queued")
    write_record(home, "c", state="done", output=home / "checkpoints" / "gone")


def test_status_with_the_daemon_down_imports_no_pydantic(home):
    spool(home)
    cp = subprocess.run([PY, "-c", RUN_STATUS], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "farensed is not running" in cp.stdout and "6/12" in cp.stdout
    assert cp.stdout.splitlines()[-1] == "LOADED ['farensed'] []"


def test_the_light_view_shows_what_the_models_show(home):
    spool(home)
    h = Home.from_option(home)
    light = spool_peek.status(h)
    assert light is not None
    assert overview(light) == overview(client.current_status(h))


def test_a_torn_record_falls_back_to_the_models(home):
    spool(home)
    (home / "spool" / "jobs" / "b.json").write_text('{"id": "b", "sta')
    assert spool_peek.status(Home.from_option(home)) is None
    cp = subprocess.run([PY, "-m", "farensed.cli.main", "status"], capture_output=True, text=True, cwd=REPO,
                        timeout=60)
    assert cp.returncode == 0 and "6/12" in cp.stdout, cp.stderr


def test_status_with_the_daemon_up_imports_no_pydantic_either(home):
    from farensed.core.spool import records
    from farensed.core.spool.lock import InstanceLock
    from farensed.core.status import DaemonInfo, build

    # Given the lock held as the daemon holds it, and the status.json it writes, fresh
    spool(home)
    h = Home.from_option(home)
    lock = InstanceLock(h.lock_file)
    lock.acquire()
    try:
        now = time.time()
        info = DaemonInfo(pid=1, version="0", started_at=now - 9, heartbeat=now, state="idle")
        atomic_write_json(h.status_file, build(records.load_all(home / "spool" / "jobs"), info, None))
        cp = subprocess.run([PY, "-c", RUN_STATUS], capture_output=True, text=True, cwd=REPO, timeout=60)
    finally:
        lock.release()
    assert cp.returncode == 0, cp.stderr
    assert "farensed idle (pid 1" in cp.stdout and "6/12" in cp.stdout
    assert cp.stdout.splitlines()[-1] == "LOADED ['farensed'] []"
