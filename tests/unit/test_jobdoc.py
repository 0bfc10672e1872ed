"""docs/jobfile.md is generated from the schema: it must say what the schema says."""

from __future__ import annotations

from conftest import REPO
from farensed.core.jobdoc import _model_of, render
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


def test_every_key_of_the_schema_says_what_it_means():
    # Given the job file's models: the top level and every table under it
    models = [JobSpec] + [m for f in JobSpec.model_fields.values() if (m := _model_of(f.annotation))]
    # Then every key has a description, the reference's "meaning" column
    missing = [f"{m.__name__}.{k}" for m in models for k, f in m.model_fields.items()
               if not f.description and not _model_of(f.annotation)]
    assert len(models) > 5 and missing == []
