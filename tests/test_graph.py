"""`ir graph` prints Mermaid that Mermaid's own parser accepts: every bundled playbook, and a playbook written to
break it (keyword ids, labels full of Mermaid's punctuation). The parser is the npm `mermaid` package, pinned in
tests/mermaid/ (`npm ci` there; .ci/run does it). Outside CI the test skips when node or the package is missing;
under CI=true it fails instead."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ir.format.catalog import Catalog
from ir.format.graph import mermaid
from ir.integrations.registry import capabilities

ORACLE = Path(__file__).parent / "mermaid"
BUNDLED = sorted(p.stem for p in (Path(__file__).parents[1] / "playbooks").glob("*.yaml"))

HOSTILE = """\
id: hostile
title: Hostile labels
version: "1.0.0"
steps:
  - {id: end, kind: note, title: "end (the word) [a] {b} | c", phase: detection-analysis, message: x}
  - {id: style, kind: note, title: 'quote " hash #1 #quot; `tick`', phase: detection-analysis, message: x}
  - id: class
    kind: decision
    title: "click (here)"
    phase: containment
    question: q
    choices:
      - {id: a, label: "Yes (go) [now] | {x}", next: graph}
      - {id: b, label: 'No "stop" #2', next: end}
  - {id: graph, kind: note, title: "graph", phase: containment, message: x, on_failure: subgraph}
  - {id: subgraph, kind: note, title: "subgraph\\nline two", phase: containment, message: x}
  - {id: containment, kind: note, title: "containment", phase: containment, message: x}
  - {id: call, kind: note, title: "call", phase: containment, message: x}
  - {id: href, kind: note, title: "href", phase: containment, message: x}
  - {id: interpolate, kind: note, title: "interpolate", phase: containment, message: x}
  - {id: flowchart, kind: note, title: "flowchart", phase: containment, message: x}
"""


def parse(charts: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Each chart's verdict from Mermaid's parser: "ok (flowchart-v2)" or its error."""
    node = shutil.which("node")
    if node is None or not (ORACLE / "node_modules" / "mermaid").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("Mermaid's parser is needed under CI: node, and `npm ci` in tests/mermaid (.ci/run does it)")
        pytest.skip("node or tests/mermaid/node_modules missing: run `npm ci` in tests/mermaid")
    files = []
    for name, chart in charts.items():
        (file := tmp_path / f"{name}.mmd").write_text(chart, encoding="utf-8")
        files.append(str(file))
    result = subprocess.run([node, str(ORACLE / "parse.mjs"), *files], capture_output=True, text=True, timeout=120,
                            check=False)
    verdicts = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert sorted(verdicts) == sorted(files), result.stderr
    return {Path(file).stem: verdict for file, verdict in verdicts.items()}


def test_every_bundled_playbook_graph_parses_in_mermaid(isolated, tmp_path):
    catalog = Catalog(capabilities)  # the bundled set: the isolated working directory has no ./playbooks
    charts = {playbook: mermaid(catalog.load(playbook).playbook) for playbook in BUNDLED}
    assert parse(charts, tmp_path) == dict.fromkeys(BUNDLED, "ok (flowchart-v2)")


def test_keyword_ids_and_punctuation_in_labels_still_parse(run_ir, write_playbook, tmp_path):
    write_playbook("hostile.yaml", HOSTILE)
    result = run_ir("graph", "hostile.yaml")
    assert (result.returncode, result.stderr) == (0, "")
    assert parse({"hostile": result.stdout}, tmp_path) == {"hostile": "ok (flowchart-v2)"}
    lines = result.stdout.splitlines()
    assert '    _step_end["end (the word) [a] {b} | c"]' in lines
    assert '    _step_style["quote #quot; hash #35;1 #35;quot; `tick`"]' in lines
    assert '  _step_class -->|"Yes (go) [now] | {x}"| _step_graph' in lines
    assert '  _step_class -->|"No #quot;stop#quot; #35;2"| _end' in lines
    assert '    _step_subgraph["subgraph line two"]' in lines
    assert '  subgraph _containment["containment"]' in lines and "    containment[\"containment\"]" in lines


def test_a_chart_mermaid_refuses_is_reported_by_the_oracle(tmp_path):
    """The oracle can fail: a bare label with parentheses, as `ir graph` printed before, is refused."""
    verdicts = parse({"bare": 'flowchart TD\n  a -->|Payment fraud (BEC)| b\n'}, tmp_path)
    assert verdicts["bare"].startswith("Parse error on line 2:")
