"""Where ir keeps its files: IR_HOME if set, else the platform's user data directory; private (0700)."""

from __future__ import annotations

import os
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
    """Make the directory (0700), or make one that already exists and is ours private too."""
    try:
        path.mkdir(mode=0o700, parents=parents, exist_ok=True)
        found = path.stat()
        if found.st_mode & 0o077 and found.st_uid == os.getuid():
            path.chmod(0o700)
    except OSError as exc:
        raise IrError(f"cannot use {path} for ir's files: {exc.strerror}",
                      hint="set IR_HOME to a directory you can write to, or unset it") from None
