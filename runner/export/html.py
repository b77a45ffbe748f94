"""The post-incident report as one self-contained HTML file: inline CSS, an inline SVG time axis with a lane per
phase (decisions, integration actions, evidence and milestones marked), print rules, and no script, font,
image or style sheet loaded from anywhere (a Content-Security-Policy in the page forbids it, too).

The template (report.html.j2, beside this module) is ours, rendered with autoescaping on: everything recorded
during an incident is text, never markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from importlib import resources
from typing import TextIO

from ir.export.report import (
    LISTINGS,
    MILESTONES,
    OUTCOMES,
    Entry,
    Report,
    chronological,
    counts,
    headline,
    omitted,
    question,
    when_entry,
)
from ir.format.model import PHASES
from ir.times import duration, when, zone_name

WIDTH, LEFT, RIGHT, TOP, LANE, BOTTOM = 1000, 170, 24, 50, 34, 34
PLOT = WIDTH - LEFT - RIGHT
BREAK = 0.2  # a stretch without events longer than this share of the whole is shortened to GAP
GAP = 40
# Tick spacings to choose from, in seconds: the smallest that leaves each tick about TICK_ROOM units.
STEPS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
         14 * 86400, 30 * 86400, 91 * 86400, 365 * 86400)
TICK_ROOM = 110
EDGE = 30  # no tick this close to a segment's ends, where its label would run into the next segment's
LABEL_GAP = 26  # closer marks than this (in SVG units) are not labelled, to keep the labels readable


@dataclass(frozen=True)
class Mark:
    x: float
    shape: str  # decision, done, failed, dry-run, requested, evidence, imported
    label: str
    title: str


@dataclass
class Lane:
    name: str
    css: str  # the phase, "incident" or "imported"
    y: float
    start: float
    end: float
    marks: list[Mark] = field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """A stretch of time with events, and where it lies on the axis."""

    start: datetime
    end: datetime
    left: float
    right: float

    def x(self, moment: datetime) -> float:
        seconds = (self.end - self.start).total_seconds()
        share = (moment - self.start).total_seconds() / seconds if seconds else 0.5
        return round(self.left + share * (self.right - self.left), 1)


@dataclass(frozen=True)
class Chart:
    height: float
    lanes: list[Lane]
    ticks: list[tuple[float, str]]
    breaks: list[tuple[float, float, str]]  # left, right, how long the shortened stretch is
    milestones: list[tuple[float, float, str, str, str]]  # x, label row y, text-anchor, name (or ""), title
    caption: str


def segments(moments: list[datetime]) -> list[Segment]:
    """The axis: stretches of events laid side by side, the long empty stretches between them shortened. Each gets
    a width by its share of the time and of the events (half each), and at least 60 units."""
    moments = sorted(moments)
    total = (moments[-1] - moments[0]).total_seconds()
    clusters = [[moments[0]]]
    for moment in moments[1:]:
        if (moment - clusters[-1][-1]).total_seconds() > BREAK * total:
            clusters.append([])
        clusters[-1].append(moment)
    room = PLOT - GAP * (len(clusters) - 1)
    floor = min(60.0, room / len(clusters))
    lengths = [(c[-1] - c[0]).total_seconds() for c in clusters]
    left, out = float(LEFT), []
    for cluster, length in zip(clusters, lengths):
        share = (length / sum(lengths) if sum(lengths) else 1 / len(clusters)) / 2 + len(cluster) / len(moments) / 2
        width = floor + (room - floor * len(clusters)) * share
        pad = (cluster[-1] - cluster[0]) * 0.03  # so that a mark at either end is not on the break
        out.append(Segment(cluster[0] - pad, cluster[-1] + pad, round(left, 1), round(left + width, 1)))
        left += width + GAP
    return out


def chart(report: Report, tz: tzinfo) -> Chart | None:
    """The time axis: one lane per phase (and per import source), in phase order."""
    spans = {name or "incident": span for name, span in report.phases.items()}
    spans |= {f"imported: {name}": span for name, span in report.sources.items()}
    moments = [m for s in spans.values() for m in (s.first, s.last) if m] + [e.occurred for e in report.timeline]
    if not moments:
        return None
    axis = segments(moments)

    def x(moment: datetime) -> float:
        return next((s for s in reversed(axis) if s.start <= moment), axis[0]).x(moment)

    order = {name: n for n, name in enumerate(("incident", *PHASES))}
    names = sorted(spans, key=lambda n: (order.get(n, len(order)), n))
    lanes = {name: Lane(name, "p-" + name.partition(":")[0], TOP + LANE * n + LANE / 2, x(spans[name].first),  # type: ignore[arg-type]
                        x(spans[name].last))  # type: ignore[arg-type]
             for n, name in enumerate(names)}
    for entry in chronological(report.timeline):
        mark = _mark(entry, x(entry.occurred), tz)
        if mark:
            name = f"imported: {entry.data.get('source')}" if entry.kind == "imported" else entry.phase or "incident"
            lanes[name].marks.append(mark)
    for lane in lanes.values():
        lane.marks = _declutter(lane.marks)
    height = TOP + LANE * len(lanes) + BOTTOM
    breaks = [(a.right, b.left, _coarse(b.start - a.end)) for a, b in zip(axis, axis[1:])]
    return Chart(height, list(lanes.values()), [t for s in axis for t in _ticks(s, tz, len(axis) > 1)], breaks,
                 _milestones(report, x, tz),
                 f"Times in {zone_name(tz)}, from {when(min(moments), tz)} to {when(max(moments), tz)}."
                 + (" Long stretches without events are shortened (a gap between slashes)." if breaks else ""))


def _milestones(report: Report, x: Callable[[datetime], float], tz: tzinfo) -> list[tuple[float, float, str, str, str]]:
    """Each milestone's line, its name in the first of three rows where it does not overlap another."""
    out, row_end = [], [-1000.0] * 3
    for name, entry in sorted(report.milestones.items(), key=lambda item: (item[1].occurred, item[1].seq)):
        at, width = x(entry.occurred), len(name) * 6.5 + 8
        anchor = "end" if at > WIDTH - RIGHT - width / 2 else "start" if at < LEFT + width / 2 else "middle"
        left = at - (width if anchor == "end" else 0 if anchor == "start" else width / 2)
        row = next((r for r, end in enumerate(row_end) if left >= end), None)
        if row is not None:
            row_end[row] = left + width
        out.append((at, 13.0 + 12 * (row or 0), anchor, name if row is not None else "",
                    f"{name}: {when_entry(entry, tz)}"))
    return out


def _mark(entry: Entry, at: float, tz: tzinfo) -> Mark | None:
    title = f"#{entry.seq} {when_entry(entry, tz)}: {headline(entry)}"
    if entry.kind == "decision":
        return Mark(at, "decision", str(entry.seq), title)
    if entry.kind in OUTCOMES:
        return Mark(at, OUTCOMES[entry.kind], str(entry.seq), title)
    if entry.kind == "evidence":
        return Mark(at, "evidence", str(entry.seq), title)
    if entry.kind == "imported":
        return Mark(at, "imported", "", title)
    return None


def _declutter(marks: list[Mark]) -> list[Mark]:
    """Keep every mark; drop the label of one too close to the previous label, and imported marks on the same
    spot (an import of thousands of rows draws at most one tick per unit of width)."""
    out: list[Mark] = []
    last_label, last_tick = -float(LABEL_GAP), None
    for mark in marks:
        if mark.shape == "imported":
            if mark.x != last_tick:
                out.append(mark)
            last_tick = mark.x
            continue
        if mark.x - last_label < LABEL_GAP:
            mark = Mark(mark.x, mark.shape, "", mark.title)
        else:
            last_label = mark.x
        out.append(mark)
    return out


def _ticks(segment: Segment, tz: tzinfo, dated: bool) -> list[tuple[float, str]]:
    """Round moments in a segment, in the display zone; one label mid-segment when none falls in it."""
    seconds = (segment.end - segment.start).total_seconds()
    room = max(1, int((segment.right - segment.left) / TICK_ROOM))
    step = next((s for s in STEPS if seconds / s <= room), STEPS[-1])
    if step >= 86400:
        pattern = "%Y-%m-%d"
    elif step >= 60:
        pattern = "%m-%d %H:%M" if dated or seconds > 86400 else "%H:%M"
    else:
        pattern = "%m-%d %H:%M:%S" if dated else "%H:%M:%S"
    offset = segment.start.astimezone(tz).utcoffset().total_seconds()  # type: ignore[union-attr]
    first = math.ceil((segment.start.timestamp() + offset) / step) * step - offset  # the first round moment, locally
    moment, ticks = datetime.fromtimestamp(first, tz), []
    while seconds and moment <= segment.end:
        ticks.append((segment.x(moment), f"{moment:{pattern}}"))
        moment += timedelta(seconds=step)
    ticks = [(x, label) for x, label in ticks if segment.left + EDGE <= x <= segment.right - EDGE]
    if not ticks:  # a narrow or short segment: one label in its middle
        middle = segment.start + (segment.end - segment.start) / 2
        ticks.append((segment.x(middle), f"{middle.astimezone(tz):%m-%d %H:%M:%S}"))
    return ticks


def _coarse(delta: timedelta) -> str:
    """How long a shortened stretch is, in its largest unit: `237d`, `5h`, `12m`."""
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def render(report: Report, out: TextIO, tz: tzinfo) -> None:
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(when=lambda value: when(value, tz), when_entry=lambda e: when_entry(e, tz),
                       duration=duration, headline=headline, question=question, counts=counts)
    source = resources.files("ir.export").joinpath("report.html.j2").read_text(encoding="utf-8")
    template = env.from_string(source)
    for chunk in template.generate(report=report, i=report.incident, chart=chart(report, tz),
                                   timeline=chronological(report.timeline), zone=zone_name(tz),
                                   follow_ups=list(report.follow_ups()), milestones=MILESTONES, width=WIDTH, left=LEFT,
                                   more={name: omitted(report, name) for name in LISTINGS},
                                   right=RIGHT,
                                   top=TOP, lane_height=LANE):
        out.write(chunk)
