"""Evidence custody, in process (issue 14): what a file was when it was recorded (SHA-256, size, where, the target
of a link), the private copy (0600 in 0700 folders, under any umask, kept once per content), and what is refused.
The CLI's `ir evidence` is tested in tests/test_resilience.py; these run for each mutant of ir.run.evidence."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from ir.errors import IrError
from ir.run.evidence import CHUNK, custody_record


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_file_is_recorded_by_its_hash_and_size_and_not_copied_unless_asked(isolated):
    data = os.urandom(CHUNK * 2 + 5)  # more than one read
    (isolated / "memory.raw").write_bytes(data)
    assert custody_record(Path("memory.raw"), "IR-1") == {"path": str(isolated / "memory.raw"),
                                                         "sha256": hashlib.sha256(data).hexdigest(),
                                                         "size": len(data)}
    assert not (Path(os.environ["IR_HOME"]) / "evidence").exists()


def test_a_copy_is_private_named_by_its_hash_and_kept_once(isolated, open_umask):
    data = b"PK\x03\x04 triage"
    digest = hashlib.sha256(data).hexdigest()
    (isolated / "triage.zip").write_bytes(data)
    record = custody_record(isolated / "triage.zip", "IR-1", copy=True)
    kept = Path(os.environ["IR_HOME"]) / "evidence" / "IR-1" / f"{digest[:16]}-triage.zip"
    assert record == {"path": str(isolated / "triage.zip"), "sha256": digest, "size": len(data), "copy": str(kept)}
    assert kept.read_bytes() == data
    assert (mode(kept), mode(kept.parent), mode(kept.parent.parent)) == (0o600, 0o700, 0o700)
    assert custody_record(isolated / "triage.zip", "IR-1", copy=True)["copy"] == str(kept)  # the same content
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]  # once, no temporary file left
    (isolated / "triage.zip").write_bytes(data + b"!")
    other = Path(custody_record(isolated / "triage.zip", "IR-1", copy=True)["copy"])
    assert other != kept and other.read_bytes() == data + b"!" and kept.read_bytes() == data


def test_a_link_is_recorded_with_both_paths(isolated):
    (isolated / "real.log").write_bytes(b"log")
    (isolated / "link.log").symlink_to(isolated / "real.log")
    record = custody_record(isolated / "link.log", "IR-1")
    assert (record["path"], record["link_to"], record["size"]) == (str(isolated / "link.log"),
                                                                   str(isolated / "real.log"), 3)
    assert "link_to" not in custody_record(isolated / "real.log", "IR-1")


def test_what_is_not_a_regular_file_is_refused_and_nothing_is_kept(isolated):
    os.mkfifo(isolated / "pipe")
    (isolated / "folder").mkdir()
    for name, said, hint in [
        ("nope.bin", "no such file", "give the path of the file to record as evidence"),
        ("folder", "a directory, not a file", "record each file, or an archive of the directory "
                                              "(tar -czf evidence.tgz DIR)"),
        ("pipe", "not a regular file (a pipe, socket or device)",
         "record a regular file: save what the pipe or device gives to a file first")]:
        with pytest.raises(IrError) as raised:
            custody_record(isolated / name, "IR-1", copy=True)
        assert (raised.value.message, raised.value.hint) == (f"{isolated / name}: {said}", hint)
    assert not (Path(os.environ["IR_HOME"]) / "evidence").exists()


def test_an_unreadable_file_is_refused_and_leaves_no_spool(isolated):
    if os.getuid() == 0:
        pytest.skip("root reads any file")
    (isolated / "secret.bin").write_bytes(b"x")
    (isolated / "secret.bin").chmod(0)
    with pytest.raises(IrError) as raised:
        custody_record(isolated / "secret.bin", "IR-1", copy=True)
    assert raised.value.message == f"{isolated / 'secret.bin'}: cannot read it (Permission denied)"
    assert list((Path(os.environ["IR_HOME"]) / "evidence" / "IR-1").iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_file_that_is_not_what_its_size_says_or_fails_mid_read_is_refused_and_no_copy_is_left(isolated):
    """/proc/self/status says 0 bytes and reads as more (a file that changed as it was read, as far as a reader can
    tell); /proc/self/mem fails at its first read. Neither is recorded, and no part of a copy stays behind."""
    status = Path("/proc/self/status")
    with pytest.raises(IrError) as raised:
        custody_record(status, "IR-1", copy=True)
    assert raised.value.message == (f"{status}: the file changed while it was read (0 bytes, then 0); nothing was "
                                    "recorded")
    with pytest.raises(IrError) as raised:
        custody_record(Path("/proc/self/mem"), "IR-1", copy=True)
    assert raised.value.message == "/proc/self/mem: cannot read it (Input/output error)"
    assert list((Path(os.environ["IR_HOME"]) / "evidence" / "IR-1").iterdir()) == []
