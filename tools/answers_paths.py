"""Print, or write into tests/answers/README.md, the path each answers file takes through its playbook.

tests/test_bundled_playbooks.py compares every answers file's run with the path written under its name in that
README. When a playbook (or a sub-playbook it includes) changes, run this to see the new paths, read the diff,
and keep it if the change is meant: `python tools/answers_paths.py --write`, then `git diff tests/answers/`.
It runs each file in process through the library (`ir.run.drive`), as a dry run, in a temporary store.

usage: python tools/answers_paths.py [--write] [FILE ...]
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = ROOT / "tests" / "answers"
README = ANSWERS / "README.md"


def path_taken(answers_file: Path, folder: Path) -> list[str]:
    from ir.format.catalog import Catalog
    from ir.integrations.registry import capabilities
    from ir.run.answers import Answers, AnswersResponder
    from ir.run.drive import drive, preflight, start
    from ir.run.outbox import open_outbox
    from ir.store.sqlite import SqliteStore

    bundle = Catalog(capabilities, cwd=folder).bundle(answers_file.stem.split("--")[0])
    given = Answers.load(answers_file)
    preflight(given, bundle, non_interactive=True, dry_run=True)
    store = SqliteStore(folder / f"{answers_file.stem}.db")
    try:
        incident = start(store, bundle, "tools", live=False)
        outbox = open_outbox(store, bundle, incident, "tools", say=lambda text: None)
        drive(store, bundle, incident.id, "tools", AnswersResponder(given, person=None, examples=True,
                                                                     say=lambda text: None), outbox)
        taken: list[list[str]] = []
        for event in store.events(incident.id):
            if event.kind == "step.started":
                taken.append([event.step or ""])
            elif event.kind == "decision":
                taken[-1].append(f"-> {event.data['choice']}")
            elif event.kind == "step.skipped" and event.message == "condition false":
                taken[-1].append("(skipped)")
        return [" ".join(parts) for parts in taken]
    finally:
        store.close()


def main(argv: list[str]) -> int:
    write = "--write" in argv
    files = [Path(a) for a in argv if a != "--write"] or sorted(ANSWERS.glob("*.yaml"))
    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # no ./playbooks or ./ir.toml of the caller's
        for file in files:
            path = "\n".join(path_taken(file.resolve(), Path(folder))) + "\n"
            section = re.compile(rf"(^### `{re.escape(file.name)}`\n.*?^```text\n)(.*?)(^```$)", re.M | re.S)
            if not section.search(text):
                print(f"{file.name}: no section in {README.name}; its path:\n{path}", file=sys.stderr)
                continue
            text = section.sub(lambda m, path=path: m.group(1) + path + m.group(3), text)
            if not write:
                print(f"### {file.name}\n{path}")
    if write:
        README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
