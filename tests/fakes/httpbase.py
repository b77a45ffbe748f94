"""Plumbing shared by the fake servers: an HTTP server on 127.0.0.1, a request log, scripted failures.

A fake service subclasses `FakeServer` and implements three hooks: `api_for` names the API a
request belongs to, `handle` answers a request (always called with the state lock held, so handlers
may mutate state freely), and `failure_reply` renders a scripted refusal in the service's own format.

A bug in a fake (an exception while serving) must not pass for an outage of the service: the client gets a 500
so that it does not hang, the traceback is kept in `crashes`, and leaving the `with` block (the fixtures'
teardown) raises `FakeServerCrashed` with it.
"""

from __future__ import annotations

import abc
import base64
import binascii
import contextlib
import json
import socket
import sys
import threading
import traceback
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Modes answered instead of handling the request: nothing changes on the server.
REFUSALS = frozenset({"ratelimit", "server_error", "error"})
# Modes that handle the request (the write is committed) and then misbehave.
AFTER_COMMIT = frozenset({"slow", "drop_after_commit"})
MODES = REFUSALS | AFTER_COMMIT


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. Header names are normalised to Title-Case."""

    method: str
    path: str  # as sent, query string included
    api: str
    args: dict[str, Any]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any) -> Reply:
    body = json.dumps(payload).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json;charset=UTF-8"})


@dataclass(frozen=True)
class _Failure:
    mode: str
    retry_after: int
    delay: float
    error: str | None
    status: int | None


class FakeServerCrashed(AssertionError):
    """The fake server itself raised while serving: the test's outcome is not to be trusted."""


def _title_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _flatten(values: dict[str, list[str]]) -> dict[str, Any]:
    return {key: found[0] if len(found) == 1 else found for key, found in values.items()}


def parse_args(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Merge query-string arguments with a JSON object or form body; a repeated key gives a list."""
    args = _flatten(parse_qs(query, keep_blank_values=True))
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == "application/json" and body:
            decoded = json.loads(body)
            if isinstance(decoded, dict):
                args.update(decoded)
        elif media == "application/x-www-form-urlencoded" and body:
            args.update(_flatten(parse_qs(body.decode("utf-8"), keep_blank_values=True)))
    except ValueError:
        pass  # a malformed body carries no arguments; the handler reports what is missing
    return args


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def paginate(items: list, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """One page of `items` and the opaque cursor of the next one (None at the end).

    Raises ValueError for a cursor this server did not hand out.
    """
    offset = 0
    if cursor:
        try:
            prefix, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
            offset = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError(f"invalid cursor {cursor!r}") from None
        if prefix != "offset" or offset < 0:
            raise ValueError(f"invalid cursor {cursor!r}")
    end = offset + max(limit, 1)
    return items[offset:end], (encode_cursor(end) if end < len(items) else None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services and the clients' pools use
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _HTTPServer

    def _dispatch(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server bound to 127.0.0.1 that can cut its open connections on stop."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not an error
            self.fake._crashed(f"while serving {client_address}", traceback.format_exc())


class FakeServer(abc.ABC):
    """Runs a fake service in a daemon thread; use as a context manager or with start()/stop()."""

    raw_body_apis: frozenset[str] = frozenset()  # APIs whose body is data, not arguments

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._log: list[RecordedRequest] = []
        self._scripts: dict[str, deque[_Failure]] = defaultdict(deque)
        self._crashes: list[str] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def api_for(self, method: str, path: str) -> str:
        """The API name recorded for a request (path without its query string)."""

    @abc.abstractmethod
    def handle(self, request: RecordedRequest) -> Reply:
        """Answer a request; called with the state lock held."""

    @abc.abstractmethod
    def failure_reply(self, mode: str, error: str | None, status: int | None) -> Reply:
        """The service's answer for a scripted "ratelimit", "server_error" or "error".

        `error` and `status` are what the test asked for, None for the service's usual ones.
        """

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeServer:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self._httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping in "slow" mode
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        thread.join(timeout=2)
        self._httpd = self._thread = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        self.stop()
        if not self.crashes:
            return
        report = self.crash_report()
        if error is not None:  # the block failed already: keep its exception, and say that the fake crashed too
            error.add_note(report)
            return
        raise FakeServerCrashed(report)

    @property
    def crashes(self) -> list[str]:
        """The tracebacks of the fake's own bugs, one per request it crashed on."""
        with self._lock:
            return list(self._crashes)

    def crash_report(self) -> str:
        crashes = self.crashes
        return (f"{type(self).__name__} crashed on {len(crashes)} request(s): a bug in the fake, not an outage "
                "of the service it stands for; the test's outcome is not to be trusted.\n\n" + "\n".join(crashes))

    def _crashed(self, what: str, trace: str) -> None:
        with self._lock:
            self._crashes.append(f"{what}:\n{trace}")

    @property
    def root_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- request log and failure scripting ---------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def calls(self, api: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self._log if request.api == api]

    def fail(
        self,
        api: str,
        mode: str,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 0.0,
        error: str | None = None,
        status: int | None = None,
    ) -> None:
        """Make the next `times` requests to `api` fail in `mode`.

        "ratelimit" answers 429 with `Retry-After: retry_after`; "server_error" a 5xx and "error"
        the service's error envelope carrying `error` (both with `status` if given); none of these
        changes anything. "slow" handles the request, then waits `delay` seconds before answering;
        "drop_after_commit" handles it, then closes the connection without a reply.
        """
        if mode not in MODES:
            raise ValueError(f"unknown failure mode {mode!r}; expected one of {sorted(MODES)}")
        if mode == "slow" and delay <= 0:
            raise ValueError('mode "slow" needs a delay in seconds')
        failure = _Failure(mode, int(retry_after), delay, error, status)
        with self._lock:
            self._scripts[api].extend([failure] * times)

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        try:
            failure, reply = self._answer(handler, body)
        except Exception:  # a bug in the fake: kept for the teardown, and answered so that the client does not hang
            self._crashed(f"{handler.command} {handler.path}", traceback.format_exc())
            failure, reply = None, Reply(500, b"the fake server crashed: see the test's teardown error",
                                         {"Content-Type": "text/plain"})
        if failure is not None and failure.mode == "slow":
            self._stopping.wait(failure.delay)
        if failure is not None and failure.mode == "drop_after_commit":
            handler.close_connection = True  # no status line at all: the client sees a disconnect
            return
        self._send(handler, reply)

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[_Failure | None, Reply]:
        """The scripted failure still to apply after answering (slow, drop_after_commit), and the answer."""
        split = urlsplit(handler.path)
        api = self.api_for(handler.command, split.path)
        content_type = handler.headers.get("Content-Type", "")
        args = {} if api in self.raw_body_apis else parse_args(split.query, content_type, body)
        headers = {_title_case(name): value for name, value in handler.headers.items()}
        request = RecordedRequest(handler.command, handler.path, api, args, headers, body)
        with self._lock:
            self._log.append(request)
            script = self._scripts.get(api)
            failure = script.popleft() if script else None

        if failure is not None and failure.mode in REFUSALS:
            reply = self.failure_reply(failure.mode, failure.error, failure.status)
            if failure.mode == "ratelimit":
                reply.headers["Retry-After"] = str(failure.retry_after)
            return None, reply
        with self._lock:
            return failure, self.handle(request)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if reply.status != 204:
                handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except OSError:  # the client gave up (timeout) before the answer
            handler.close_connection = True
