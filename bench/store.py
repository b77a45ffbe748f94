"""Team mode on PostgreSQL (issue 15): hash-chained appends with several writers, and how soon another machine's
`ir timeline --follow` shows a commit.

    python bench/store.py [--events 500] [--writers 1,4,16] [--follows 30] [--url postgresql://...]

Without --url it starts a throwaway cluster of its own (tests/postgres_server.py: initdb and pg_ctl on a Unix socket,
fsync off, so the figures are the store's and not the disk's). Each writer is its own process with its own
connection, recording `--events` notes one transaction each (as `ir note` does), all at once: on one incident (the
appends serialise on its row) and on one incident each. The baseline is the same number of plain one-row INSERTs
and COMMITs by one process, measured in the same run. Then `--follows` notes recorded by this process while a real
`ir timeline --follow` runs on the same store: the time from before each commit to the line read from its output.
Then cold `ir list` with and without IR_STORE set (it opens no store). Prints the figures and the budgets; exit 0.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IR = str(Path(sys.executable).with_name("ir"))
BUDGET_ONE_INCIDENT_4 = 500  # events/s, one incident, 4 writers (the issue's)
BUDGET_FOLLOW_MS = 200  # median


def writer(url: str, incident: str, events: int, ready: Any) -> None:
    from ir.store.postgres import PostgresStore
    from ir.store.records import Draft

    store = PostgresStore(url)
    ready.wait()  # every writer connected: they start together
    for n in range(events):
        store.record(incident, Draft("note", f"writer-{os.getpid()}", f"note {n} from {os.getpid()}"))
    store.close()


def opened(url: str, incident: str) -> None:
    from ir.store.postgres import PostgresStore
    from ir.store.records import Draft, Incident

    store = PostgresStore(url)
    store.create(Incident(incident, "bench", "1.0.0", "h" * 64, "Bench", "high", "dry-run", False,
                          "2026-03-29T21:00:00.000Z", "bench"), {}, Draft("incident.opened", "bench", "opened"))
    store.close()


def appends(url: str, writers: int, events: int, *, shared: bool, tag: str) -> float:
    """Events per second, `writers` processes at once, on one incident or one each."""
    incidents = [f"{tag}-{n}" for n in range(1 if shared else writers)]
    for incident in incidents:
        opened(url, incident)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(writers + 1)
    procs = [context.Process(target=writer, args=(url, incidents[n % len(incidents)], events, ready))
             for n in range(writers)]
    for proc in procs:
        proc.start()
    ready.wait(timeout=120)
    began = time.perf_counter()
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0, f"a writer failed ({proc.exitcode})"
    return writers * events / (time.perf_counter() - began)


def bare(url: str, events: int) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bare (n INTEGER, message TEXT, data TEXT)")
        began = time.perf_counter()
        for n in range(events):
            with conn.transaction():
                conn.execute("INSERT INTO bare VALUES (%s, %s, %s)", (n, f"note {n}", '{"a":1}'))
        return events / (time.perf_counter() - began)


def follow_latency(url: str, follows: int) -> list[float]:
    from ir.store.postgres import PostgresStore
    from ir.store.records import Draft

    opened(url, "follow")
    env = {**os.environ, "IR_STORE": url}
    proc = subprocess.Popen([IR, "timeline", "follow", "--follow"], stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    lines.get(timeout=30)  # the opening event: it follows now
    store = PostgresStore(url)
    out = []
    try:
        for n in range(follows):
            began = time.perf_counter()
            store.record("follow", Draft("note", "bench", f"followed {n}"))
            while f"followed {n}" not in lines.get(timeout=10):
                pass
            out.append((time.perf_counter() - began) * 1000)
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        store.close()
    return out


def cold_list(envs: list[dict[str, str]], repeat: int = 11) -> list[float]:
    """The median wall time of a cold `ir list` in each environment, runs interleaved (a load change hits both)."""
    times: list[list[float]] = [[] for _ in envs]
    for _ in range(repeat):
        for env, found in zip(envs, times):
            began = time.perf_counter()
            subprocess.run([IR, "list"], env=env, stdout=subprocess.DEVNULL, check=True)
            found.append((time.perf_counter() - began) * 1000)
    return [statistics.median(found) for found in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500, help="notes per writer")
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--follows", type=int, default=30)
    parser.add_argument("--url", help="an empty database to use (default: a throwaway cluster)")
    args = parser.parse_args()
    server = None
    if args.url:
        url = args.url
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from postgres_server import Server

        server = Server()
        url = server.database()
    try:
        from ir.store.postgres import PostgresStore

        PostgresStore(url).close()  # the schema, before the writers race for it
        baseline = bare(url, args.events)
        print(f"baseline: one process, plain INSERT + COMMIT: {baseline:,.0f} rows/s")
        print("| writers | one incident: events/s (ratio to baseline) | one incident each: events/s (ratio) |")
        print("| --- | --- | --- |")
        figures = {}
        for count in (int(n) for n in args.writers.split(",")):
            one = appends(url, count, args.events, shared=True, tag=f"one{count}")
            each = appends(url, count, args.events, shared=False, tag=f"each{count}")
            figures[count] = one
            print(f"| {count} | {one:,.0f} ({one / baseline:.2f}) | {each:,.0f} ({each / baseline:.2f}) |")
        if 4 in figures:
            verdict = "ok" if figures[4] >= BUDGET_ONE_INCIDENT_4 else "OVER BUDGET"
            print(f"one incident, 4 writers: {figures[4]:,.0f} events/s  budget >= {BUDGET_ONE_INCIDENT_4}: {verdict}")
        latencies = follow_latency(url, args.follows)
        median = statistics.median(latencies)
        verdict = "ok" if median < BUDGET_FOLLOW_MS else "OVER BUDGET"
        print(f"commit to another process's `ir timeline --follow` line: median {median:.1f} ms, max "
              f"{max(latencies):.1f} ms over {len(latencies)}  budget median < {BUDGET_FOLLOW_MS} ms: {verdict}")
        plain = {k: v for k, v in os.environ.items() if k != "IR_STORE"}
        without, with_url = cold_list([plain, {**plain, "IR_STORE": url}])
        print(f"cold `ir list`: {without:.0f} ms without IR_STORE, {with_url:.0f} ms with it; ratio "
              f"{with_url / without:.2f}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
