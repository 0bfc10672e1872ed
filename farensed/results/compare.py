"""Several runs side by side: figures, the job settings that differ, and answers to the same prompts."""

from __future__ import annotations

from farensed.core.formats import ScoredQuestion
from farensed.results.answer_scores import figure_rows as score_figures
from farensed.results.answer_scores import run_scores
from farensed.results.rundata import RunData
from farensed.results.summary_table import rows
from farensed.scoring.questions import summarize

COMPARED = ("continued from", "status", "steps", "final train loss", "final val loss", "lowest val loss",
            "best step", "best probe F1", "best val loss", "best by", "time", "probe time", "tokens/s overall",
            "step tokens/s", "load time", "compile time", "peak memory GB", "micro-batch, mean over steps",
            "longest steps' micro-batch x acc", "downshifts", "restarts")


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """{"training": {"seed": 0}} -> {"training.seed": 0}."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


def settings_that_differ(runs: list[RunData]) -> list[tuple[str, list[str]]]:
    """(dotted key, one value per run) for every job.toml setting not the same in all runs."""
    flat = [flatten(r.spec.model_dump()) if r.spec else {} for r in runs]
    keys = sorted(set().union(*flat))
    out = []
    for k in keys:
        vals = [f.get(k, "-") for f in flat]
        if any(v != vals[0] for v in vals[1:]):
            out.append((k, [str(v) for v in vals]))
    return out


def figure_rows(runs: list[RunData]) -> list[tuple[str, list[str]]]:
    shown = [dict(rows(r)) for r in runs]
    return [(k, [s.get(k, "-") for s in shown]) for k in COMPARED]


def question_key(row: ScoredQuestion) -> tuple[str, str | None]:
    """A scored question by what it asks and expects: the same in two jobs whatever their paths."""
    return row.question, row.reference


def shared_questions(runs: list[RunData]) -> set | None:
    """The held-out questions every scored run answered; None when their sets are the same."""
    sets = [{question_key(a) for a in r.answers if a.kind == "held_out"} for r in runs if r.answers]
    if len(sets) < 2 or all(s == sets[0] for s in sets[1:]):
        return None
    return set.intersection(*sets)


def score_rows(runs: list[RunData]) -> tuple[str, list[tuple[str, list[str]]]]:
    """(section title, rows): held-out answer F1 and exact match per model, one value per run, over
    the questions they all answered when their sets differ; no rows when no run was scored."""
    scores = [run_scores(r) for r in runs]
    if all(s is None for s in scores):
        return "answer scores (held-out)", []
    shared = shared_questions(runs)
    title = "answer scores (held-out)"
    if shared is not None:
        scores = [summarize([a for a in r.answers if a.kind == "held_out" and question_key(a) in shared],
                            s.data, s.available) if s else None for r, s in zip(runs, scores)]
        title = f"answer scores (held-out, the {len(shared)} shared questions)"
    per_run = [dict(score_figures(s)) for s in scores]
    rows = [(k, [p[k] for p in per_run]) for k, _ in score_figures(None)]
    if shared is not None:
        rows.append(("answered in all", [str(sum(a.kind == "held_out" for a in r.answers)) for r in runs]))
    return title, rows


def question_note(runs: list[RunData]) -> str | None:
    """One line for above the table when the runs' held-out question sets differ."""
    shared = shared_questions(runs)
    if shared is None:
        return None
    counts = ", ".join(str(sum(a.kind == "held_out" for a in r.answers)) for r in runs)
    return (f"note: the jobs' held-out question sets differ ({counts} questions, {len(shared)} answered by all):"
            f" the answer scores compare only the {len(shared)} shared questions")


def probe_rows(runs: list[RunData]) -> list[tuple[str, list[str]]]:
    """Whether the runs' probes asked the same questions (their digests), when any run had a probe."""
    plans = [(r.state.probe if r.state else None) or (r.summary.probe if r.summary else None) for r in runs]
    if all(p is None for p in plans):
        return []
    sets = [tuple(s.digest for s in p.sets) if p else None for p in plans]
    same = all(x == sets[0] for x in sets[1:])
    words = [("-" if p is None else ", ".join(f"{s.questions} {s.name}" for s in p.sets) or "none") for p in plans]
    return [("probe questions", words), ("probe sets", ["the same" if same else "differ"] * len(runs))]


def common_prompts(runs: list[RunData]) -> list[str]:
    """The jobs' generate prompts, in first-seen order, without repeats."""
    seen: dict[str, None] = {}
    for r in runs:
        for p in (r.spec.generate.prompts if r.spec else []):
            seen.setdefault(p, None)
    return list(seen)


def stored_answers(run: RunData, prompts: list[str]) -> list[str] | None:
    """The answers training_summary.json already holds for exactly these prompts, else None."""
    if run.summary is None:
        return None
    have = {a.prompt: a.answer for a in run.summary.answers}
    return [have[p] for p in prompts] if all(p in have for p in prompts) else None


def column_names(runs: list[RunData], ids: list[str]) -> list[str]:
    return [i if r.name == i else f"{i} ({r.name})" for r, i in zip(runs, ids)]


def render_table(names: list[str], sections: list[tuple[str, list[tuple[str, list[str]]]]]):
    """A rich table: one column per run, one titled section after another."""
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    table.add_column("", style="bold cyan", max_width=34, overflow="fold")
    for n in names:
        table.add_column(n, overflow="fold")
    for title, section in sections:
        if not section:
            continue
        table.add_section()
        table.add_row(f"[bold magenta]{title}[/]", *[""] * len(names))
        for label, values in section:
            table.add_row(label, *values)
    return table
