"""Where ir keeps its files: IR_HOME if set, else the platform's user data directory; private (0700)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ir.errors import IrError


def home() -> Path:
    configured = os.environ.get("IR_HOME")
    if configured:
        path = Path(configured)
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("ir", appauthor=False))
    _private_dir(path, parents=True)
    return path


def log_dir() -> Path:
    path = home() / "logs"
    _private_dir(path)
    return path


def _private_dir(path: Path, *, parents: bool = False) -> None:
    """Make the directory (0700). One that already exists must be ours and private: ir never changes the mode of a
    directory it did not make, and never uses one that another user owns or can write to (they could read the
    notes, or plant a store or a link in it)."""
    try:
        try:
            path.mkdir(mode=0o700, parents=parents)
            return
        except FileExistsError:
            found = path.lstat()
    except OSError as exc:
        raise IrError(f"cannot use {path} for ir's files: {exc.strerror}",
                      hint="set IR_HOME to a directory you can write to, or unset it") from None
    if not stat.S_ISDIR(found.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a directory"
        raise IrError(f"cannot use {path} for ir's files: {what}",
                      hint="set IR_HOME to a directory you can write to, or unset it")
    if found.st_uid != os.getuid():
        raise IrError(f"cannot use {path} for ir's files: it belongs to another user (uid {found.st_uid})",
                      hint="set IR_HOME to a directory of your own, or unset it")
    if found.st_mode & 0o077:
        raise IrError(f"cannot use {path} for ir's files: others can reach it (mode "
                      f"{stat.S_IMODE(found.st_mode):04o})",
                      hint=f"make it private with `chmod 700 {path}` (check what is in it first), or set IR_HOME "
                           f"to a new directory")
