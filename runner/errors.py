"""The one error family. The CLI prints an `IrError` once, without a traceback, and exits with its code.

Exit codes (documented in README.md):
  0 success, 1 invalid input or a failed check (validation, verify), 2 usage error,
  3 unexpected internal error, 4 a run stopped because a step failed, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_STEP_FAILED = 4
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where, what, and how to fix it."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        text = f"{self.path}: {self.message}" if self.path else self.message
        if where:
            text = f"{where}: {text}"
        if self.hint:
            text = f"{text}\n  fix: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class IrError(Exception):
    """A user-facing error: bad input, a missing value, an unknown incident. Never a bug."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class UsageError(IrError):
    exit_code = EXIT_USAGE


class InvalidPlaybook(IrError):
    """A file failed to load or validate; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class IncludeProblem(IrError):
    """An include step names a playbook that cannot be included: unknown, invalid, or closing a cycle. Reported
    as a problem at the include step (`ir validate`), never raised to the user on its own."""


class IncidentBusy(IrError):
    """Another process runs the incident: it alone acts on it (its steps and its integration actions)."""


class StepAlreadyDone(IrError):
    """A change that needed a step still open found it completed or skipped meanwhile (by another process): nothing
    of the change was recorded."""

    def __init__(self, path: str, status: str):
        super().__init__(f"step {path} was {status} meanwhile", hint="nothing was changed; `ir timeline` shows by whom")
        self.path, self.status = path, status


class StepFailed(IrError):
    """A step was marked failed and its `on_failure` is `stop`."""

    exit_code = EXIT_STEP_FAILED
