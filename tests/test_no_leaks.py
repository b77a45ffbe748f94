"""No scenario's text leaks into another incident: for every answers file of a main playbook, what the dry run
would post to Slack or file in Jira (the `integration.dry_run` events: their messages and data) names no other
scenario's distinctive terms. The shared sub-playbooks (status-update, evidence-handling, intrusion,
after-action-review, data-breach) run inside every main playbook, so a scenario's example text in one of them
shows up here as a leak (review finding ST-01: a TeleMessage exercise posted the 3CX situation report)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_bundled_playbooks import FILES, _ids, runs  # noqa: F401  (runs: the same session-wide dry runs)

# Each case's distinctive terms, and the playbooks whose own runs may name them. A term is matched as a whole
# word, without regard to case. Keep it honest: a 3CX supply-chain run may say 3CX, a phishing run may not.
TERMS: dict[str, tuple[set[str], list[str]]] = {
    "3CX (March 2023)": ({"supply-chain"}, [
        "3CX", "3CXDesktopApp", "Halvard", "IconStorages", "ICONICSTEALER", "SUDDENICON", "Gopuram", "X_TRADER",
        "VEILEDSIGNAL", "UNC4736", "d3dcompiler_47.dll", "ffmpeg.dll", "WS-FIN-014",
        # the 3CX situation report that status-update's examples used to post into every incident (ST-01)
        "affected builds", "beaconed", "desk phones"]),
    "TeleMessage (2025)": ({"exploited-vulnerability"}, [
        "TeleMessage", "TM SGNL", "Smarsh", "heapdump", "CVE-2025-48927", "CVE-2025-48928", "CVE-2025-47729"]),
    "LockBit ransomware": ({"ransomware"}, ["LockBit", ".lockbit"]),
    "invoice-4471 BEC": ({"phishing-bec"}, ["examp1e-supplier", "invoice 4471"]),
    "public S3 export": ({"data-breach"}, ["acme-exports-prod"]),
    "Lumma on a developer laptop": ({"malware-host"}, ["Lumma", "ws-dev-031", "cdn-telemetry-check"]),
    "leaked AWS key": ({"cloud-credential"}, ["AKIAIOSFODNN7EXAMPLE", "111122223333", "ci-deploy"]),
    "Pellucid support breach": ({"vendor-breach-notice"}, ["Pellucid", "svc-pellucid", "VR-0412"]),
    "Ivanti Connect Secure": ({"edge-compromise"}, ["Ivanti", "CVE-2025-22457", "vpn.example.com"]),
}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(term)}(?![\w])", re.IGNORECASE)


def test_the_term_table_names_playbooks_that_have_answers_files():
    playbooks = {f.stem.split("--")[0] for f in FILES}
    assert set().union(*(owners for owners, _ in TERMS.values())) <= playbooks


@pytest.mark.parametrize("file", FILES, ids=_ids(FILES))
def test_nothing_posted_or_filed_names_another_scenario(file, runs):  # noqa: F811
    run = runs[file.name]
    assert run.events, run.result.stderr
    posted = [(e["step"], text) for e in run.events if e["kind"] == "integration.dry_run"
              for text in [e["message"], *_strings({k: v for k, v in e["data"].items()
                                                    if k != "key"})]]  # the idempotency key: incident id, step path
    assert posted  # every branch posts or files something
    leaks = sorted({f"{step}: {term!r} ({case})" for case, (owners, terms) in TERMS.items()
                    if run.playbook not in owners for term in terms for step, text in posted
                    if _pattern(term).search(text)})
    assert leaks == []


def test_the_check_finds_a_leak():
    old_example = "14 hosts had affected builds; 3 beaconed; all 14 isolated or uninstalled"  # status-update 1.0.0
    assert [t for t in TERMS["3CX (March 2023)"][1] if _pattern(t).search(old_example)] == ["affected builds",
                                                                                              "beaconed"]
    assert _pattern("3CX").search("*Now:* 14 hosts had 3CX builds")
    assert _pattern("heapdump").search("GET /management/heapdump")
    assert not _pattern("3CX").search("a 3CXY string") and not _pattern(".lockbit").search("files.lockbitx")
