"""Private files (issue 14): under `umask 000`, every file ir creates is 0600 and every directory 0700, whatever
the umask: the store and its -wal and -shm files, the locks and their folder, the error log and its folder, the
exports folder and the report in it, an export written with -o, and evidence copies with their folders."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from test_integrations import live, run_live  # noqa: F401 - the live playbook and its environment
from test_resilience import _BareOk

from runs import incident_id


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most open umask a user can have: whatever ir does not make private, others can read and write."""
    old = os.umask(0)
    yield
    os.umask(old)


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
    write_playbook("playbooks/chan.yaml", """\
        id: chan
        title: Channel
        version: "1.0.0"
        steps:
          - {id: open, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
        """)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BareOk)  # an answer ir cannot read: a bug, logged
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        crashed = run_ir("run", "chan", "--non-interactive", env={
            "SLACK_BOT_TOKEN": "xoxb-test", "IR_SLACK_BASE_URL": f"http://127.0.0.1:{server.server_port}/"})
    finally:
        server.shutdown()
        server.server_close()
    assert crashed.returncode == 3, crashed.stderr

    home = Path(os.environ["IR_HOME"])
    found = modes(home)
    made = {"ir.db", "ir.db-wal", "ir.db-shm", "locks", f"locks/{incident}.lock", "logs", "logs/ir-error.log",
            "exports", f"exports/{incident}-report.md", "evidence", f"evidence/{incident}"}
    assert made <= set(found), sorted(found)
    assert [p for p in found if p.startswith(f"evidence/{incident}/")], found  # the copy
    assert {p: m for p, m in found.items() if m != ("0700" if (home / p).is_dir() else "0600")} == {}
    assert f"{stat.S_IMODE(home.stat().st_mode):04o}" == "0700"
    assert f"{stat.S_IMODE(exported.stat().st_mode):04o}" == "0600"
    assert list(exported.parent.iterdir()) == [exported]  # no temporary file left beside it
