"""docs/jobfile.md is generated from the schema: it must say what the schema says."""

from __future__ import annotations

from conftest import REPO
from farensed.core.jobdoc import render
from farensed.core.jobspec import JobSpec


def test_the_job_file_reference_is_what_the_schema_generates():
    committed = (REPO / "docs" / "jobfile.md").read_text(encoding="utf-8")
    regenerate = ".venv/bin/python -m farensed.core.jobdoc > docs/jobfile.md"
    assert committed == render(), f"docs/jobfile.md is stale: run `{regenerate}`"


def test_every_table_and_key_of_the_schema_is_in_the_reference():
    text = render()
    for name in JobSpec.model_fields:
        assert f"`{name}`" in text or f"## [{name}]" in text, name
    assert "| `learning_rate` | float | `0.0002` | > 0, <= 1 |" in text
    assert "| `mask_prompt` | bool | `true` |" in text
