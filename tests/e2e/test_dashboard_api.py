"""The dashboard's HTTP API with a real HTTP client (httpx) against a real `farensectl dashboard`
process: what it shows of a real run, ETags, and what it refuses (no token, another origin, another
host, read-only, beyond loopback without the token)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess

import httpx
import pytest

from conftest import FARENSECTL, small_job
from dashboard_support import Dashboard, write_record
from farensed.core.spool.requests import Request
from worker_support import make_run, run_worker

SCRIPT_NAME = "<script>alert('x')</script> & co"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One real run of the tiny model (8 steps, 3 held-out questions scored), made once for the module."""
    root = tmp_path_factory.mktemp("run")
    run = make_run(root, "real", small_job(steps=8, evaluate={"examples": 3},
                                           generate={"prompts": ["Quem fundou o Farense?"], "max_tokens": 8}))
    assert run_worker(run) == 0
    return run


@pytest.fixture
def dashboard(home):
    started = []

    def start(*args: str) -> Dashboard:
        started.append(Dashboard(home, *args))
        return started[-1]
    yield start
    for d in started:
        d.stop()


def copy_run(finished_run, home, job_id: str):
    dst = home / "checkpoints" / job_id
    shutil.copytree(finished_run, dst)
    return dst


def same_origin(d: Dashboard) -> dict:
    return {"X-Farensed-Token": d.token, "Origin": d.base, "Content-Type": "application/json"}


def test_a_real_run_is_shown_with_markup_escaped_and_the_security_headers(home, finished_run, dashboard):
    # Given a finished real run whose job name holds markup
    write_record(home, "real", "done", name=SCRIPT_NAME, output=copy_run(finished_run, home, "real"))
    d = dashboard()
    # When the queue and the job are read over HTTP
    q = httpx.get(f"{d.base}/api/queue")
    j = httpx.get(f"{d.base}/api/job/real")
    # Then both are JSON in which no <, > or & appears raw, and the name comes back exactly
    for r in (q, j):
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert not {"<", ">", "&"} & set(r.text)
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    assert [job["name"] for job in q.json()["jobs"]] == [SCRIPT_NAME]
    page = j.json()
    # And the job page holds the run's curves, checkpoints, answers of every model and readable log lines
    assert page["series"]["train"]["step"] == [2, 4, 6, 8] and page["series"]["eval"]["step"] == [0, 4, 8]
    assert [c["step"] for c in page["checkpoints"]] == [4, 8]
    held = [a for a in page["answers"] if a["kind"] == "held_out"]
    assert len(held) == 3 and all(set(a["answers"]) == {"base", "best", "final"} for a in held)
    assert page["scores"]["examples"] == 3
    assert any(line["event"] == "checkpoint_saved" and "step=8" in line["text"] for line in page["log"])
    assert page["settings"]["training.max_steps"] == 8
    # And the job's figures come flat, the run's live ones first (not the training state's whole dump)
    job = page["job"]
    assert (job["step"], job["total_steps"], job["phase"]) == (8, 8, "done") and job["train_loss"] > 0
    assert "training" not in job and "progress" not in job and job["eta_seconds"] is None


def test_an_unchanged_queue_answers_304_and_a_change_gives_a_new_version(home, dashboard):
    # Given a dashboard over a home with one queued job
    write_record(home, "a", "queued")
    d = dashboard()
    first = httpx.get(f"{d.base}/api/queue")
    tag = first.headers["etag"]
    # When it is asked again with the version it gave
    again = httpx.get(f"{d.base}/api/queue", headers={"If-None-Match": tag})
    # Then it answers 304 without a body; after a new job arrives, 200 with another version
    assert again.status_code == 304 and again.content == b""
    write_record(home, "b", "queued")
    changed = httpx.get(f"{d.base}/api/queue", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert [j["id"] for j in changed.json()["jobs"]] == ["a", "b"]


def test_an_action_needs_the_token_and_a_same_origin_request(home, dashboard):
    # Given a queued job and a dashboard (its token made into the home, private)
    write_record(home, "q", "queued")
    d = dashboard()
    url = f"{d.base}/api/job/q/cancel"
    requests_dir = home / "spool" / "requests"
    assert stat.S_IMODE((home / "dashboard.token").stat().st_mode) == 0o600
    # When cancel is posted without the token, with it from another origin, or with it and no Origin
    no_token = httpx.post(url, headers={"Origin": d.base, "Content-Type": "application/json"})
    foreign = httpx.post(url, headers=same_origin(d) | {"Origin": "http://evil.example"})
    no_origin = httpx.post(url, headers={k: v for k, v in same_origin(d).items() if k != "Origin"})
    # Then all are refused and no request file is written
    assert (no_token.status_code, foreign.status_code, no_origin.status_code) == (401, 403, 403)
    assert "token" in no_token.json()["error"] and "cross-origin" in foreign.json()["error"]
    assert list(requests_dir.glob("*.json")) == []
    # And with the token from the dashboard's own origin it writes the request farensectl cancel writes
    ok = httpx.post(url, headers=same_origin(d))
    assert ok.status_code == 200, ok.text
    (req_file,) = requests_dir.glob("*.json")
    req = Request.model_validate_json(req_file.read_bytes())
    assert (req.verb, req.job) == ("cancel", "q")
    # And a verb the job's state does not take is refused as farensectl refuses it
    retry = httpx.post(f"{d.base}/api/job/q/retry", headers=same_origin(d))
    assert retry.status_code == 409 and "cannot retry" in retry.json()["error"]


def test_a_read_only_dashboard_refuses_actions_even_with_the_token(home, dashboard):
    write_record(home, "q", "queued")
    (home / "dashboard.token").write_text("not-needed\n")
    (home / "dashboard.token").chmod(0o600)
    d = dashboard("--read-only")
    refused = httpx.post(f"{d.base}/api/job/q/cancel", headers=same_origin(d))
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    assert httpx.get(f"{d.base}/api/queue").json()["access"]["actions"] is False


def test_a_request_for_another_host_name_is_refused(home, dashboard):
    # Given a loopback dashboard; When a page of another name (DNS rebinding) reaches it
    d = dashboard()
    r = httpx.get(f"{d.base}/api/queue", headers={"Host": f"evil.example:{d.port}"})
    # Then it answers nothing of the home
    assert r.status_code == 421 and "jobs" not in r.text
    assert httpx.get(f"{d.base}/api/queue", headers={"Host": f"localhost:{d.port}"}).status_code == 200


def test_beyond_loopback_every_api_request_needs_the_token_and_a_warning_is_printed(home, dashboard):
    # Given a dashboard listening on every interface
    write_record(home, "q", "queued")
    d = dashboard("--host", "0.0.0.0")
    # When the API is read without the token, then with it
    without = httpx.get(f"{d.base}/api/queue")
    with_token = httpx.get(f"{d.base}/api/queue", headers={"X-Farensed-Token": d.token})
    # Then only the second gets data; the page itself (no data in it) loads either way
    assert without.status_code == 401 and "jobs" not in without.text
    assert with_token.status_code == 200 and with_token.json()["jobs"][0]["id"] == "q"
    assert httpx.get(f"{d.base}/").status_code == 200
    assert "warning: serving on 0.0.0.0" in d.stop()


def test_url_prints_the_address_that_carries_the_token(home):
    cp = subprocess.run([FARENSECTL, "dashboard", "--url", "--port", "9999"], capture_output=True, text=True,
                        timeout=60)
    token = (home / "dashboard.token").read_text().strip()
    assert cp.returncode == 0 and cp.stdout.strip() == f"http://127.0.0.1:9999/#token={token}"


def test_submit_shows_validates_problems_then_queues_a_good_file(home, dashboard):
    d = dashboard()
    # When a job file with a wrong value is submitted
    bad = small_job(steps=4).replace("learning_rate = 0.005", "learning_rate = -1")
    r = httpx.post(f"{d.base}/api/submit", headers=same_origin(d), json={"file_name": "mine.toml", "text": bad})
    # Then it is not queued, and the problem names the key and the line, in the name the user gave
    out = r.json()
    assert r.status_code == 200 and out["ok"] is False and out["submitted"] is False
    assert any(p["key"] == "training.learning_rate" and p["line"] and p["text"].startswith("mine.toml:")
               for p in out["problems"]), out["problems"]
    assert not list(home.glob("spool/*.toml"))
    # And a good file lands in the spool under the id the daemon will give it
    good = httpx.post(f"{d.base}/api/submit", headers=same_origin(d),
                      json={"file_name": "mine.toml", "text": small_job(steps=4)}).json()
    assert good["ok"] and good["submitted"] and good["job_id"] == "mine"
    assert (home / "spool" / "mine.toml").read_text() == small_job(steps=4)
    # And a file name that could leave the spool is refused
    evil = httpx.post(f"{d.base}/api/submit", headers=same_origin(d), json={"file_name": "../x.toml", "text": "x"})
    assert evil.status_code == 400


def _trial(home, finished_run, job_id: str, lr: float, **record_fields):
    run = copy_run(finished_run, home, job_id)
    text = (run / "job.toml").read_text().replace("learning_rate = 0.005", f"learning_rate = {lr}")
    (run / "job.toml").write_text(text)
    write_record(home, job_id, record_fields.pop("state", "done"), output=run, **record_fields)
    return run


def test_a_sweep_ranks_its_trials_marks_the_pruned_and_names_the_winner(home, finished_run, dashboard):
    # Given three trials naming sweep "sw" (a record field this version does not know) and one other job,
    # their evals carrying an answer score (`probe_f1`, as a newer worker writes) that this version does not know
    runs = {i: _trial(home, finished_run, i, lr, sweep="sw") for i, lr in (("t1", 1e-3), ("t2", 2e-3), ("t3", 3e-3))}
    write_record(home, "t3", "cancelled", output=runs["t3"], sweep="sw", outcome="pruned")
    write_record(home, "other", "queued")
    for job_id, best in (("t1", 0.3), ("t2", 0.6), ("t3", 0.9)):  # t3 scores best, but was pruned
        rows = [json.loads(line) for line in (runs[job_id] / "metrics.jsonl").read_text().splitlines()]
        evals = [i for i, r in enumerate(rows) if r["kind"] == "eval"]
        for n, i in enumerate(evals):
            rows[i] |= {"probe_f1": round(best * (n + 1) / len(evals), 3)}
        (runs[job_id] / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    d = dashboard()
    # When the sweep is read
    queue = httpx.get(f"{d.base}/api/queue").json()
    s = httpx.get(f"{d.base}/api/sweep/sw").json()
    # Then the queue lists the sweep, and its page ranks the trials by that score, highest first, pruned last
    assert queue["sweeps"] == ["sw"]
    assert s["metric"] == "probe_f1" and s["direction"] == "maximize"
    assert [(t["id"], t["value"], t["pruned"]) for t in s["trials"]] == [("t2", 0.6, False), ("t1", 0.3, False),
                                                                         ("t3", 0.9, True)]
    assert s["winner"] == "t2" and s["setting_keys"] == ["training.learning_rate"]
    assert s["trials"][0]["settings"] == {"training.learning_rate": 2e-3}
    assert all(len(t["series"]["eval"]["probe_f1"]) == 3 for t in s["trials"])
    assert httpx.get(f"{d.base}/api/sweep/nope").status_code == 404


def test_compare_shows_two_runs_side_by_side_with_the_settings_that_differ(home, finished_run, dashboard):
    _trial(home, finished_run, "a", 1e-3)
    _trial(home, finished_run, "b", 2e-3)
    d = dashboard()
    c = httpx.get(f"{d.base}/api/compare", params=[("job", "a"), ("job", "b")]).json()
    assert [j["id"] for j in c["jobs"]] == ["a", "b"]
    assert ["training.learning_rate", ["0.001", "0.002"]] in c["differ"]
    assert dict(c["figures"])["steps"] == ["8", "8"]
    assert c["scores"] and all(len(s["train"]["step"]) == 4 for s in c["series"])
    assert httpx.get(f"{d.base}/api/compare", params=[("job", "a")]).status_code == 404
