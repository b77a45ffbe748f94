"""Resource limits on hostile files (issue 13): YAML that would expand without end or construct objects, files too
big or not files at all, in playbooks and answers files alike: each is exit 1 with file:line:column and a fix,
quickly and in little memory, never exit 3."""

from __future__ import annotations

import os

import pytest


def laughs(levels: int = 9) -> str:
    """The "billion laughs": each level nine aliases of the one before."""
    out = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghij"
    for before, name in zip(names, names[1:levels]):
        out.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * 9) + "]")
    return "\n".join(out) + "\n"


def key_laughs() -> str:
    """The same, only inside a complex mapping key, which a guard on values alone does not see."""
    return f"? {{x: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol], y: &b [{', '.join(['*a'] * 9)}], " \
           f"z: &c [{', '.join(['*b'] * 9)}], w: [{', '.join(['*c'] * 9)}]}}\n: boom\n"


HOSTILE_YAML = {
    "laughs": (laughs(), "1:1: the document has more than 200000 values (or aliases that expand to that many)"),
    "key-laughs": (key_laughs(), "1:3: a key is a list or mapping"),
    "python-name": ("id: !!python/name:os.system x\n", "1:5: the YAML tag 'tag:yaml.org,2002:python/name:os.system' "
                                                       "is not allowed"),
    "binary": ("id: !!binary aGVsbG8=\n", "1:5: the YAML tag 'tag:yaml.org,2002:binary' is not allowed"),
    "custom": ("id: !custom x\n", "1:5: the YAML tag '!custom' is not allowed"),
    "set": ("id: !!set {x, y}\n", "1:5: the YAML tag 'tag:yaml.org,2002:set' is not allowed"),
    "merge": ("base: &b {x: 1}\nother:\n  <<: *b\n", "3:3: a merge key (<<) is not supported"),
    "recursive": ("a: &a [*a]\n", "1:4: a recursive alias: the value contains itself"),
    "deep-block": ("".join(f"{'  ' * n}k{n}:\n" for n in range(80)) + f"{'  ' * 80}v: 1\n",
                   "values are nested more than 64 levels deep"),
    "bad-date": ("id: 2026-02-30\n", "1:5: the value '2026-02-30' cannot be read (day is out of range for month)"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_hostile_yaml_in_a_playbook_is_refused_with_its_line(run_ir, isolated, name):
    text, said = HOSTILE_YAML[name]
    (isolated / f"{name}.yaml").write_text(text)
    result = run_ir("validate", f"{name}.yaml", timeout=30)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"{name}.yaml:"), result.stderr
    assert said in result.stderr
    assert len(result.stderr) < 2000


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_hostile_yaml_in_an_answers_file_is_refused_with_its_line(run_ir, isolated, name):
    text, said = HOSTILE_YAML[name]
    (isolated / "answers.yaml").write_text(text)
    result = run_ir("run", "phishing-bec", "--dry-run", "--non-interactive", "--answers", "answers.yaml", timeout=30)
    assert result.returncode == 1, result.stderr
    assert said in result.stderr and "answers.yaml:" in result.stderr
    assert "internal error" not in result.stderr


def test_a_huge_file_is_refused_before_it_is_read(run_ir, isolated):
    for name in ("huge.yaml", "answers.yaml"):
        with open(isolated / name, "wb") as sparse:  # 3 GB on paper, no blocks on disk
            sparse.truncate(3_000_000_000)
    result = run_ir("validate", "huge.yaml", timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("huge.yaml:1:1: the file is 3000.0 MB; playbooks are limited to 1 MB")
    result = run_ir("run", "phishing-bec", "--dry-run", "--non-interactive", "--answers", "answers.yaml", timeout=30)
    assert result.returncode == 1
    assert "answers.yaml: cannot read the answers file (the file is over 1 MB, the most ir reads)" in result.stderr


def test_a_playbook_that_is_a_device_or_a_fifo_is_not_read(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(isolated / "playbooks" / "pipe.yaml")
    (isolated / "scenarios").mkdir()
    os.mkfifo(isolated / "scenarios" / "drill.yaml")
    result = run_ir("list", timeout=30)
    assert result.returncode == 0, result.stderr
    playbooks, scenarios = result.stdout.split("\n\n")
    rows = {line.split()[0]: line for line in (playbooks + scenarios).splitlines()}
    assert "(unreadable: run `ir validate" in rows["zero"] and "(unreadable: run `ir validate" in rows["pipe"]
    assert "(unreadable: run `ir validate`)" in rows["drill"]
    (isolated / "answers.yaml").symlink_to("/dev/zero")
    result = run_ir("run", "phishing-bec", "--dry-run", "--non-interactive", "--answers", "answers.yaml", timeout=30)
    assert result.returncode == 1
    assert "answers.yaml: cannot read the answers file (not a regular file (a device, FIFO or socket))" \
        in result.stderr


def test_the_limits_leave_ordinary_playbooks_alone(run_ir):
    result = run_ir("validate")
    assert result.returncode == 0, result.stderr


TEMPLATE_PLAYBOOK = """\
id: spin
title: Spin
version: "1.0.0"
inputs: [{{id: host, type: string, default: web01}}]
steps:
  - {{id: log, kind: note, title: Log it, phase: detection-analysis, message: "{message}"}}
"""


@pytest.mark.parametrize(("message", "said"), [
    ("{{ 'a' * 10**9 }}", "failed: the result would have more than 100000 items"),
    ("{{ 10**(10**8) }}", "failed: 10 ** 100000000 is too large"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "failed: loops over range() went past 100000 items in one template"),
    ("{{ range(10**6) | list }}", "failed: loops over range() went past 100000 items in one template"),
    ("{% for x in 'a' * 90000 %}{% for y in 'a' * 90000 %}{% endfor %}{% endfor %}", "took longer than 2 s to render"),
    ("{% for i in range(50000) %}aaaaa{% endfor %}", "renders more than 100000 characters"),
    ("{{ '{0}'.format_map({}) }}", "failed: tuple index out of range"),
    ("{{ 1 // 0 }}", "failed: integer division or modulo by zero"),
])
def test_a_template_past_its_limits_is_an_error_naming_the_step(run_ir, write_playbook, message, said):
    write_playbook("playbooks/spin.yaml", TEMPLATE_PLAYBOOK.format(message=message.replace('"', '\\"')))
    # the render's time limit is a timer of the process's main thread, which pytest-timeout holds in this one
    result = run_ir("run", "spin", "--non-interactive", timeout=60, process="took longer" in said)
    assert result.returncode == 1, result.stderr + result.stdout
    assert result.stderr.startswith("error: step log of playbook spin: template "), result.stderr
    assert said in result.stderr
    assert len(result.stderr) < 1000


def test_a_note_is_bounded(run_ir, write_playbook):
    write_playbook("playbooks/spin.yaml", TEMPLATE_PLAYBOOK.format(message="fine"))
    incident = run_ir("run", "spin", "--non-interactive").stdout.split()[1].rstrip(":")
    result = run_ir("note", incident, "x" * 100_001)
    assert result.returncode == 1
    assert result.stderr.startswith("error: a note message of 100001 characters; at most 100000 are recorded")


def test_an_import_writes_every_row_or_none(run_ir, write_playbook, isolated):
    write_playbook("playbooks/spin.yaml", TEMPLATE_PLAYBOOK.format(message="fine"))
    incident = run_ir("run", "spin", "--non-interactive").stdout.split()[1].rstrip(":")
    before = run_ir("timeline", incident, "--json").stdout
    rows = [f'{{"datetime": "2026-03-29T14:{n % 60:02d}:00+00:00", "message": "row {n}"}}' for n in range(1500)]
    rows[1200] = '{"datetime": "2026-03-29T14:00:00+00:00", "message": "bad \\ud800 row"}'
    (isolated / "edr.jsonl").write_text("\n".join(rows) + "\n")
    result = run_ir("timeline", incident, "--import", "edr.jsonl")
    assert result.returncode == 1
    assert "edr.jsonl: 1 bad row(s), nothing was imported:\nedr.jsonl:1201: a lone surrogate ('\\ud800') is not text" \
        in result.stderr
    assert run_ir("timeline", incident, "--json").stdout == before
    rows[1200] = '{"datetime": "9999-12-31T23:59:59-05:00", "message": "year 10000 in UTC"}'
    (isolated / "edr.jsonl").write_text("\n".join(rows) + "\n")
    result = run_ir("timeline", incident, "--import", "edr.jsonl")
    assert result.returncode == 1
    assert "edr.jsonl:1201: `datetime` '9999-12-31T23:59:59-05:00' is outside the years 1 to 9999 (UTC)" in result.stderr
    assert run_ir("timeline", incident, "--json").stdout == before
    del rows[1200]
    (isolated / "edr.jsonl").write_text("\n".join(rows) + "\n")
    result = run_ir("timeline", incident, "--import", "edr.jsonl")
    assert result.returncode == 0, result.stderr
    assert "1499 events imported" in result.stdout
