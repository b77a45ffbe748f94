"""Evidence custody: what a file was when it was recorded (SHA-256, size, where), and optionally a private copy.

The file is read once, never changed: the hash is computed from the same bytes that are copied, and the file's
size and modification time are compared before and after, so a file still being written is refused rather than
recorded with a hash its copy does not have. A path that is a symbolic link is recorded with both paths. A copy
goes to IR_HOME/evidence/<incident>/<sha256>-<name>, created 0600.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ir.errors import IrError
from ir.paths import home

CHUNK = 1 << 20


def custody_record(path: Path, incident_id: str, *, copy: bool = False) -> dict[str, Any]:
    """The custody record of `path`: its path (and the target, for a link), SHA-256, size, and where the copy went
    (if asked)."""
    path = path.expanduser()
    try:
        kind = path.stat().st_mode  # before opening it: a FIFO would block the open
    except OSError:
        raise IrError(f"{path}: no such file", hint="give the path of the file to record as evidence") from None
    if stat.S_ISDIR(kind):
        raise IrError(f"{path}: a directory, not a file", hint="record each file, or an archive of the directory "
                                                             "(tar -czf evidence.tgz DIR)")
    if not stat.S_ISREG(kind):
        raise IrError(f"{path}: not a regular file (a pipe, socket or device)",
                      hint="record a regular file: save what the pipe or device gives to a file first")
    given = path.absolute()
    record: dict[str, Any] = {"path": str(given)}
    if path.is_symlink():
        record["link_to"] = str(path.resolve())  # what was read: the link's target
    digest, size, kept = _read(path, incident_id if copy else None)
    record |= {"sha256": digest, "size": size}
    if kept is not None:
        record["copy"] = str(kept)
    return record


def _read(path: Path, incident_id: str | None) -> tuple[str, int, Path | None]:
    """Hash the file in one read, copying the same bytes when `incident_id` is given; refuse a file that changed
    meanwhile."""
    digest, size = hashlib.sha256(), 0
    spool = None
    try:
        with path.open("rb") as src:
            before = os.fstat(src.fileno())
            if incident_id is not None:
                folder = _folder(incident_id)
                spool = tempfile.NamedTemporaryFile(dir=folder, prefix=".incoming-", delete=False)  # noqa: SIM115 - kept or removed below; 0600
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if spool is not None:
                    spool.write(chunk)
            after = os.fstat(src.fileno())
    except OSError as exc:
        _discard(spool)
        raise IrError(f"{path}: cannot read it ({exc.strerror})", hint="check the file's permissions") from None
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or size != after.st_size:
        _discard(spool)
        raise IrError(f"{path}: the file changed while it was read ({before.st_size} bytes, then {after.st_size}); "
                      "nothing was recorded", hint="record it when whatever writes it has finished")
    hexdigest = digest.hexdigest()
    if spool is None:
        return hexdigest, size, None
    spool.close()
    target = Path(spool.name).with_name(f"{hexdigest[:16]}-{path.name}")
    if target.exists():  # the same content kept before
        os.unlink(spool.name)
    else:
        os.replace(spool.name, target)
    return hexdigest, size, target


def _folder(incident_id: str) -> Path:
    folder = home() / "evidence"
    for directory in (folder, folder / incident_id):
        directory.mkdir(mode=0o700, exist_ok=True)
    return folder / incident_id


def _discard(spool: Any) -> None:
    if spool is not None:
        spool.close()
        os.unlink(spool.name)
