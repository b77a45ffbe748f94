"""Integration benchmarks (issue 4), against the test suite's fake Slack server on 127.0.0.1, answering at once.

    python bench/delivery.py [--actions 200]

1. The overhead ir adds per integration action beyond the HTTP round trip (budget: under 10 ms): N posts sent
   straight through slack_sdk, against the same N posts requested and delivered through the outbox (durable
   enqueue, `sending` mark, delivery, settle with its timeline event).
2. A fan-out to several channels when one answer is slow: how long the responder waits for the step.
Prints figures; exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.slack_server import SlackServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SlackServer() as slack:
        os.environ.update(IR_HOME=tmp, SLACK_BOT_TOKEN=slack.token, IR_SLACK_BASE_URL=slack.url)
        channels = [f"bench-{n}" for n in range(args.actions)]  # one per post: Slack paces posts per channel
        ids = [slack.add_channel(name) for name in channels]
        direct = raw_posts(slack, ids)
        through = outbox_posts(Path(tmp), ids)
        per_action = (through - direct) / args.actions * 1000
        waited = fan_out(Path(tmp), slack)
    print(f"{args.actions} posts straight through slack_sdk: {direct * 1000 / args.actions:.2f} ms each")
    print(f"{args.actions} posts through ir's outbox:        {through * 1000 / args.actions:.2f} ms each")
    print(f"overhead per action: {per_action:.2f} ms  budget < 10 ms: {'ok' if per_action < 10 else 'OVER BUDGET'}")
    print(f"fan-out to 4 channels, one answering after 2 s: the responder waited {waited * 1000:.0f} ms")


def raw_posts(slack: SlackServer, ids: list[str]) -> float:
    from slack_sdk import WebClient

    client = WebClient(token=slack.token, base_url=slack.url, retry_handlers=[])
    client.auth_test()  # connection warm, like the outbox's after its first call
    began = time.perf_counter()
    for channel in ids:
        client.chat_postMessage(channel=channel, text="update",
                                metadata={"event_type": "ir_action", "event_payload": {"key": channel}})
    return time.perf_counter() - began


def _outbox(folder: Path, name: str):  # noqa: ANN202 - (store, outbox, incident id)
    from ir import config
    from ir.run.incidents import open_incident
    from ir.run.outbox import Connections, Courier, Outbox
    from ir.store.sqlite import SqliteStore

    store = SqliteStore(folder / f"{name}.db")
    incident = open_incident(store, "bench", "1.0.0", "Bench", "low", {"bench": b"id: bench"}, "s0",
                             actor="bench", live=True)
    settings = config.load()
    connections = Connections(settings, config.Secrets.from_env(), print)
    courier = Courier(lambda: SqliteStore(folder / f"{name}.db"), incident.id, "bench", live=True,
                      connections=connections, say=print)
    return store, Outbox(store, courier, settings), incident.id


def _item(incident: str, n: int, channel: str):  # noqa: ANN202 - OutboxItem
    from ir.store.records import OutboxItem

    return OutboxItem(f"{incident}/s{n}/post", incident, "slack", "notify.post",
                      {"channel": channel, "message": "update", "phase": "containment", "step_title": f"s{n}",
                       "incident": {"id": incident, "title": "Bench", "severity": "low", "exercise": False}})


def outbox_posts(folder: Path, ids: list[str]) -> float:
    store, outbox, incident = _outbox(folder, "overhead")
    outbox.courier.connections.get("slack").check()  # connection warm
    began = time.perf_counter()
    for n, channel in enumerate(ids):
        item = store.enqueue(_item(incident, n, channel), outbox.courier.draft(
            "integration.requested", _item(incident, n, channel), "requested"))
        assert outbox.courier.deliver(store, item) == "done"
    return time.perf_counter() - began


def fan_out(folder: Path, slack: SlackServer) -> float:
    store, outbox, incident = _outbox(folder, "fanout")
    for name in ("ops", "legal", "leadership", "comms"):
        slack.add_channel(name)
    slack.fail("chat.postMessage", "slow", delay=2.0)
    items = [_item(incident, n, name) for n, name in enumerate(("ops", "legal", "leadership", "comms"))]
    began = time.perf_counter()
    outbox.request(items)
    waited = time.perf_counter() - began
    outbox.courier.finish(timeout=30)
    return waited


if __name__ == "__main__":
    main()
