"""Runner benchmarks (issue 3): time to the first prompt of `ir run supply-chain`, cold; the engine's overhead per
step in a non-interactive dry run; durable timeline appends per second.

    python bench/run.py [--steps 400] [--events 2000] [--repeat 5]

Budgets: under 5 ms a step (integration I/O excluded), at least 1,000 appends/s. Prints figures; exit 0.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IR = [str(Path(sys.executable).with_name("ir"))]  # the console script beside this interpreter


def first_prompt(home: Path) -> float:
    """Seconds from starting `ir run supply-chain` until its first question is on the terminal."""
    master, slave = pty.openpty()
    began = time.perf_counter()
    process = subprocess.Popen([*IR, "run", "supply-chain", "--dry-run"], stdin=slave, stdout=slave, stderr=slave,
                               env={**os.environ, "IR_HOME": str(home)})
    os.close(slave)
    seen = b""
    try:
        while b"> " not in seen:
            if time.perf_counter() - began > 60:
                raise RuntimeError(f"no prompt after 60 s:\n{seen.decode(errors='replace')}")
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 4096)
        return time.perf_counter() - began
    finally:
        process.kill()
        process.wait()
        os.close(master)


def playbook(steps: int) -> str:
    kinds = [
        '{{id: s{n}, kind: note, title: "Note {n}", phase: containment, message: "note {n} {{{{ inputs.x }}}}"}}',
        '{{id: s{n}, kind: manual, title: "Work {n}", phase: containment, instructions: "do {n}", checklist: [a, b]}}',
        '{{id: s{n}, kind: prompt, title: "Ask {n}", phase: containment, questions: [{{id: q{n}, type: integer, default: 1}}]}}',
        '{{id: s{n}, kind: decision, title: "Pick {n}", phase: containment, question: "?", default: a, '
        'choices: [{{id: a, label: A}}, {{id: b, label: B}}]}}',
        '{{id: s{n}, kind: notify, title: "Post {n}", phase: containment, message: "update {n}"}}',
    ]
    body = "\n".join("  - " + kinds[n % len(kinds)].format(n=n) for n in range(steps))
    return f'id: bench\ntitle: Bench\nversion: "1.0.0"\ninputs: [{{id: x, type: string, default: y}}]\nsteps:\n{body}\n'


def run_seconds(folder: Path, steps: int) -> float:
    path = folder / f"bench-{steps}.yaml"
    path.write_text(playbook(steps))
    began = time.perf_counter()
    subprocess.run([*IR, "run", str(path), "--dry-run", "--non-interactive"], check=True, capture_output=True,
                   env={**os.environ, "IR_HOME": str(folder / "home")})
    return time.perf_counter() - began


def appends(folder: Path, count: int) -> float:
    from ir.run.incidents import open_incident
    from ir.store.records import Draft
    from ir.store.sqlite import SqliteStore

    store = SqliteStore(folder / "appends.db")
    incident = open_incident(store, "bench", "1.0.0", "Bench", "low", {"bench": b"id: bench"}, "s0",
                             actor="bench", live=False)
    began = time.perf_counter()
    for n in range(count):
        store.record(incident.id, Draft("note", "bench", f"note {n}", data={"n": n}))
    elapsed = time.perf_counter() - began
    store.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prompt = statistics.median(first_prompt(folder / f"p{i}") for i in range(args.repeat))
        small = statistics.median(run_seconds(folder, 5) for _ in range(args.repeat))
        large = statistics.median(run_seconds(folder, args.steps) for _ in range(args.repeat))
        per_step = (large - small) / (args.steps - 5) * 1000
        rate = statistics.median(appends(folder, args.events) for _ in range(3))
    print(f"time to first prompt, ir run supply-chain (cold, median of {args.repeat}): {prompt * 1000:.0f} ms")
    print(f"engine overhead per step, non-interactive dry run ({args.steps} vs 5 steps): {per_step:.2f} ms"
          f"  budget < 5 ms: {'ok' if per_step < 5 else 'OVER BUDGET'}")
    print(f"durable timeline appends (synchronous=FULL, one transaction each): {rate:.0f} events/s"
          f"  budget >= 1000: {'ok' if rate >= 1000 else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
