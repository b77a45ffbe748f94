"""Large incidents (issue 18): a timeline of a million events and playbooks of thousands of steps.

    python bench/large.py [--events 1000000] [--rows 100000] [--steps 500,1000,2000,4000,5000]

An incident of `--events` events is written straight through ir.store.sqlite.SqliteStore in batches (the mix of
bench/export.py, with milestones), then the real `ir` runs on it, each command in a fresh process: `ir verify`,
every `ir export` format, `ir verify --file` of the JSON export, `ir timeline --import` of a CSV file of `--rows`
rows, `ir status` and `ir timeline --limit`. Each figure is events (or rows) per second with its ratio to the bare
loop, canonical JSON and SHA-256 chained in plain Python, measured in the same run; and the command's peak memory
(maximum resident set size, interpreter and imports included). Then a dry run of a playbook of each size in
`--steps`, in process through ir.run.drive with an AnswersResponder: the time per step must not grow with the
playbook. Prints a Markdown table; exit 0.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from export import BATCH, drafts, measure  # noqa: E402  (a script beside this one)
from run import playbook  # noqa: E402

FORMATS = ("json", "csv", "timesketch-jsonl", "timesketch-csv", "markdown", "html")
BUDGETS = {"verify": 50_000, "verify --file": 50_000, "json": 40_000, "csv": 40_000, "timesketch-jsonl": 40_000,
           "timesketch-csv": 40_000, "import": 30_000}  # events (rows) per second
MEMORY = 100  # MiB, every export
MILESTONES = ("detected", "declared", "contained", "eradicated", "recovered")


def incident(db: Path, count: int) -> str:
    """An incident of `count` events on a small real playbook (so that `ir status` can read it)."""
    from ir.run.incidents import open_incident
    from ir.store.records import Draft
    from ir.store.sqlite import SqliteStore

    store = SqliteStore(db)
    try:
        found = open_incident(store, "bench", "1.0.0", "Bench", "high", {"bench": playbook(5).encode()}, "s0",
                              actor="bench", live=False)
        every = max(1, count // (len(MILESTONES) + 1))
        for start in range(1, count, BATCH):
            batch = drafts(min(BATCH, count - start))
            for n in range(len(batch)):
                if (start + n) % every == 0 and (start + n) // every <= len(MILESTONES):
                    name = MILESTONES[(start + n) // every - 1]
                    batch[n] = Draft("milestone", "bench", name, data={"milestone": name})
            store.record(found.id, batch)
        return found.id
    finally:
        store.close()


def bare(count: int) -> float:
    """Events per second of the bare loop: each event as a dict, canonical JSON, SHA-256 over it and the previous
    hash, in plain Python."""
    events = [{"incident": "IR-20261201-BENCH0", "seq": n + 1, "kind": d.kind, "occurred_at": d.occurred_at or
               "2026-12-01T22:15:00.123Z", "recorded_at": "2026-12-01T22:15:00.123Z", "actor": d.actor,
               "message": d.message, "phase": d.phase, "step": d.step, "data": d.data}
              for n, d in enumerate(drafts(count))]
    began, prev = time.perf_counter(), "0" * 64
    for event in events:
        event["prev_hash"] = prev
        prev = hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                              .encode()).hexdigest()
    return count / (time.perf_counter() - began)


def rows_file(path: Path, count: int) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("datetime", "message", "timestamp_desc", "host", "user"))
        for n in range(count):
            writer.writerow((f"2026-03-29T13:{n // 60 % 60:02d}:{n % 60:02d}+00:00", f"process start {n}",
                             "Process Start", f"WS-{n % 500:03d}", "alice"))


def per_step(folder: Path, steps: int) -> float:
    """Milliseconds per step of a dry run of a playbook of `steps` steps, in process."""
    from ir.format.catalog import Catalog
    from ir.integrations.registry import capabilities
    from ir.run.answers import Answers, AnswersResponder
    from ir.run.drive import drive, preflight, start
    from ir.run.outbox import open_outbox
    from ir.store.sqlite import SqliteStore

    path = folder / f"steps-{steps}.yaml"
    path.write_text(playbook(steps))
    home = folder / f"home-{steps}"
    home.mkdir()
    os.environ["IR_HOME"] = str(home)
    bundle = Catalog(capabilities).bundle(str(path))
    store = SqliteStore(home / "ir.db")
    try:
        preflight(Answers(), bundle, non_interactive=True, dry_run=True)
        began = time.perf_counter()
        found = start(store, bundle, "bench", live=False)
        outbox = open_outbox(store, bundle, found, "bench", say=lambda text: None)
        responder = AnswersResponder(Answers(), person=None, examples=True, say=lambda text: None)
        result = drive(store, bundle, found.id, "bench", responder, outbox, wait=5)
        assert result.status == "finished"
        return (time.perf_counter() - began) / steps * 1000
    finally:
        store.close()


def verdict(rate: float, budget: int | None) -> str:
    return "-" if budget is None else f">= {budget / 1000:.0f}k: " + ("ok" if rate >= budget else "OVER BUDGET")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--steps", default="500,1000,2000,4000,5000")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load:.1f} at the start")
    limit = bare(min(args.events, 200_000))
    print(f"bare loop (canonical JSON + SHA-256, chained, plain Python): {limit:,.0f} events/s")
    rows: list[tuple[str, float, str, str, str]] = []  # work, rate, unit, memory, verdict

    def add(work: str, count: int, figures: tuple[float, float], budget: int | None, unit: str = "events/s",
            memory_budget: bool = False) -> None:
        mib, seconds = figures
        rate = count / seconds
        memory = f"{mib:.0f} MiB" + ((" ok" if mib < MEMORY else " OVER") if memory_budget else "")
        rows.append((work, rate, unit, memory, verdict(rate, budget)))
        print(f"  {work}: {seconds:.2f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir()
        began = time.perf_counter()
        found = incident(home / "ir.db", args.events)
        print(f"wrote {args.events} events in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        add("`ir verify`", args.events, measure(home, "verify", found), BUDGETS["verify"])
        for fmt in FORMATS:
            out = folder / f"export.{fmt}"
            add(f"`ir export --format {fmt}`", args.events, measure(home, "export", found, "-f", fmt, "-o", str(out)),
                BUDGETS.get(fmt), memory_budget=True)
        add("`ir verify --file`", args.events, measure(home, "verify", "--file", str(folder / "export.json")),
            BUDGETS["verify --file"])
        mib, seconds = measure(home, "status", found)
        rows.append(("`ir status`", seconds * 1000, "ms", f"{mib:.0f} MiB", "-"))
        try:
            mib, seconds = measure(home, "timeline", found, "--kind", "milestone", "--limit", "20")
            rows.append(("`ir timeline --kind milestone --limit 20`", seconds * 1000, "ms", f"{mib:.0f} MiB", "-"))
        except subprocess.CalledProcessError:  # before issue 18: no such options
            pass
        imported = folder / "import.csv"
        rows_file(imported, args.rows)
        add(f"`ir timeline --import` ({args.rows:,} CSV rows)", args.rows,
            measure(home, "timeline", found, "--import", str(imported)), BUDGETS["import"], "rows/s")
        steps = [int(n) for n in args.steps.split(",")]
        costs = [per_step(folder, n) for n in steps]
    print(f"\n{args.events:,} events; the ratio is to the bare loop's {limit:,.0f} events/s\n")
    print("| work | rate | ratio | budget | peak memory |")
    print("| --- | --- | --- | --- | --- |")
    for work, rate, unit, memory, judged in rows:
        ratio = f"{rate / limit:.2f}" if unit != "ms" else "-"
        print(f"| {work} | {rate:,.0f} {unit} | {ratio} | {judged} | {memory} |")
    print("\ndry run, in process, per step: " + ", ".join(f"{n:,} steps {c:.2f} ms" for n, c in zip(steps, costs))
          + f"; largest / smallest {costs[-1] / costs[0]:.2f}")


if __name__ == "__main__":
    main()
