"""The dashboard in a real browser: Playwright driving Debian's Chromium against a real dashboard
process, with a real daemon running real jobs of the tiny model. Screenshots land in the test's tmp dir."""

from __future__ import annotations

import subprocess

import pytest

from conftest import PY, REPO, ctl, record, small_job, wait_for
from dashboard_support import Dashboard, chromium, write_record

SLOW_JOB = {"cadence": {"checkpoint_every": 5, "eval_every": 10, "log_every": 2}}  # long enough to watch


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def errors():
    """Script errors and console errors (a refused resource, a CSP violation) seen by `page`."""
    return []


@pytest.fixture
def page(browser, errors):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    p = context.new_page()
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield p
    context.close()
    assert errors == [], errors  # none on any page, but those a test expects and clears


@pytest.fixture
def dashboard(home):
    d = Dashboard(home)
    yield d
    d.stop()


def submit(home, name: str, text: str) -> None:
    path = home / f"{name}.toml"
    path.write_text(text)
    ctl("submit", str(path))


def number(page, selector: str) -> int:
    text = page.text_content(selector) or "0"
    return int(text.split("/")[0]) if text[0].isdigit() else 0


def loss_points(page) -> int:
    # read from the outside (no wait_for_function: the page's CSP forbids the eval it relies on)
    return int(page.get_attribute("[data-chart=loss]", "data-points") or 0)


def test_a_running_jobs_step_rises_on_the_page_and_its_loss_chart_gains_points(home, daemon, dashboard, page,
                                                                                tmp_path):
    # Given a job running under the daemon, and its page open
    submit(home, "live", small_job(steps=400, **SLOW_JOB))
    daemon()
    wait_for(lambda: (record(home, "live") or {}).get("state") == "running", 60, what="live running")
    page.goto(f"{dashboard.base}/job/live")
    wait_for(lambda: loss_points(page) > 0, 120, what="the first loss points on the page")
    step, points = number(page, "#step"), loss_points(page)
    # When a few seconds pass (the page is never reloaded)
    wait_for(lambda: number(page, "#step") > step, 120, what="the step on the page to rise")
    wait_for(lambda: loss_points(page) > points, 120, what="the loss chart to gain points")
    # Then the step shown rose and the loss chart gained points, drawn on its canvas
    assert number(page, "#step") > step
    assert page.locator("[data-chart=loss] canvas").count() == 1
    page.screenshot(path=str(tmp_path / "job-running.png"), full_page=True)
    page.goto(f"{dashboard.base}/")
    page.wait_for_selector("#jobs tr[data-job=live][data-state=running]")
    page.screenshot(path=str(tmp_path / "queue-running.png"), full_page=True)


def test_cancel_from_the_page_needs_the_token(home, daemon, dashboard, page, errors):
    # Given a running job and its page opened without the token
    submit(home, "victim", small_job(steps=2000, **SLOW_JOB))
    daemon()
    wait_for(lambda: (record(home, "victim") or {}).get("state") == "running", 60, what="victim running")
    page.goto(f"{dashboard.base}/job/victim")
    page.wait_for_selector("#access-state")
    # Then it offers no cancel button, and a cancel posted from the page without the token is refused
    assert page.locator("button.act-cancel").count() == 0
    status = page.evaluate("""async () => (await fetch('/api/job/victim/cancel', {method: 'POST',
        headers: {'Content-Type': 'application/json'}})).status""")
    assert status == 401
    # And a page of another origin holding the token cannot post it (the browser's CORS check stops it)
    page.goto(f"http://localhost:{dashboard.port}/")
    refused = page.evaluate("""async ([url, token]) => { try {
        await fetch(url, {method: 'POST', headers: {'X-Farensed-Token': token, 'Content-Type': 'application/json'}});
        return 'sent'; } catch (e) { return 'blocked'; } }""", [f"{dashboard.base}/api/job/victim/cancel",
                                                            dashboard.token])
    assert refused == "blocked" and not list((home / "spool" / "requests").glob("*.json"))
    assert record(home, "victim")["state"] == "running"
    errors.clear()  # the console reported the 401 and the CORS refusal: expected here
    # When the page is opened with the token and cancel is clicked
    page.goto(f"{dashboard.base}/job/victim#token={dashboard.token}")
    page.click("button.act-cancel")
    # Then the daemon cancels the job and the page shows it, without a reload
    page.wait_for_selector("#head .badge.state-cancelled", timeout=120_000)
    assert record(home, "victim")["state"] == "cancelled"
    assert "#token" not in page.url  # the token does not stay in the address bar


def test_the_answers_table_shows_base_and_trained_answers(home, dashboard, page, tmp_path):
    # Given a job run to the end by the daemon, its held-out questions answered by every model
    submit(home, "answered", small_job(steps=8, evaluate={"examples": 3},
                                       generate={"prompts": ["Quem fundou o Farense?"], "max_tokens": 8}))
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
    assert cp.returncode == 0 and record(home, "answered")["state"] == "done", cp.stderr
    # When its page is opened
    page.goto(f"{dashboard.base}/job/answered")
    page.wait_for_selector("#answers-table tbody tr")
    # Then each held-out question shows the base model's and the trained adapters' answers with their F1
    rows = page.locator("#answers-table tbody tr")
    assert rows.count() == 3
    for i in range(3):
        for target in ("base", "best", "final"):
            cell = rows.nth(i).locator(f"td.answer-{target}")
            assert cell.locator(".f1").text_content().strip().startswith("F1 ")
    assert page.locator("#prompt-answers tbody tr").count() == 1
    assert page.text_content("#score-means").startswith("held-out (3 of")
    page.screenshot(path=str(tmp_path / "job-done.png"), full_page=True)
    page.goto(f"{dashboard.base}/")
    page.wait_for_selector("#jobs tr[data-job=answered]")
    page.screenshot(path=str(tmp_path / "queue-done.png"), full_page=True)


def test_a_job_name_holding_a_script_renders_as_text(home, dashboard, page):
    # Given a job whose name is markup that would run if it were put in as HTML
    evil = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
    write_record(home, "evil", "queued", name=evil)
    # When the queue is shown
    page.goto(f"{dashboard.base}/")
    page.wait_for_selector("#jobs tr[data-job=evil]")
    # Then the name is shown as the text it is, and nothing of it ran or became an element
    assert page.text_content("#jobs tr[data-job=evil] td.name") == evil
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#jobs img").count() == 0 and page.locator("#jobs script").count() == 0
