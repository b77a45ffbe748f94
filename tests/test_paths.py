"""Private files, in process (issue 14): ir.paths makes its folders 0700 under any umask and refuses one that is not
a private folder of ours, and the store refuses a store file others can reach or a link. tests/test_modes.py checks
every file the CLI makes; these are the rules, fast enough to run for each mutant of ir.paths (docs/testing.md)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ir.errors import IrError
from ir.paths import home, log_dir
from ir.store.sqlite import SqliteStore

from runs import incident_id


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def refused(monkeypatch: pytest.MonkeyPatch, where: Path) -> str:
    monkeypatch.setenv("IR_HOME", str(where))
    with pytest.raises(IrError) as raised:
        home()
    return f"{raised.value.message}\n  fix: {raised.value.hint}"


def test_home_and_its_log_folder_are_made_private_under_an_open_umask(isolated, monkeypatch, open_umask):
    where = isolated / "a" / "b" / ".ir"
    monkeypatch.setenv("IR_HOME", str(where))
    assert home() == where and log_dir() == where / "logs"
    assert (mode(where), mode(where / "logs")) == (0o700, 0o700)
    assert home() == where  # made once, then found private and used
    assert mode(where) == 0o700


def test_a_home_that_is_open_a_link_or_a_file_is_refused_and_left_as_it_is(isolated, monkeypatch):
    shared = isolated / "shared"
    shared.mkdir()
    for bits in (0o755, 0o750, 0o705, 0o701, 0o710):
        shared.chmod(bits)
        assert refused(monkeypatch, shared) == (
            f"cannot use {shared} for ir's files: others can reach it (mode {bits:04o})\n"
            f"  fix: make it private with `chmod 700 {shared}` (check what is in it first), or set IR_HOME to a new "
            "directory")
        assert mode(shared) == bits
    shared.chmod(0o700)
    (isolated / "link").symlink_to(shared)
    assert refused(monkeypatch, isolated / "link") == (
        f"cannot use {isolated / 'link'} for ir's files: a symbolic link\n"
        "  fix: set IR_HOME to a directory you can write to, or unset it")
    (isolated / "file").write_text("x")
    assert refused(monkeypatch, isolated / "file") == (
        f"cannot use {isolated / 'file'} for ir's files: not a directory\n"
        "  fix: set IR_HOME to a directory you can write to, or unset it")
    assert refused(monkeypatch, isolated / "file" / "below") == (
        f"cannot use {isolated / 'file' / 'below'} for ir's files: Not a directory\n"
        "  fix: set IR_HOME to a directory you can write to, or unset it")


def test_without_ir_home_the_platform_folder_is_used(isolated, monkeypatch, open_umask):
    monkeypatch.delenv("IR_HOME")
    where = home()
    assert where == Path(os.environ["XDG_DATA_HOME"]) / "ir" and mode(where) == 0o700


def test_a_store_file_others_can_reach_or_a_link_is_refused(isolated, open_umask):
    SqliteStore(isolated / "home" / "ir.db").close()
    assert mode(isolated / "home") == 0o700 and mode(isolated / "home" / "ir.db") == 0o600
    for suffix in ("", "-wal", "-shm"):
        path = isolated / "home" / f"ir.db{suffix}"
        path.touch(0o600)
        for bits in (0o604, 0o640, 0o660, 0o606, 0o601, 0o610):
            path.chmod(bits)
            with pytest.raises(IrError) as raised:
                SqliteStore(isolated / "home" / "ir.db")
            assert raised.value.message == f"the store file {path} is not used: others can reach it (mode {bits:04o})"
        path.chmod(0o600)
    SqliteStore(isolated / "home" / "ir.db").close()
    os.replace(isolated / "home" / "ir.db", isolated / "elsewhere.db")
    (isolated / "home" / "ir.db").symlink_to(isolated / "elsewhere.db")
    with pytest.raises(IrError) as raised:
        SqliteStore(isolated / "home" / "ir.db")
    assert raised.value.message == f"the store file {isolated / 'home' / 'ir.db'} is not used: a symbolic link"
    assert raised.value.hint == "move it aside and let ir make a new store (or restore yours from a backup)"


def test_a_lock_file_that_is_a_link_is_refused_by_who_drives_and_by_a_run(run_ir, isolated):
    """Not an internal error (as it was: OSError ELOOP from O_NOFOLLOW), and the file it points to is untouched."""
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "look.yaml").write_text(
        'id: look\ntitle: Look\nversion: "1.0.0"\nincident_title: Look\ninputs:\n'
        '  - {id: severity, type: choice, choices: [low, high], default: high}\nsteps:\n'
        '  - {id: look, kind: manual, title: Look, phase: detection-analysis, instructions: Look.}\n')
    opened = run_ir("run", "look", "--var", "severity=high", input="")
    assert "Paused" in opened.stdout, opened.stderr
    incident = incident_id(opened)
    ir_home = Path(os.environ["IR_HOME"])
    target = isolated / "elsewhere"
    target.write_text("kept\n")
    lock = ir_home / "locks" / f"{incident}.lock"
    lock.unlink()  # the run's own, replaced by a link
    lock.symlink_to(target)
    said = (f"error: the lock file {lock} is not used: a symbolic link\n  fix: remove it: ir makes its lock files "
            "itself, and a link there would point them elsewhere\n")
    for command in (("incidents",), ("status", incident), ("resume", incident)):
        result = run_ir(*command, input="")
        assert (result.returncode, result.stderr) == (1, said), command
    assert target.read_text() == "kept\n" and lock.is_symlink()


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder another user owns needs root")
def test_a_home_another_user_owns_is_refused(isolated, monkeypatch):
    theirs = isolated / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    assert refused(monkeypatch, theirs) == (
        f"cannot use {theirs} for ir's files: it belongs to another user (uid 65534)\n"
        "  fix: set IR_HOME to a directory of your own, or unset it")


def test_a_store_path_that_is_a_folder_or_another_users_file_is_refused(isolated):
    (isolated / "home").mkdir(mode=0o700)
    (isolated / "home" / "ir.db").mkdir(mode=0o700)
    with pytest.raises(IrError) as raised:
        SqliteStore(isolated / "home" / "ir.db")
    assert raised.value.message == f"the store file {isolated / 'home' / 'ir.db'} is not used: not a regular file"
    if os.getuid() == 0:  # a file another user owns, private to them
        (isolated / "home" / "ir.db").rmdir()
        (isolated / "home" / "ir.db").touch(0o600)
        os.chown(isolated / "home" / "ir.db", 65534, 65534)
        with pytest.raises(IrError) as raised:
            SqliteStore(isolated / "home" / "ir.db")
        assert raised.value.message == (f"the store file {isolated / 'home' / 'ir.db'} is not used: it belongs to "
                                        "another user (uid 65534)")
