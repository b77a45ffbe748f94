"""The playbooks' queries select what they are meant to: each fenced ```kql or ```spl block in a step's text is
rendered with the inputs' examples and evaluated (tests/querylogic.py) against the records of
tests/queries/<playbook>.yaml, whose format tests/queries/README.md describes. The evaluator itself is checked
first, on cases taken from the query languages' documentation."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from querylogic import QueryError, kql_has, selects, spl_wildcard

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
QUERIES = Path(__file__).parent / "queries"
QUERY_FILES = sorted(QUERIES.glob("*.yaml"))
FENCE = re.compile(r"^[ \t]*```(kql|spl)[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
LANGUAGES = ("kql", "spl")


# ------------------------------------------------------------------------------------ the evaluator itself

@pytest.mark.parametrize("lhs, rhs, expected", [
    # Microsoft's own example: "KustoExplorerQueryRun" has "Explorer" is false; the terms of
    # "Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun" include ad67d136 and c1db.
    ("Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun", "Explorer", False),
    ("Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun", "c1db", True),
    ("Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun", "kustoexplorerqueryrun", True),
    ("North America", "america", True),  # case-insensitive
    (r"C:\Users\ana\AppData\Local\Programs\3CXDesktopApp\app", "3cx", False),  # the review's SC-01
    (r"C:\Users\ana\AppData\Local\Programs\3CXDesktopApp\app", "3CXDesktopApp", True),
    (r"C:\Program Files\3CX Phone\3CXPhone.exe", "3cx", True),  # a term of its own
    ("https://raw.githubusercontent.com/IconStorages/images", "raw.githubusercontent.com", True),
    ("https://xraw.githubusercontent.com/", "raw.githubusercontent.com", False),
])
def test_kql_has_matches_whole_terms(lhs, rhs, expected):
    assert kql_has(lhs, rhs) is expected


PATH = r"C:\Users\ana\AppData\Local\Programs\3CXDesktopApp\app\3CXDesktopApp.exe"


@pytest.mark.parametrize("query, record, expected", [
    ('T | where FolderPath has "3cx"', {"FolderPath": PATH}, False),
    ('T | where FolderPath contains "3cx"', {"FolderPath": PATH}, True),
    ('T | where FolderPath contains_cs "3cx"', {"FolderPath": PATH}, False),
    ('T | where FolderPath !contains "3cx"', {"FolderPath": PATH}, False),
    ('T | where FileName =~ "3cxdesktopapp.EXE"', {"FileName": "3CXDesktopApp.exe"}, True),
    ('T | where FileName == "3cxdesktopapp.exe"', {"FileName": "3CXDesktopApp.exe"}, False),
    ('T | where FileName in~ ("cmd.exe", "POWERSHELL.EXE")', {"FileName": "powershell.exe"}, True),
    ('T | where FileName in ("cmd.exe", "POWERSHELL.EXE")', {"FileName": "powershell.exe"}, False),
    ('T | where FileName !in~ ("cmd.exe")', {"FileName": "CMD.exe"}, False),
    ('T | where RemoteUrl has_any ("IconStorages", "other")', {"RemoteUrl": "github.com/IconStorages/images"}, True),
    ('T | where RemoteUrl has_all ("IconStorages", "nothere")', {"RemoteUrl": "github.com/IconStorages/images"},
     False),
    ('T | where FolderPath startswith @"C:\\Users\\"', {"FolderPath": PATH}, True),
    ('T | where FolderPath startswith "c:\\\\users\\\\"', {"FolderPath": PATH}, True),  # escaped, case-insensitive
    ('T | where FolderPath endswith "\\\\3cxdesktopapp.exe"', {"FolderPath": PATH}, True),
    ('T | where FolderPath matches regex @"(?i)\\\\3cx[^\\\\]*\\\\"', {"FolderPath": PATH}, True),
    ('T | where FolderPath matches regex "3cx"', {"FolderPath": PATH}, False),  # regex is case-sensitive
    ('T | where Timestamp > ago(30d) | where FileName =~ "a"', {"FileName": "A"}, True),  # time: not evaluated
    ('T | where Timestamp > datetime(2023-01-01) and FileName =~ "a"', {"FileName": "b"}, False),
    ('T | where A =~ "x" or B =~ "y" and C =~ "z"', {"A": "x", "B": "n", "C": "n"}, True),  # and before or
    ('T | where not(A =~ "x") and B =~ "y"', {"A": "x", "B": "y"}, False),
    ('T | where isnotempty(A) | summarize count() by A', {"A": ""}, False),
    ('T | where Count >= 2', {"Count": 3}, True),
    ('T | where A startswith @"C:\\x\\" | summarize count() by A', {"A": "c:\\x\\y"}, True),  # verbatim, ends in \
    ('T | where A == "a|b" | project A', {"A": "a|b"}, True),  # a pipe inside a string does not split
    ("T | join kind=inner (U | where B =~ 'x') on Id | where A =~ 'y'", {"A": "y"}, True),  # a join: passed over
])
def test_kql_filters(query, record, expected):
    assert selects("kql", query, record) is expected


@pytest.mark.parametrize("pattern, value, expected", [
    ("*IconStorages*", "https://raw.githubusercontent.com/IconStorages/images/main/icon12.ico", True),
    ("*iconstorages*", "https://raw.githubusercontent.com/IconStorages/images/main/icon12.ico", True),  # any case
    ("IconStorages", "https://raw.githubusercontent.com/IconStorages/images", False),  # whole value
    ("3cx*", "3CXDesktopApp.exe", True),
])
def test_spl_values_are_whole_case_insensitive_with_wildcards(pattern, value, expected):
    assert spl_wildcard(pattern, value) is expected


@pytest.mark.parametrize("query, record, expected", [
    ('index=proxy url="*IconStorages*"', {"url": "https://raw.githubusercontent.com/IconStorages/x"}, True),
    ('index=proxy url=*iconstorages*', {"url": "https://example.com/other"}, False),
    ('dest IN (a.example, "b.example")', {"dest": "B.EXAMPLE"}, True),
    ('dest IN (*.example)', {"dest": "c.example"}, True),
    ('dest!=a.example', {"dest": None}, False),  # != needs the field
    ('NOT dest=a.example', {"dest": None}, True),  # NOT does not
    ('a=1 b=2 OR c=3', {"a": "1", "b": "0", "c": "3"}, True),  # OR before AND: a=1 AND (b=2 OR c=3)
    ('a=1 b=2 OR c=3', {"a": "0", "b": "2", "c": "3"}, False),
    ('(a=1 b=2) OR c=3', {"a": "0", "b": "2", "c": "3"}, True),
    ('count>5', {"count": 7}, True),
    ('earliest=-30d Image="*\\\\3CXDesktopApp.exe"', {"Image": PATH}, True),
    ('error | stats count by host', {"_raw": "an ERROR happened"}, True),  # bare term against _raw
    ('err', {"_raw": "an ERROR happened"}, False),
    ('x=1 | search y=2', {"x": "1", "y": "3"}, False),
    ('x=1 | where y=2', {"x": "1", "y": "3"}, True),  # eval-style where: not evaluated
])
def test_spl_search_terms(query, record, expected):
    assert selects("spl", query, record) is expected


@pytest.mark.parametrize("language, query, record, message", [
    ("kql", 'T | where FolderPath has "3cx"', {"FileName": "x"}, "no field 'FolderPath'"),
    ("kql", 'T | where tolower(FolderPath) has "3cx"', {"FolderPath": "x"}, "functions of columns"),
    ("kql", 'T | where A in (<hashes>)', {"A": "x"}, "expected a literal, found '<'"),
    ("kql", 'T | where A in ("x"); T2', {"A": "x"}, "outside the evaluated subset"),
    ("kql", "T | summarize count()", {}, "no `| where`"),
    ("spl", "url=*x*", {}, "no field 'url'"),
    ("spl", "host=CASE(LOCALHOST)", {"host": "LOCALHOST"}, "CASE(...) is not evaluated"),
])
def test_what_is_not_evaluated_is_refused(language, query, record, message):
    with pytest.raises(QueryError, match=re.escape(message)):
        selects(language, query, record)


# ------------------------------------------------------------------------------------ the playbooks' queries

def _playbook(playbook_id: str) -> dict[str, Any]:
    return yaml.safe_load((PLAYBOOKS / f"{playbook_id}.yaml").read_text(encoding="utf-8"))


def _typed(variable: dict[str, Any]) -> Any:
    """An input's or question's example (else default), as the type the runner would give it to templates."""
    value = variable.get("example", variable.get("default"))
    if not isinstance(value, str):
        return value
    if variable.get("type") == "date":
        return date.fromisoformat(value)
    if variable.get("type") == "datetime":  # 2026-03-29 14:02 America/Los_Angeles, or ISO 8601
        text, _, zone = value.rpartition(" ")
        if text and ("/" in zone or zone == "UTC"):
            return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
        moment = datetime.fromisoformat(value.split("[")[0])
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return value


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
    same = lambda value, *args: value  # noqa: E731  time arithmetic: its result is not evaluated
    env.filters.update(add_hours=same, add_days=same, add_business_days=same, in_zone=same, timestamp=str)
    return env


def _context(playbook: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    answers = {q["id"]: _typed(q) for s in playbook["steps"] if s.get("kind") == "prompt" for q in s["questions"]}
    return {
        "inputs": inputs,
        "answers": answers,
        "steps": defaultdict(lambda: {"status": "completed", "decision": None, "label": None, "note": None}),
        "roles": {},
        "incident": {"id": "IR-EXAMPLE", "title": playbook.get("title"), "severity": playbook.get("severity"),
                     "exercise": False, "opened_at": datetime.now(UTC)},
        "playbook": {k: playbook.get(k) for k in ("id", "title", "version")},
        "now": datetime.now(UTC),
    }


def _step_text(step: dict[str, Any]) -> str:
    parts = [step.get(k) or "" for k in ("instructions", "question", "message", "description", "comment")]
    parts += step.get("checklist", []) + [c.get("description") or "" for c in step.get("choices", [])]
    return "\n".join(parts)


def rendered_text(playbook_id: str, path: str) -> str:
    """A step's text (a path through include steps: `escalate/scope`), rendered with the inputs' examples and, in
    an included playbook, the values the include step passes."""
    env = _environment()
    playbook = _playbook(playbook_id)
    inputs = {i["id"]: _typed(i) for i in playbook.get("inputs", [])}
    *includes, last = path.split("/")
    for part in includes:
        include = next(s for s in playbook["steps"] if s["id"] == part)
        assert include["kind"] == "include", f"{playbook_id}: {part} is not an include step"
        outer = _context(playbook, inputs)
        playbook = _playbook(include["playbook"])
        inputs = {i["id"]: _typed(i) for i in playbook.get("inputs", [])}
        inputs |= {k: env.from_string(v).render(outer) if isinstance(v, str) else v
                   for k, v in (include.get("inputs") or {}).items()}
    step = next((s for s in playbook["steps"] if s["id"] == last), None)
    assert step is not None, f"{playbook_id}: no step {path}"
    return env.from_string(_step_text(step)).render(_context(playbook, inputs))


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def _cases() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for file in QUERY_FILES:
        for path, examples in (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).items():
            cases += [(file.stem, path, example) for example in examples]
    return cases


CASES = _cases()


def _case_id(case: tuple[str, str, dict[str, Any]]) -> str:
    return f"{case[0]}:{case[1]}:{case[2]['language']}{case[2].get('block', 1)}"


def test_the_query_files_name_bundled_playbooks():
    assert {f.stem for f in QUERY_FILES} <= {p.stem for p in PLAYBOOKS.glob("*.yaml")}


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_each_query_selects_its_match_records_and_not_its_no_match_records(case):
    playbook_id, path, example = case
    assert set(example) <= {"language", "block", "match", "no_match"}, sorted(example)
    language, n = example["language"], example.get("block", 1)
    assert language in LANGUAGES
    found = blocks(rendered_text(playbook_id, path), language)
    assert 1 <= n <= len(found), f"{playbook_id}/{path} has {len(found)} {language} block(s), not a block {n}"
    query = found[n - 1]
    assert example.get("match") and example.get("no_match"), "give records that match and records that do not"
    assert [r for r in example["match"] if not selects(language, query, r)] == [], query
    assert [r for r in example["no_match"] if selects(language, query, r)] == [], query


@pytest.mark.parametrize("playbook_id", sorted(p.stem for p in PLAYBOOKS.glob("*.yaml")))
def test_every_query_in_a_playbook_has_examples(playbook_id):
    covered = {(path, e["language"], e.get("block", 1)) for pid, path, e in CASES if pid == playbook_id}
    missing = []
    for step in _playbook(playbook_id)["steps"]:
        text = _step_text(step)
        for language in LANGUAGES:
            missing += [(step["id"], language, n) for n in range(1, len(blocks(text, language)) + 1)
                        if (step["id"], language, n) not in covered]
    assert missing == [], f"add examples to tests/queries/{playbook_id}.yaml for these (step, language, block)"
