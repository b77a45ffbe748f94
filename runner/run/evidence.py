"""Evidence custody: what a file was when it was recorded (SHA-256, size, where), and optionally a private copy.

The file is read, never changed. A copy goes to IR_HOME/evidence/<incident>/<sha256>-<name>, created 0600.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from ir.errors import IrError
from ir.paths import home


def describe(path: Path, incident_id: str, *, copy: bool = False) -> dict[str, Any]:
    """The custody record of `path`: absolute path, SHA-256, size, and where the copy went (if asked)."""
    path = path.expanduser()
    if path.is_dir():
        raise IrError(f"{path}: a directory, not a file", hint="record each file, or an archive of the directory "
                                                             "(tar -czf evidence.tgz DIR)")
    if not path.is_file():
        raise IrError(f"{path}: no such file", hint="give the path of the file to record as evidence")
    try:
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        size = path.stat().st_size
    except OSError as exc:
        raise IrError(f"{path}: cannot read it ({exc.strerror})", hint="check the file's permissions") from None
    record: dict[str, Any] = {"path": str(path.resolve()), "sha256": digest, "size": size}
    if copy:
        record["copy"] = str(_keep(path, incident_id, digest))
    return record


def _keep(path: Path, incident_id: str, digest: str) -> Path:
    folder = home() / "evidence"
    for directory in (folder, folder / incident_id):
        directory.mkdir(mode=0o700, exist_ok=True)
    folder /= incident_id
    target = folder / f"{digest[:16]}-{path.name}"
    if not target.exists():
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target
