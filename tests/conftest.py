"""Every test runs isolated: its own IR_HOME, HOME, XDG directories and working directory, no playbook path, no
Slack or Jira credentials. `run_ir` runs the real `ir` command line in a subprocess with that environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import inprocess
import pytest

pytest_plugins = ["fakes.plugin", "pytester"]

# The console script `pip install .` put beside this interpreter: exactly what a user runs.
IR = [str(Path(sys.executable).with_name("ir"))]

# Where the `ir` under test finds its bundled files: its installed package, which is not this source tree when the
# project is installed without -e (as in CI). `-P` keeps the working directory off sys.path.
_WHERE = "from importlib import resources; print(resources.files('ir.playbooks'))"
INSTALLED = Path(subprocess.run([sys.executable, "-P", "-c", _WHERE], capture_output=True, text=True, check=True,
                                cwd="/").stdout.strip())
BUNDLED_SCENARIOS = sorted((INSTALLED / "scenarios").glob("*.yaml"))

RunIr = Callable[..., "subprocess.CompletedProcess[str]"]
WritePlaybook = Callable[[str, str], Path]
Tree = Callable[[], dict[str, tuple[int, int]]]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per CPU. Many tests spend much of their time waiting, not computing: for the disk
    (every commit is synced), a lane's backoff, a fake server's delay, a subprocess, Chromium; with one worker per
    CPU the CPUs idle meanwhile."""
    return 2 * len(os.sched_getaffinity(0))


ISOLATED_PREFIXES = ("IR_", "SLACK_", "JIRA_")  # no variable of these from the machine reaches a test


def isolated_environment(root: Path) -> dict[str, str]:
    """The variables that point ir's home, IR_HOME and the XDG directories under root (made: root/home)."""
    home = root / "home"
    home.mkdir(parents=True)
    xdg = {f"XDG_{kind}_HOME": str(root / "xdg" / kind.lower()) for kind in ("CONFIG", "DATA", "CACHE", "STATE")}
    return {"HOME": str(home), "IR_HOME": str(home / ".ir"), "IR_ACTOR": "tester", "TZ": "UTC", **xdg,
            "XDG_RUNTIME_DIR": str(root / "xdg" / "runtime")}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point everything ir could read or write into tmp_path; return the working directory."""
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in isolated_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def run_ir() -> RunIr:
    """`run_ir("validate", "x.yaml", input=None, env={"IR_PLAYBOOK_PATH": ...}, timeout=60, process=False)`: the
    `ir` command line in the isolated environment (plus `env`), in the test's working directory, read back as a
    subprocess's `CompletedProcess`; it runs in the test's process unless `process` (tests/inprocess.py)."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60,
            process: bool = False) -> subprocess.CompletedProcess[str]:
        return inprocess.run(args, input=input, env={**os.environ, **(env or {})}, cwd=Path.cwd(), timeout=timeout,
                             process=process)

    return run


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most open umask a user can have (000): whatever ir does not make private, others can read and write."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def write_playbook(isolated: Path) -> WritePlaybook:
    """`write_playbook("playbooks/x.yaml", text)` writes the dedented text under the working directory (making
    folders) and returns the path relative to it, as a user would type it."""

    def write(name: str, text: str) -> Path:
        path = isolated / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return Path(name)

    return write


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """`tree()`: every file and folder under tmp_path (home, IR_HOME, XDG dirs, the working directory) with its
    size and modification time, to assert that a command wrote nothing."""

    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p.relative_to(tmp_path)): (p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
                for p in sorted(tmp_path.rglob("*"))}

    return snapshot


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A PostgreSQL cluster of this test session's own (tests/postgres_server.py); skips where none is installed,
    except under CI."""
    from postgres_server import Server

    server = Server()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The store the test runs against: every test that takes it runs on both."""
    return str(request.param)


@pytest.fixture
def make_store(store_kind: str, isolated: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., object]]:
    """`make_store()`: a new empty store of the kind under test (`make_store("other")` another one); closed after
    the test."""
    from ir.store.postgres import PostgresStore
    from ir.store.sqlite import SqliteStore

    made: list[SqliteStore | PostgresStore] = []

    def make(name: str = "ir") -> SqliteStore | PostgresStore:
        store: SqliteStore | PostgresStore
        if store_kind == "sqlite":
            store = SqliteStore(isolated / f"{name}.db")
        else:
            store = PostgresStore(request.getfixturevalue("postgres").database())
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
