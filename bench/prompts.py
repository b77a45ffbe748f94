"""Prompts and keystrokes of the main supply-chain path (issue 16): `ir run supply-chain --dry-run` at a
pseudo-terminal (pexpect), answered as a responder would with a fixed set of answers (the inputs, roles, counts and
choices of tests/answers/supply-chain--hands-on-keyboard.yaml, the 3CX case), to the end of the playbook. Counts the
prompts answered and the keystrokes typed (each character, and Enter), and the events recorded by kind.

    python bench/prompts.py [--answers tests/answers/supply-chain--hands-on-keyboard.yaml] [--ir PATH] [--prompts N]

(--prompts N: end the input after N prompts, the run pauses there; for the smoke test.)

The responder types the fewest keys the terminal offers for the same answers: Enter where Enter means the answer
(a checklist item done, a default, an example), `a` for all of a checklist when it is offered, choice ids for
decisions. Budget: at most half of the prompts and keystrokes of the terminal before issue 16 (310 prompts, 2,400
keystrokes by hand; this script's figures on that code are in docs/performance.md). Prints figures; exit 0.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pexpect
import yaml

ROOT = Path(__file__).resolve().parents[1]
IR = str(Path(sys.executable).with_name("ir"))
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
_LABEL = re.compile(r"^(\S.*?) \((?:integer|string|text|datetime|date|boolean|choice|multi-choice|url|email|"
                    r"list|hash|ip|domain|cve)[^)]*\)$")
_CHOICE = re.compile(r"^  (\d+)\. (.*?)(?: \(default\))?$")


def _plain(text: str) -> str:
    return re.sub(r"\*\*|__|`", "", text)


class Answers:
    """The fixed answers, looked up by what the terminal shows: a question's label, a role's title, a decision's
    choices."""

    def __init__(self, path: Path):
        from ir.format.catalog import Catalog
        from ir.integrations.registry import capabilities

        given = yaml.safe_load(path.read_text())
        bundle = Catalog(capabilities).bundle("supply-chain")
        root = bundle.playbook
        self.by_label: dict[str, tuple[Any, Any]] = {}  # label: (variable, answer or None)
        for var in root.inputs:
            self.by_label[var.label or var.id] = (var, given.get("inputs", {}).get(var.id))
        self.roles = {f"{r.title}: who?": given.get("roles", {}).get(r.id)
                      for r in root.roles}
        self.role_ids = {r.id: given.get("roles", {}).get(r.id) for r in root.roles}
        self.decisions: dict[tuple[str, ...], str] = {}
        steps = given.get("steps", {})
        for playbook in bundle.playbooks.values():
            for step in playbook.steps:
                if step.kind == "prompt":
                    for q in step.questions:
                        answer = next((v[q.id] for k, v in steps.items() if isinstance(v, dict) and q.id in v
                                       and k.rsplit("/", 1)[-1] == step.id), None)
                        self.by_label.setdefault(q.label or q.id, (q, answer))
                elif step.kind == "decision":
                    labels = tuple(_plain(c.label) for c in step.choices)
                    answer = next((v if isinstance(v, str) else v.get("choice") for k, v in steps.items()
                                   if k.rsplit("/", 1)[-1] == step.id), None)
                    if answer:
                        self.decisions[labels] = answer

    @staticmethod
    def typed(var: Any, answer: Any) -> str:
        """The answer as typed; empty when Enter gives it (the default, or the example offered)."""
        if answer is None:
            return ""
        text = ", ".join(str(a) for a in answer) if isinstance(answer, list) else str(answer)
        shown = var.default if var.default is not None else var.example
        if shown is not None and (", ".join(str(a) for a in shown) if isinstance(shown, list) else str(shown)) == text:
            return "" if var.default is not None else text  # the example is typed unless Enter offers it
        return text


class Driver:
    def __init__(self, answers: Answers, home: Path, ir: str):
        env = {**os.environ, "IR_HOME": str(home / ".ir"), "HOME": str(home), "TZ": "UTC", "COLUMNS": "1000",
               "IR_ACTOR": "bench", "IR_SEND_DELAY": "0"}
        for name in list(env):
            if name.startswith(("SLACK_", "JIRA_")):
                del env[name]
        self.child = pexpect.spawn(ir, ["run", "supply-chain", "--dry-run"], cwd=str(home), encoding="utf-8",
                                   env=env, dimensions=(60, 1000), timeout=60)
        self.answers, self.raw, self.prompts, self.keys = answers, "", 0, 0
        self.kinds: Counter[str] = Counter()
        self.in_text = False

    def send(self, line: str, kind: str) -> None:
        self.child.sendline(line)
        self.prompts, self.keys = self.prompts + 1, self.keys + len(line) + 1
        self.kinds[kind] += 1

    def wait_prompt(self) -> str | None:
        """The screen once it waits for input (the last line is a prompt and nothing more comes); None at the end."""
        while True:
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=0.05)
                continue
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                return None
            screen = _ANSI.sub("", self.raw)
            last = screen.rsplit("\n", 1)[-1]
            if ">" in last or "[Y/n]" in last or "[y/N]" in last:
                return screen

    def run(self, limit: int | None) -> None:
        while (screen := self.wait_prompt()) is not None:
            self.raw = ""
            if limit is not None and self.prompts >= limit:
                self.child.sendeof()
                continue
            self.answer(screen)

    def answer(self, screen: str) -> None:
        lines = [line.rstrip() for line in screen.split("\n")]
        last = screen.rsplit("\n", 1)[-1]
        if self.in_text and last.strip() == ">":
            self.in_text = False
            return self.send("", "text end")
        if "done? [Y/n" in last:
            return self.send("a" if "a: all" in last else "", "checklist")
        if "[r]ecord it now" in last:
            return self.send("n not in the bench" if "n and why" in last else "n", "evidence")
        if "why is it not captured?" in last:
            return self.send("not in the bench", "evidence")
        if "when did this happen?" in last:
            return self.send("", "when")
        if "note (optional)" in last or "why? (optional)" in last:
            return self.send("", "optional note")
        if "choice number" in last:
            labels = tuple(m.group(2) for line in lines if (m := _CHOICE.match(line)))
            return self.send(self.answers.decisions.get(labels, ""), "decision")
        if "roles:" in last and "=" in last:  # one table of roles
            given = [f"{n}={who}" for n, (_, who) in enumerate(self.answers.role_ids.items(), 1)
                     if who and f"{n}. " in screen and f"{n}={who}" not in screen]
            return self.send("; ".join(given), "roles")
        if "[s]kip" in last and "[h]old" in last:
            return self.send("", "send")
        if "[p]ause" in last:
            return self.send("c", "complete")
        for line in reversed(lines[:-1]):
            if (title := line.partition(" (Enter")[0]) in self.answers.roles:
                return self.send(self.answers.roles[title] or "", "role")
            if (m := _LABEL.match(line)) and m.group(1) in self.answers.by_label:
                var, given = self.answers.by_label[m.group(1)]
                typed = self.answers.typed(var, given)
                if typed and f"[Enter: {typed}]" in last:
                    typed = ""
                if typed == "" and var.required and var.default is None and "[Enter:" not in last:
                    typed = Answers.typed(var, var.example) if var.example is not None else "x"
                self.in_text = var.type == "text" and bool(typed)
                return self.send(typed, "value")
        raise RuntimeError(f"a prompt the bench does not know: {last!r}\n{screen[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, default=ROOT / "tests/answers/supply-chain--hands-on-keyboard.yaml")
    parser.add_argument("--ir", default=IR, help="the ir to drive (another checkout's, to compare)")
    parser.add_argument("--prompts", type=int, default=None, help="stop after this many prompts (a paused run)")
    args = parser.parse_args()
    answers = Answers(args.answers)
    with tempfile.TemporaryDirectory() as tmp:
        driver = Driver(answers, Path(tmp), args.ir)
        began = time.perf_counter()
        driver.run(args.prompts)
        took = time.perf_counter() - began
        driver.child.close()
        import subprocess

        env = {**os.environ, "IR_HOME": str(Path(tmp) / ".ir"), "HOME": tmp}
        listed = subprocess.run([args.ir, "incidents", "--json"], env=env, capture_output=True, text=True,
                                check=False).stdout
        found = re.search(r'"id": "([^"]+)"', listed)
        events: Counter[str] = Counter()
        if found:
            import json

            shown = subprocess.run([args.ir, "timeline", found.group(1), "--json"], env=env, capture_output=True,
                                   text=True, check=False).stdout
            events = Counter(json.loads(line)["kind"] for line in shown.splitlines() if line.startswith("{"))
    print(f"main supply-chain path ({args.answers.name}), exit {driver.child.exitstatus}, {took:.1f} s")
    print(f"prompts answered: {driver.prompts:,}")
    print(f"keystrokes: {driver.keys:,}")
    print("prompts by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(driver.kinds.items())))
    print(f"events recorded: {sum(events.values()):,}: " + ", ".join(f"{k} {n}" for k, n in sorted(events.items())))


if __name__ == "__main__":
    main()
