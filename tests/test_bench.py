"""The benchmarks in bench/ cannot break unnoticed: each script runs in a tiny configuration, as bench/README.md
tells people to run it (from the repository root, with this interpreter), and must print every figure it promises.
The figures themselves are not checked: tests must not depend on the machine's speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"-?\d+(?:\.\d+)?"
COUNT = r"\d[\d,]*"  # 1,337
EXPORTED = ("markdown", "html", "json", "csv", "timesketch-jsonl", "timesketch-csv")

# script, its tiny arguments, the lines its output must have (regular expressions, in order)
BENCHES = {
    "startup.py": (["--repeat", "1"], [
        *(rf"{re.escape(name)} +{NUMBER} +{NUMBER} +{NUMBER}x +\S+  (?:ok|OVER BUDGET)?$"
          for name in ("minimal Typer --help", "ir --help", "ir list", "ir validate (bundled)")),
        r"slowest top-level imports of `ir list`",
        rf"  \S+ +{NUMBER} ms$",
    ]),
    "run.py": (["--steps", "10", "--events", "20", "--repeat", "1"], [
        rf"time to first prompt, ir run supply-chain \(cold, median of 1\): {NUMBER} ms$",
        rf"engine overhead per step, non-interactive dry run \(10 vs 5 steps\): {NUMBER} ms  budget",
        rf"durable timeline appends .*: {NUMBER} events/s  budget",
    ]),
    "delivery.py": (["--actions", "3"], [
        rf"3 posts straight through slack_sdk: {NUMBER} ms each$",
        rf"3 posts through ir's outbox: +{NUMBER} ms each$",
        rf"overhead per action: {NUMBER} ms  budget",
        rf"fan-out to 4 channels, one answering after 2 s: the responder waited {NUMBER} ms$",
    ]),
    "export.py": (["--events", "300", "--small", "30"], [
        r"\| command \| 30 events: peak memory, time \| 300 events: peak memory, time \| output at 300 \|$",
        *(rf"\| `ir export --format {fmt}` \| {NUMBER} MiB, {NUMBER} s \| {NUMBER} MiB, {NUMBER} s \| {NUMBER} MiB \|$"
          for fmt in EXPORTED),
        rf"\| `ir verify --file` \(the JSON export\) \| {NUMBER} MiB, {NUMBER} s \| {NUMBER} MiB, {NUMBER} s \|  \|$",
        rf"\| `ir timeline --import` \(JSONL\) \| {NUMBER} MiB, {NUMBER} s \| {NUMBER} MiB, {NUMBER} s \|  \|$",
    ]),
    "large.py": (["--events", "300", "--rows", "50", "--steps", "10,20"], [
        r"\| work \| wall clock \| CPU time, ratio to the bare loop \| budget \| peak memory \|$",
        rf"\| `ir verify` \| {COUNT} events/s \| {COUNT} events/s, {NUMBER} \| ratio >= 0\.56 \(50k\): "
        rf"(?:ok|OVER BUDGET) \| {NUMBER} MiB \|$",
        *(rf"\| `ir export --format {fmt}` \| {COUNT} events/s \| {COUNT} events/s, {NUMBER} \| \S.* \| "
          rf"{NUMBER} MiB (?:ok|OVER) \|$" for fmt in ("json", "csv", "timesketch-jsonl", "timesketch-csv", "markdown",
                                                     "html")),
        rf"\| `ir verify --file` \| {COUNT} events/s \| {COUNT} events/s, {NUMBER} \| ratio >= 0\.56 \(50k\): "
        rf"(?:ok|OVER BUDGET) \| {NUMBER} MiB \|$",
        rf"\| `ir timeline --import` \(50 CSV rows\) \| {COUNT} rows/s \| {COUNT} rows/s, {NUMBER} \| "
        rf"ratio >= 0\.33 \(30k\): (?:ok|OVER BUDGET) \|",
        rf"\| `ir status` \| {COUNT} ms \| {COUNT} ms \| - \| {NUMBER} MiB \|$",
        rf"\| `ir timeline --kind milestone --limit 20` \| {COUNT} ms \| {COUNT} ms \| - \| {NUMBER} MiB \|$",
        r"^(?:every budget holds|OVER BUDGET: .+)$",
        rf"dry run, in process, per step: 10 steps {NUMBER} ms, 20 steps {NUMBER} ms; largest / smallest {NUMBER}$",
    ]),
    "prompts.py": (["--prompts", "25"], [
        rf"main supply-chain path \(supply-chain--hands-on-keyboard.yaml\), exit 0, {NUMBER} s$",
        r"prompts answered: 25$",
        rf"keystrokes: {COUNT}$",
        r"prompts by kind: .*value \d+",
        rf"events recorded: {COUNT}: .*input.set \d+",
    ]),
    "store.py": (["--events", "5", "--writers", "1,4", "--follows", "2"], [
        rf"baseline: one process, plain INSERT \+ COMMIT: {COUNT} rows/s$",
        r"\| writers \| one incident: events/s \(ratio to baseline\) \| one incident each: events/s \(ratio\) \|$",
        rf"\| 1 \| {COUNT} \({NUMBER}\) \| {COUNT} \({NUMBER}\) \|$",
        rf"\| 4 \| {COUNT} \({NUMBER}\) \| {COUNT} \({NUMBER}\) \|$",
        rf"one incident, 4 writers: {COUNT} events/s  budget >= 500: (?:ok|OVER BUDGET)$",
        rf"commit to another process's `ir timeline --follow` line: median {NUMBER} ms, max {NUMBER} ms over 2  "
        rf"budget median < 200 ms: (?:ok|OVER BUDGET)$",
        rf"cold `ir list`: {NUMBER} ms without IR_STORE, {NUMBER} ms with it; ratio {NUMBER}$",
    ]),
}


def test_every_bench_script_has_a_smoke_test():
    assert sorted(p.name for p in (ROOT / "bench").glob("*.py")) == sorted(BENCHES)


@pytest.mark.parametrize("script", sorted(BENCHES))
def test_a_bench_script_runs_small_and_prints_its_figures(script):
    if script == "store.py":
        from postgres_server import binaries, unavailable

        if binaries() is None:
            unavailable("bench/store.py starts a cluster of its own")
    arguments, expected = BENCHES[script]
    result = subprocess.run([sys.executable, f"bench/{script}", *arguments], cwd=ROOT, capture_output=True,
                            text=True, timeout=110, check=False)
    assert result.returncode == 0, result.stderr
    assert "FAILED" not in result.stdout, result.stdout  # startup.py: a command it timed failed
    lines = iter(result.stdout.splitlines())
    for pattern in expected:  # each in order, in the lines after the one before
        assert any(re.search(pattern, line) for line in lines), f"no line matches {pattern!r}:\n{result.stdout}"
