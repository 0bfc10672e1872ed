"""Shared by cancel, pause, resume and retry: check the job can take the verb, drop a request file."""

from __future__ import annotations

import click

from farensed.cli import client
from farensed.core.errors import FarensedError
from farensed.core.spool.requests import write_request
from farensed.core.states import verb_target


def send(home, verb: str, job_id: str) -> None:
    rec = client.job(home, job_id)
    if verb_target(verb, rec.state) is None:
        raise FarensedError(f"job {job_id} is {rec.state}: cannot {verb} it")
    write_request(client.dirs(home).requests, verb, job_id)
    st = client.current_status(home)
    when = "within 2 s" if st.daemon.state not in ("not_running", "stale") else "when farensed starts"
    click.echo(f"{verb} requested for {job_id} ({rec.state}); applied {when}")
