"""Answer scores without a model: Portuguese normalization, exact match and F1, which questions are
asked (a fixed order and count, the probe's sets), and the [evaluate] section."""

from __future__ import annotations

import json

import pytest

from farensed.core.errors import JobFileError
from farensed.core.formats import ScoredQuestion, TrainingState, TrainingSummary
from farensed.core.jobfile import parse_job
from farensed.core.jobspec import JobSpec
from farensed.core.paths import REPO_ROOT, Home
from farensed.scoring.metrics import exact_match, f1, normalize
from farensed.scoring.questions import held_out, means, probe_sets, prompt_questions, scored, scored_questions

JOB = 'schema_version = 1\nname = "s"\nmodel = "m"\ndata = "{data}"\n'


def test_normalization_drops_case_accents_punctuation_and_portuguese_articles():
    # Given a Portuguese answer with accents, guillemets, an ordinal and an en dash
    text = "O Farense é conhecido como «Leões de Faro»; foi o 5.º em 1994–95, e UMA vez à frente!"
    # When it is normalized
    # Then only lowercase words without accents remain, the articles o/a/os/as/um/uma are gone
    assert normalize(text) == "farense e conhecido como leoes de faro foi 5 em 1994 95 e vez frente"
    assert normalize("  Os   Leões  ") == "leoes"


def test_exact_match_ignores_form_but_not_content():
    # Given a reference and answers that differ in form or in fact
    ref = "O estádio histórico do Farense é o Estádio de São Luís, em Faro."
    # Then form does not matter (accents, case, articles, punctuation), content does
    assert exact_match("o estadio historico do farense e estadio de sao luis em faro", ref) == 1.0
    assert exact_match("O estádio histórico do Farense é o Estádio Algarve.", ref) == 0.0


def test_f1_counts_shared_tokens():
    # Given a reference of 7 normalized tokens
    ref = "As cores do Farense são o preto e o branco."  # cores do farense sao preto e branco
    # Then F1 is 1 for the same answer, 0 for nothing in common, and the harmonic mean in between
    assert f1("as cores do farense são o preto e o branco", ref) == 1.0
    assert f1("Olympique Lyonnais", ref) == 0.0
    assert f1("preto e branco", ref) == pytest.approx(2 * 1.0 * (3 / 7) / (1 + 3 / 7))
    assert f1("", ref) == 0.0 and f1("", "") == 1.0
    assert f1("o a os", "") == 1.0  # nothing but articles is an empty answer


def _data(tmp_path, rows: list[dict], name: str = "train.jsonl"):
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder


def test_held_out_questions_come_from_test_jsonl_in_one_fixed_order_whatever_the_seed():
    # Given the sample data (train, valid and test.jsonl)
    spec = parse_job(JOB.format(data="data"))
    # When the held-out questions are taken twice, and for a job with another training seed
    first, again = held_out(spec, Home(REPO_ROOT)), held_out(spec, Home(REPO_ROOT))
    other = held_out(spec.model_copy(update={"training": spec.training.model_copy(update={"seed": 1})}),
                     Home(REPO_ROOT))
    # Then they are test.jsonl's 52, each with its chat prompt (system + user) and reference, in the
    # same order every time, not the file's (a sample of them is spread over the file)
    assert first.data.endswith("test.jsonl") and len(first.questions) == 52 and first.unaskable == 0
    assert [q.source for q in first.questions] == [q.source for q in again.questions]
    assert [q.source for q in first.questions] == [q.source for q in other.questions]
    assert [q.source for q in first.questions] != sorted((q.source for q in first.questions),
                                                         key=lambda s: int(s.rsplit(":", 1)[1]))
    q = first.questions[0]
    assert [m["role"] for m in q.messages] == ["system", "user"] and q.reference and q.text == q.messages[1]["content"]


def test_without_a_test_file_the_validation_split_is_held_out_and_completions_work(tmp_path):
    # Given completions data in one file, one example with an empty prompt
    rows = [{"prompt": f"Pergunta {i}?", "completion": f"Resposta {i}."} for i in range(20)]
    rows[3]["prompt"] = ""
    data = _data(tmp_path, rows, "all.jsonl") / "all.jsonl"
    spec = parse_job(JOB.format(data=data) + "valid_fraction = 0.5\n")
    # When the held-out questions are taken
    held = held_out(spec, Home(tmp_path))
    # Then they are the validation split's, asked as one user turn, the empty prompt counted as unaskable
    assert held.data.startswith("the validation split")
    assert len(held.questions) + held.unaskable == 10
    assert all(q.messages == [{"role": "user", "content": q.text}] for q in held.questions)
    assert all(q.reference == q.text.replace("Pergunta", "Resposta").replace("?", ".") for q in held.questions)


def test_text_data_has_no_question_to_ask(tmp_path):
    data = _data(tmp_path, [{"text": f"Frase {i}."} for i in range(4)])
    (data / "test.jsonl").write_text('{"text": "Outra frase."}\n')
    held = held_out(parse_job(JOB.format(data=data)), Home(tmp_path))
    assert held.questions == [] and held.unaskable == 1


def test_a_prompt_that_is_a_question_of_the_data_gets_its_answer_as_reference():
    # Given the demo's prompts and a prompt not in the data
    from farensed.core.datasets import load_splits

    spec = parse_job(JOB.format(data="data") + '[generate]\nsystem = "S"\n'
                     'prompts = ["Qual é a alcunha do Farense?", "Olá?"]\n')
    splits = load_splits(REPO_ROOT / "data")
    # When they become questions
    alcunha, ola = prompt_questions(spec, splits)
    # Then the first has the training answer as its reference, the second none; both carry the system message
    assert alcunha.reference == "O Farense é conhecido como «Leões de Faro» ou simplesmente «os Leões»."
    assert ola.reference is None and ola.messages[0] == {"role": "system", "content": "S"}
    row = scored(ola, {"base": "Olá!"}, 0.1)
    assert row.answers["base"].f1 is None and means([row], "prompt") == {}


def test_the_final_scoring_takes_a_fixed_count_all_when_there_are_fewer():
    # Given the sample's 52 held-out questions
    spec = parse_job(JOB.format(data="data"))
    held = held_out(spec, Home(REPO_ROOT))
    # Then the default 64 takes them all, a count takes the first of the fixed order, 0 none
    assert scored_questions(spec, held) == held.questions
    spec.evaluate.examples = 7
    assert scored_questions(spec, held) == held.questions[:7]
    spec.evaluate.examples = 0
    assert scored_questions(spec, held) == []


def test_the_probe_asks_test_jsonl_or_else_a_training_and_a_validation_sample(tmp_path):
    from farensed.core.datasets import load_splits

    # Given the sample data with its test.jsonl, and the same train and valid files without it
    spec = parse_job(JOB.format(data="data"))
    with_test = probe_sets(spec, Home(REPO_ROOT), load_splits(REPO_ROOT / "data"))
    folder = tmp_path / "notest"
    folder.mkdir()
    for name in ("train.jsonl", "valid.jsonl"):
        (folder / name).write_bytes((REPO_ROOT / "data" / name).read_bytes())
    without = probe_sets(parse_job(JOB.format(data=folder)), Home(tmp_path), load_splits(folder))
    # Then with a test set: its first 32 questions of the fixed order, the final scoring's first ones
    [held] = with_test
    assert (held.name, held.field, len(held.questions)) == ("held_out", "probe", 32)
    assert held.questions == held_out(spec, Home(REPO_ROOT)).questions[:32]
    # And without one: 16 training questions (they decide best) and, beside them, 16 validation ones
    assert [(s.name, s.field, len(s.questions)) for s in without] == [("train", "probe", 16),
                                                                      ("valid", "probe_valid", 16)]
    assert all(q.source.startswith(str(folder / "train.jsonl")) for q in without[0].questions)
    # And the same data gives the same questions for any training seed; probe = 0 asks none
    reseeded = parse_job(JOB.format(data=folder) + "[training]\nseed = 7\n")
    assert [s.info().digest for s in probe_sets(reseeded, Home(tmp_path), load_splits(folder, seed=7))] == \
        [s.info().digest for s in without]
    assert probe_sets(parse_job(JOB.format(data="data") + "[evaluate]\nprobe = 0\n"), Home(REPO_ROOT),
                      load_splits(REPO_ROOT / "data")) == []


def test_means_per_model_over_one_kind():
    q = held_out(parse_job(JOB.format(data="data")), Home(REPO_ROOT)).questions[0]
    good = scored(q, {"base": "nada", "final": q.reference}, 1.0)
    bad = scored(q, {"base": "nada", "final": "nada"}, 1.0)
    m = means([good, bad], "held_out")
    assert m["final"].exact_match == 0.5 and m["base"].f1 == 0.0 and "best" not in m
    assert ScoredQuestion.model_validate_json(good.model_dump_json()) == good


def test_evaluate_section_defaults_and_checks():
    # Given a job without [evaluate] (as every job before it), and ones with it
    spec = parse_job(JOB.format(data="d"))
    # Then the defaults answer 64 questions at the end, probe 32 at every eval, choose by answers
    ev = spec.evaluate
    assert (ev.examples, ev.probe, ev.select, ev.patience, ev.data, ev.warnings) == (64, 32, "answers", 0, None, [])
    assert parse_job(JOB.format(data="d") + "[evaluate]\nexamples = 0\n").evaluate.examples == 0
    assert parse_job(JOB.format(data="d") + "[evaluate]\nexamples = 40\n").evaluate.examples == 40
    # And a wrong value or key is one clear problem each
    with pytest.raises(JobFileError) as e:
        parse_job(JOB.format(data="d") + '[evaluate]\nexamples = "all"\nselect = "loss"\nprobes = 3\n')
    lines = str(e.value).splitlines()
    assert len(lines) == 3 and "expected 0 (none) or a count of questions (got 'all')" in lines[0]
    assert "evaluate.select" in lines[1] and "did you mean probe?" in lines[2]


def test_an_old_job_file_with_examples_auto_runs_with_the_default_count_and_a_warning(tmp_path):
    from farensed.core.checks import check_job

    # Given a job file written for farensed 0.1: examples = "auto" and its time_fraction
    text = JOB.format(data="d") + '[evaluate]\nexamples = "auto"\ntime_fraction = 0.2\n'
    # When it is parsed (the worker, the daemon) and validated
    spec = parse_job(text)
    job = tmp_path / "old.toml"
    job.write_text(text)
    rep = check_job(job, Home(tmp_path), check_paths=False)
    # Then it is valid, scores the default 64 questions, and both keys are warned about with their lines
    assert spec.evaluate.examples == 64 and rep.ok
    assert [n for n in rep.notes if n.startswith("warning:")] == [
        f'warning: {job}:6: evaluate.examples = "auto" is retired (scores were not comparable): 64 questions are'
        " answered instead; write examples = N",
        f'warning: {job}:7: evaluate.time_fraction is retired with examples = "auto" and has no effect; remove it']


def test_files_written_before_scoring_existed_still_load():
    # Given a summary and a state as an older farensed wrote them (no scores, no time split)
    summary = {"schema_version": 1, "job": "j", "model": "m", "steps": 1, "epochs": 1.0, "final_train_loss": None,
               "final_val_loss": None, "best_val_loss": None, "best_step": None, "seconds": 1.0, "tokens": 1,
               "tokens_per_sec": 1.0, "trainable_parameters": 1, "total_parameters": 1, "downshifts": [],
               "restarts": 0, "skipped_nonfinite_steps": 0, "truncated_examples": 0, "answers": [],
               "adapters": "a", "best_adapters": "b"}
    state = {"micro_batch": 4, "grad_accumulation": 2, "effective_batch": 8, "status": "done"}
    # Then they load, with no scores and zero compile and load time
    s = TrainingSummary.model_validate(summary)
    assert s.scores is None and s.compile_seconds == 0.0
    assert TrainingState.model_validate(state).scoring is None
    assert JobSpec.model_validate({"name": "n", "model": "m", "data": "d"}).evaluate.examples == 64


def test_validate_names_a_missing_held_out_file(tmp_path):
    from farensed.core.checks import check_job

    # Given a job whose [evaluate] points at a file that is not there
    job = tmp_path / "job.toml"
    job.write_text(f'schema_version = 1\nname = "t"\nmodel = "{REPO_ROOT / "models" / "farense-tiny"}"\n'
                   f'data = "{REPO_ROOT / "data"}"\n\n[evaluate]\ndata = "mine.jsonl"\n')
    # When it is validated, Then the problem names the key, its line and the path
    [problem] = [str(p) for p in check_job(job, Home(tmp_path), measure_tokens=False).problems]
    assert problem == f"{job}:7: evaluate.data: held-out questions file not found: {tmp_path / 'mine.jsonl'}"
