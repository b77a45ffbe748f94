"""`ir` at a pseudo-terminal, as a responder types into it: `Pty` spawns the real command (pexpect), waits for the
exact text the responder would see (ANSI styling stripped), and answers it line by line."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pexpect

from conftest import IR

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
_PADDING = re.compile(r" +\n")  # rich pads Markdown lines to the terminal's width


class Pty:
    def __init__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 30):
        self.child = pexpect.spawn(IR[0], list(args), cwd=str(Path.cwd()), encoding="utf-8", timeout=timeout,
                                   env={**os.environ, "COLUMNS": "200", **(env or {})}, dimensions=(60, 200))
        self.raw, self.pos, self.ended = "", 0, False  # all shown so far; where the next expect looks in `seen`

    @property
    def seen(self) -> str:
        """All shown so far, as plain text: no styling, no padding at the ends of lines."""
        return _PADDING.sub("\n", _ANSI.sub("", self.raw))

    def _read(self) -> None:
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=0.1)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            self.ended = True

    def expect(self, text: str) -> str:
        """Wait until `text` is shown after what the last expect matched; return what was shown between them."""
        deadline = time.monotonic() + self.child.timeout
        while (found := (seen := self.seen).find(text, self.pos)) < 0:
            if self.ended or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} was not shown; after the last match the terminal shows:\n"
                                     f"{seen[self.pos:]}")
            self._read()
        before, self.pos = seen[self.pos:found], found + len(text)
        return before

    def answer_each(self, prompt: str, line: str, until: str) -> int:
        """Type `line` at every `prompt` (a checklist's items, say) until `until` is shown; how many there were."""
        count = 0
        while True:
            seen = self.seen
            at_prompt, at_until = seen.find(prompt, self.pos), seen.find(until, self.pos)
            if at_until >= 0 and (at_prompt < 0 or at_until < at_prompt):
                self.expect(until)
                return count
            if at_prompt >= 0:
                self.answer(prompt, line)
                count += 1
            elif self.ended:
                raise AssertionError(f"neither {prompt!r} nor {until!r} was shown:\n{seen[self.pos:]}")
            else:
                self._read()

    def answer(self, prompt: str, line: str) -> str:
        """Wait for `prompt`, then type `line` and Enter; return what was shown before the prompt."""
        before = self.expect(prompt)
        self.child.sendline(line)
        return before

    def close(self) -> int:
        """Wait for the command to end; its exit status. What it showed last is in `rest()`."""
        while not self.ended:
            self._read()
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 0)

    def rest(self) -> str:
        return self.seen[self.pos:]
