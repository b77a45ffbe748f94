"""Which store a command uses: a PostgreSQL URL (a team's shared store), `sqlite:PATH` (an SQLite file), or by
default the embedded SQLite file in IR_HOME. psycopg is imported only when a URL names PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from ir.errors import IrError, UsageError
from ir.store.records import Store

SCHEMES = ("postgresql", "postgres")


def open_store(url: str | None = None, *, say: Callable[[str], None] | None = None) -> Store:
    """The store at `url` (None: the embedded file in IR_HOME). `say` is told, in one line, when a server's
    connection is lost and found again."""
    if not url or url.startswith("sqlite:"):
        from pathlib import Path

        from ir.store.sqlite import SqliteStore

        path = url.removeprefix("sqlite:").removeprefix("//") if url else ""
        return SqliteStore(Path(path).expanduser() if path else None)
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise UsageError(f"the store URL names {scheme!r}: ir keeps incidents in PostgreSQL (postgresql://...) or, "
                         "with no URL, in its embedded SQLite file",
                         hint="set IR_STORE (or [store] url in ir.toml) to postgresql://USER@HOST/DATABASE, or unset "
                              "it")
    try:
        from ir.store.postgres import PostgresStore
    except ImportError:
        raise IrError("the store is a PostgreSQL URL, and psycopg is not installed",
                      hint="pip install 'ir[postgres]'") from None
    return PostgresStore(url, say=say)
