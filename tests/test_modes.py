"""Private files (issue 14): under `umask 000`, every file ir creates is 0600 and every directory 0700, whatever
the umask: the store and its -wal and -shm files, the locks and their folder, the error log and its folder, the
exports folder and the report in it, an export written with -o, and evidence copies with their folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from test_integrations import live, run_live  # noqa: F401 - the live playbook and its environment
from test_resilience import a_bug_in_delivery

from ir.store.sqlite import SqliteStore

from runs import incident_id


def modes(root: Path) -> dict[str, str]:
    """Every path under root with its mode (octal), relative to root."""
    return {str(p.relative_to(root)): f"{stat.S_IMODE(p.lstat().st_mode):04o}" for p in sorted(root.rglob("*"))}


def test_every_file_and_folder_ir_makes_is_private_under_an_open_umask(run_ir, live, slack_server, isolated,  # noqa: F811
                                                                      write_playbook, open_umask):
    incident = incident_id(run_live(run_ir, live))
    (isolated / "triage.zip").write_bytes(b"PK\x03\x04 artefact")
    assert run_ir("evidence", incident, "triage.zip", "--copy").returncode == 0
    closed = run_ir("close", incident, "--note", "done", env=live)  # the report goes to exports/, then to Slack
    assert closed.returncode == 0, closed.stdout + closed.stderr
    exported = isolated / "out" / "incident.json"
    exported.parent.mkdir()
    assert run_ir("export", incident, "--format", "json", "-o", str(exported)).returncode == 0
    crashed = a_bug_in_delivery(run_ir, write_playbook)  # a bug: its traceback goes to the error log
    assert crashed.returncode == 3, crashed.stderr

    home = Path(os.environ["IR_HOME"])
    store = SqliteStore(home / "ir.db")  # the -wal and -shm files are there while a command has the store open
    try:
        assert store.incident(incident).status == "closed"
        found = modes(home)
    finally:
        store.close()
    made = {"ir.db", "ir.db-wal", "ir.db-shm", "locks", f"locks/{incident}.lock", "logs", "logs/ir-error.log",
            "exports", f"exports/{incident}-report.md", "evidence", f"evidence/{incident}"}
    assert made <= set(found), sorted(found)
    assert [p for p in found if p.startswith(f"evidence/{incident}/")], found  # the copy
    assert {p: m for p, m in found.items() if m != ("0700" if (home / p).is_dir() else "0600")} == {}
    assert f"{stat.S_IMODE(home.stat().st_mode):04o}" == "0700"
    assert f"{stat.S_IMODE(exported.stat().st_mode):04o}" == "0600"
    assert list(exported.parent.iterdir()) == [exported]  # no temporary file left beside it
