"""`ir` run inside the test process: the command line's own entry point (`ir.cli.app.main`) given the arguments,
environment, working directory and standard input a subprocess would have, and read back as one: a
`CompletedProcess` with the exit code, standard output and standard error, decoded as `text=True` decodes them.

Why: starting the console script costs about a quarter of a CPU-second (Python, Typer, pydantic, the playbooks),
and the suite runs `ir` thousands of times; the 2-core CI machine has four minutes for all of it. What a separate
process is for stays one: a kill -9, a terminal (tests/pseudo.py), runs side by side, start-up imports, a plugin on
PYTHONPATH (`run` starts a subprocess for that one by itself).

What the end of a process would do is done here too, or the test fails: the delivery threads a command leaves are
joined (the interpreter joins them at exit), and one still running after the command's time is an error that
names it. Warnings are filtered as in a fresh interpreter (shown on standard error once, deprecations ignored),
not as the suite's `error` filter would.
"""

from __future__ import annotations

import io
import locale
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


class _Captured(io.BytesIO):
    """A standard stream's bytes, kept when a text wrapper around it is closed (`ir export` detaches its own)."""

    def close(self) -> None:
        pass


def _text(data: bytes) -> str:
    """Bytes as `subprocess.run(text=True)` gives them: the locale's encoding, universal newlines."""
    return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False)).read()


def _exit_code(code: object, stderr: io.TextIOWrapper) -> int:
    """SystemExit's code as a process's exit status (None: 0; a message: printed, 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)
    return 1


def run(args: Sequence[str], *, env: Mapping[str, str], cwd: Path | str, input: str | None = None,
        timeout: float = 60, process: bool = False) -> subprocess.CompletedProcess[str]:
    """`ir ARGS` with this environment, directory and standard input (None: empty); `timeout` bounds the threads
    it leaves (the command itself is bounded by the test's own timeout). In a process of its own (the console
    script) when `process` is true, when the environment sets another PYTHONPATH (a plugin's distribution), or when
    called from a thread other than the main one (the streams swapped here are the process's)."""
    command, env = ["ir", *args], dict(env)  # a copy: it may be os.environ itself, which is swapped below
    if process or env.get("PYTHONPATH") != os.environ.get("PYTHONPATH") or \
            threading.current_thread() is not threading.main_thread():
        return subprocess.run([str(Path(sys.executable).with_name("ir")), *args], input=input, env=env,
                              cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    from ir.cli.app import main

    saved = dict(os.environ), os.getcwd(), sys.argv, sys.stdin, sys.stdout, sys.stderr
    before = set(threading.enumerate())
    out, err = _Captured(), _Captured()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        sys.argv = command
        sys.stdin = io.TextIOWrapper(_Captured((input or "").encode()), encoding="utf-8")
        sys.stdout, sys.stderr = stdout, stderr
        with warnings.catch_warnings(), _fresh_logging():
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc.code, stderr)
            _join_left(before, time.monotonic() + timeout, command)
    finally:
        environ, directory, sys.argv, sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(directory)
    return subprocess.CompletedProcess(command, code, _text(out.getvalue()), _text(err.getvalue()))


@contextmanager
def _fresh_logging() -> Iterator[None]:
    """Logging as a new process has it: no handler (pytest's are set aside), so what a library logs at WARNING
    or above reaches standard error through logging's last resort, as it would at the user's terminal."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers, root.level = [], logging.WARNING
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level


def _join_left(before: set[threading.Thread], deadline: float, command: list[str]) -> None:
    """Wait for the threads the command started, as the end of its process would: the delivery workers finish
    what they hold; the retrier sees its stop within a second. One still running by the deadline fails the test."""
    for thread in threading.enumerate():
        if thread not in before and thread.name.startswith("ir-"):  # ir.run.outbox's (not the fake servers')
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                raise AssertionError(f"`{' '.join(command)}` left the thread {thread.name} running")
