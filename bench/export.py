"""Export benchmark (issue 6): an incident of 100,000 events (and one of 10,000, for comparison) exported in every
format by the real `ir export`, then `ir verify --file` on the JSON export and `ir timeline --import` of a
100,000-line JSONL file. Each command runs in a fresh process; the figures are its wall time and peak memory
(maximum resident set size, interpreter and imports included).

    python bench/export.py [--events 100000] [--small 10000]

The incident is written straight through ir.store.sqlite.SqliteStore, in batches, with a mix of events like a
real run's: steps starting and ending, checklist ticks, inputs, notes (some with an earlier time), decisions,
integration actions, evidence, skipped steps and imported rows; a third of them are listed by the report.
Streaming formats (json, csv, timesketch-*) must keep memory flat: about the same peak at both sizes. Prints a
Markdown table; exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("markdown", "html", "json", "csv", "timesketch-jsonl", "timesketch-csv")
BATCH = 10_000
# Runs `ir ARGS` and prints its peak memory (KiB) and wall time: a fresh parent per command, so that
# RUSAGE_CHILDREN holds that one command only.
MEASURE = """\
import resource, subprocess, sys, time
began = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - began)
"""


def drafts(count: int) -> list:
    """`count` events in a cycle of twenty that looks like a run of a playbook."""
    from ir.store.records import Draft

    out = []
    for n in range(count):
        step, phase, kind = f"s{n // 20}", ("containment", "eradication", "recovery")[n // 20 % 3], n % 20
        key = f"bench/{step}/post"
        event = {
            0: Draft("step.started", "bench", f"Step {n // 20}", phase=phase, step=step,
                     data={"kind": "manual", "role": None, "sla": "1h"}),
            1: Draft("checklist.checked", "bench", "done: check EDR", phase=phase, step=step, data={"item": 0}),
            2: Draft("checklist.checked", "bench", "done: check proxy", phase=phase, step=step, data={"item": 1}),
            3: Draft("note", "bench", f"looked at host WS-{n:06d}", phase=phase, step=step),
            4: Draft("input.set", "bench", "answers.hosts = 12", phase=phase, step=step,
                     data={"name": "answers.hosts", "scope": "", "value": 12}),
            5: Draft("decision", "bench", "Contain how? -> Isolate", phase=phase, step=step,
                     data={"choice": "isolate", "label": "Isolate", "rationale": "C2 on two hosts"}),
            6: Draft("integration.requested", "bench", "slack notify.post requested", phase=phase, step=step,
                     data={"key": key, "integration": "slack", "action": "notify.post"}),
            7: Draft("integration.dry_run", "bench", "would post to the incident channel", phase=phase, step=step,
                     data={"key": key, "integration": "slack", "action": "notify.post"}),
            8: Draft("evidence", "bench", f"triage of WS-{n:06d}", phase=phase, step=step,
                     data={"path": f"/cases/ws{n}.zip", "sha256": f"{n:064x}", "size": n}),
            9: Draft("note", "bench", "first beacon", occurred_at="2026-03-29T14:02:00-07:00", phase=phase, step=step),
            10: Draft("step.skipped", "bench", "not needed", phase=phase, step=step, data={"next": None}),
            11: Draft("imported", "EDR", f"process start {n}", occurred_at="2026-03-29T13:00:00+00:00",
                      data={"source": "edr.csv", "line": n, "fields": {"host": "WS-042"}}),
        }.get(kind) or Draft("step.completed", "bench", "", phase=phase, step=step, data={"next": None})
        out.append(event)
    return out


def incident(db: Path, count: int) -> str:
    from ir.run.incidents import open_incident
    from ir.store.sqlite import SqliteStore

    store = SqliteStore(db)
    try:
        found = open_incident(store, "bench", "1.0.0", "Bench", "high", {"bench": b"id: bench\n"}, "s0",
                              actor="bench", live=False)
        for start in range(1, count, BATCH):
            store.record(found.id, drafts(min(BATCH, count - start)))
        return found.id
    finally:
        store.close()


def measure(home: Path, *args: str) -> tuple[float, float]:
    """(peak MiB, seconds) of `ir ARGS`."""
    ir = str(Path(sys.executable).with_name("ir"))
    result = subprocess.run([sys.executable, "-c", MEASURE, ir, *args], capture_output=True, text=True, check=True,
                            env={**os.environ, "IR_HOME": str(home)})
    kib, seconds = result.stdout.split()
    return int(kib) / 1024, float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir(mode=0o700)  # ir uses only a private home
        began = time.perf_counter()
        small, large = incident(home / "ir.db", args.small), incident(home / "ir.db", args.events)
        print(f"wrote {args.small + args.events} events in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        for fmt in FORMATS:
            figures = []
            for found in (small, large):
                out = folder / f"{found}.{fmt}"
                figures.append(measure(home, "export", found, "--format", fmt, "-o", str(out)))
            size = (folder / f"{large}.{fmt}").stat().st_size / 2**20
            rows.append((f"`ir export --format {fmt}`", *figures, f"{size:.1f} MiB"))
        rows.append(("`ir verify --file` (the JSON export)",
                     measure(home, "verify", "--file", str(folder / f"{small}.json")),
                     measure(home, "verify", "--file", str(folder / f"{large}.json")), ""))
        lines = folder / "import.jsonl"
        with lines.open("w") as fh:
            for n in range(args.events):
                fh.write(json.dumps({"message": f"process start {n}", "timestamp": 1680123720000000 + n,
                                     "timestamp_desc": "Process Start", "host": "WS-042"}) + "\n")
        small_lines = folder / "import-small.jsonl"
        small_lines.write_text("".join(lines.read_text().splitlines(keepends=True)[:args.small]))
        rows.append(("`ir timeline --import` (JSONL)", measure(home, "timeline", small, "--import", str(small_lines)),
                     measure(home, "timeline", large, "--import", str(lines)), ""))
    print(f"| command | {args.small:,} events: peak memory, time | {args.events:,} events: peak memory, time "
          f"| output at {args.events:,} |")
    print("| --- | --- | --- | --- |")
    for name, (small_mib, small_s), (large_mib, large_s), size in rows:
        print(f"| {name} | {small_mib:.0f} MiB, {small_s:.2f} s | {large_mib:.0f} MiB, {large_s:.2f} s | {size} |")


if __name__ == "__main__":
    main()
