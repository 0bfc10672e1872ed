"""A seeded fuzz of the spool: hundreds of mutated job files and data files. For every one, the checks
report problems as `file:line: key: message` lines and never raise; `farensectl validate` prints no
traceback; dropped into the spool, each ends in rejected/ (with a reason) or queued/ within seconds,
and a valid job dropped after all of them still runs."""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

from conftest import FARENSECTL, REPO, record, small_job, wait_for
from farensed.core.checks import check_job
from farensed.core.paths import Home

SEED = 20261202
KEY_VALUE = re.compile(r"^(\s*)([A-Za-z_]+) = (.*)$", re.M)
HOSTILE_VALUES = ["true", '"4"', "4.0", "-1", "0", "inf", "nan", "1e308", "9" * 30, "9" * 5000, "[]", "{}",
                  '"\\u0000"', "[" * 3000 + "]" * 3000, "{a = " * 800 + "1" + "}" * 800, '"../../etc"',
                  '"-oProxyCommand=touch x"', '"/dev/zero"', "2026-12-02", '"' + "x" * 5000 + '"']
PROBLEM_LINE = re.compile(r"^.+?(:\d+)?: .+")


def mutate_job(rng: random.Random, base: str) -> bytes:
    """One hostile variant of a good job file."""
    kind = rng.randrange(7)
    text = base
    pairs = list(KEY_VALUE.finditer(base))
    if kind == 0:  # a value of the wrong type, size or depth
        m = rng.choice(pairs)
        text = base[:m.start(3)] + rng.choice(HOSTILE_VALUES) + base[m.end(3):]
    elif kind == 1:  # a key removed
        m = rng.choice(pairs)
        text = base[:m.start()] + base[m.end():]
    elif kind == 2:  # an unknown key, or an mlx-lm name
        text = base + rng.choice(["iters = 100\n", "[training]\nsave_every = 3\n", "zzz = 1\n", "[nope]\nx = 1\n"])
    elif kind == 3:  # cut short
        text = base[: rng.randrange(len(base))]
    elif kind == 4:  # a distributed section with hostile hosts or files
        text = base + rng.choice(['[distributed]\nhosts = ["127.0.0.1", "-oProxyCommand=id"]\nbackend = "any"\n',
                                  '[distributed]\nhostfile = "/dev/zero"\n', '[distributed]\nprocesses = 99999\n',
                                  '[distributed]\nhosts = ["a b"]\n'])
    elif kind == 5:  # an output or data path that escapes, or is special
        key = rng.choice(["output", "data"])
        value = rng.choice(['"checkpoints"', '"checkpoints/x/../../.."', '"/dev/zero"', '"/etc/passwd"', '""'])
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", base, flags=re.M) if key in base else \
            base.replace('name = "', f'{key} = {value}\nname = "', 1)
    raw = text.encode("utf-8")
    if kind == 6:  # bytes: not UTF-8, NUL, or noise
        pos = rng.randrange(len(raw))
        raw = raw[:pos] + rng.choice([b"\xff\xfe", b"\x00", bytes(rng.randrange(256) for _ in range(20))]) + raw[pos:]
    return raw


def mutate_data(rng: random.Random) -> bytes:
    good = {"messages": [{"role": "user", "content": "Quem?"}, {"role": "assistant", "content": "O Farense."}]}
    lines = [json.dumps(good)] * 6
    bad = rng.choice([
        "[" * 100_000 + "]" * 100_000, '{"messages": []}', '{"messages": [{"role": "user", "content": "q"}]}',
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}',
        '{"prompt": "q", "completion": ""}', '{"text": 5}', "not json", '{"messages": [{"role": "x", "content": 1}]}',
        json.dumps({"text": "x" * 1_200_000}), "\x00\x01", '{"a": ' * 5000 + "1" + "}" * 5000])
    lines.insert(rng.randrange(len(lines)), bad)
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    return raw if rng.random() < 0.8 else raw.replace(b"Quem", b"\xff\xfe", 1)


def fuzz_files(tmp_path: Path, jobs: int, datas: int) -> list[Path]:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    files = []
    base = small_job(1)
    for i in range(datas):
        d = data_dir / f"d{i:03}.jsonl"
        d.write_bytes(mutate_data(rng))
        f = tmp_path / f"data{i:03}.toml"
        f.write_text(base.replace(f'data = "{REPO / "data"}"', f'data = "{d}"'))
        files.append(f)
    for i in range(jobs):
        f = tmp_path / f"job{i:03}.toml"
        f.write_bytes(mutate_job(rng, base))
        files.append(f)
    return files


def test_hundreds_of_mutated_files_are_checked_without_a_traceback_and_none_jams_the_spool(home, tmp_path, daemon):
    # Given 300 mutated job files and 40 jobs over mutated data files, from a fixed seed
    files = fuzz_files(tmp_path / "fuzz", jobs=300, datas=40)
    # When each is checked as validate checks it
    rejected = 0
    for f in files:
        rep = check_job(f, Home(home), measure_tokens=False)
        # Then none raises, and every problem is one line that names the file
        assert all(PROBLEM_LINE.match(str(p)) and "\n" not in str(p) and str(p).startswith(str(f))
                   for p in rep.problems), [str(p) for p in rep.problems]
        rejected += not rep.ok
    # And farensectl validate on all of them prints no traceback
    cp = subprocess.run([FARENSECTL, "validate", "--no-paths", *map(str, files)], capture_output=True, text=True,
                        timeout=300)
    assert cp.returncode == 1 and "Traceback" not in cp.stderr + cp.stdout
    # When a sample of them is dropped into the spool with the daemon running, then one valid job
    spool = home / "spool"
    spool.mkdir()
    sample = files[::6]
    for i, f in enumerate(sample):
        (spool / f"fz{i:03}.toml").write_bytes(f.read_bytes())
    daemon()
    judged = {}

    def all_judged():
        for i in range(len(sample)):
            rec = record(home, f"fz{i:03}")
            if rec is not None:
                judged[i] = rec["state"]
        return len(judged) == len(sample)

    wait_for(all_judged, 120, every=0.5, what="every dropped file judged")
    (spool / "last.toml").write_text(small_job(2, "last", top={"priority": 10}))  # ahead of the valid mutants
    # Then each ended rejected (with its reason beside it) or queued, and the valid job ran
    states = list(judged.values())
    assert set(states) <= {"rejected", "queued", "running", "done", "failed"}
    for i, st in judged.items():
        if st == "rejected":
            assert (spool / "rejected" / f"fz{i:03}.toml.error.txt").read_text().strip()
    wait_for(lambda: (record(home, "last") or {}).get("state") == "done", 300, every=0.5, what="last job done")
    counts = {"tried": len(files), "rejected by the checks": rejected, "dropped": len(sample),
              "rejected in the spool": states.count("rejected"),
              "queued or ran": len(states) - states.count("rejected"),
              "stuck": len(sample) - len(judged)}
    print("fuzz counts:", counts)
    assert counts["stuck"] == 0
