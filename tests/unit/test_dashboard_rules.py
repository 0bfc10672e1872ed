"""The dashboard's pure rules: which Host and Origin headers are its own, which log lines read how."""

from __future__ import annotations

from farensed.dashboard.access import Policy, same_origin, split_host
from farensed.dashboard.logview import readable
from farensed.dashboard.server import json_bytes


def test_a_loopback_dashboard_answers_only_to_loopback_names_on_its_port():
    p = Policy(host="127.0.0.1", port=8765, token="t")
    assert all(p.allowed_host(h) for h in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765"))
    assert not any(p.allowed_host(h) for h in ("evil.example:8765", "127.0.0.1:9999", "", "10.0.0.1:8765"))
    assert split_host("[::1]") == ("[::1]", 80) and split_host("localhost") == ("localhost", 80)


def test_beyond_loopback_reading_needs_the_token_and_read_only_never_acts():
    wide = Policy(host="0.0.0.0", port=8765, token="t")
    assert wide.needs_token_to_read() and not Policy("127.0.0.1", 1, "t").needs_token_to_read()
    assert not Policy("127.0.0.1", 1, "t", read_only=True).can_act and not Policy("127.0.0.1", 1, None).can_act
    assert wide.token_ok("t") and not wide.token_ok("u") and not wide.token_ok(None)


def test_same_origin_means_origin_is_the_host_and_the_browser_says_same_origin():
    assert same_origin({"origin": "http://127.0.0.1:8765", "host": "127.0.0.1:8765"})
    assert not same_origin({"origin": "http://evil.example", "host": "127.0.0.1:8765"})
    assert not same_origin({"host": "127.0.0.1:8765"})
    own = {"origin": "http://127.0.0.1:8765", "host": "127.0.0.1:8765"}
    assert not same_origin(own | {"sec-fetch-site": "cross-site"})


def test_log_lines_read_as_time_level_event_and_fields_and_other_lines_stay_whole():
    line = readable('{"run_dir": "/x", "job": "j", "step": 8, "seconds": 0.00812, "pruned": null, '
                    '"event": "checkpoint_saved", "level": "info", "timestamp": "2026-12-02T12:27:57.976037Z"}')
    assert (line["level"], line["event"], line["text"]) == ("info", "checkpoint_saved", "step=8 seconds=0.00812")
    assert len(line["time"]) == 8 and line["time"].count(":") == 2
    assert readable("Traceback (most recent call last):")["text"] == "Traceback (most recent call last):"


def test_json_answers_carry_no_raw_markup_and_no_nan():
    out = json_bytes({"name": "<script>&</script>", "x": float("nan")}).decode()
    assert "<" not in out and ">" not in out and "&" not in out and '"x":null' in out
