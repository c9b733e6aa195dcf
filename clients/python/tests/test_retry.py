"""The retry policy and error mapping, against a scripted local HTTP server (the real one
gives no deterministic 429)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

import anyio
import pytest

from mnemo_client import (
    AsyncMnemoClient,
    BadRequestError,
    BusyError,
    MnemoClient,
    MnemoError,
    MnemoTimeoutError,
    PayloadTooLargeError,
    UnavailableError,
)
from mnemo_client._base import parse_retry_after

STORED = {"ids": [7], "turns": [{"id": 7, "external_id": "x-7", "created": True}]}


def busy(retry_after: Optional[str] = "0") -> Tuple[int, Dict[str, str], bytes]:
    """A 429 as Mnemo sends it."""
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    body = {"error": {"code": "busy", "message": "the archive's queue is full"}}
    return 429, headers, json.dumps(body).encode()


def unavailable(retry_after: Optional[str] = None) -> Tuple[int, Dict[str, str], bytes]:
    """A 503 as Mnemo sends it (optionally without Retry-After)."""
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    body = {"error": {"code": "unavailable", "message": "the archive is restarting"}}
    return 503, headers, json.dumps(body).encode()


def ok(body: Any = STORED) -> Tuple[int, Dict[str, str], bytes]:
    """A 200 with a JSON body."""
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


class Scripted:
    """A local HTTP server answering from a script, one answer per request (the last one
    repeats), recording each request."""

    def __init__(self) -> None:
        self.script: List[Tuple[int, Dict[str, str], bytes]] = []
        self.requests: List[Tuple[str, str, bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.requests.append((self.command, self.path, body))
                    answer = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                status, headers, payload = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *answers: Tuple[int, Dict[str, str], bytes]) -> None:
        """Sets the answers to the next requests."""
        with self.lock:
            self.script = list(answers)
            self.requests = []

    def close(self) -> None:
        """Stops the server."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


# Sync client


def test_429_is_retried_and_succeeds(scripted: Scripted) -> None:
    scripted.answer(busy("0"), ok())
    with MnemoClient(scripted.url, "k") as c:
        result = c.store("u", "s", "user", "hello")
    assert result.ids == [7]
    assert len(scripted.requests) == 2
    (m1, p1, b1), (m2, p2, b2) = scripted.requests
    assert (m1, p1) == (m2, p2) == ("POST", "/v1/turns") and b1 == b2
    assert json.loads(b1) == {"user_id": "u", "session_id": "s", "role": "user", "content": "hello"}


def test_no_retries_raises_busy_at_once(scripted: Scripted) -> None:
    scripted.answer(busy("0"), ok())
    with MnemoClient(scripted.url, "k", max_retries=0) as c:
        with pytest.raises(BusyError) as info:
            c.store("u", "s", "user", "hello")
    err = info.value
    assert err.status == 429 and err.code == "busy" and err.retry_after == 0
    assert "queue is full" in err.message
    assert len(scripted.requests) == 1


def test_a_retry_after_over_the_max_wait_raises_at_once(scripted: Scripted) -> None:
    scripted.answer(busy("120"), ok())
    started = time.monotonic()
    with MnemoClient(scripted.url, "k", max_retry_wait=30.0) as c:
        with pytest.raises(BusyError) as info:
            c.search("u", "q")
    assert time.monotonic() - started < 5
    assert info.value.retry_after == 120.0
    assert len(scripted.requests) == 1


def test_a_503_without_retry_after_waits_the_default(scripted: Scripted) -> None:
    scripted.answer(unavailable(), unavailable(), ok())
    started = time.monotonic()
    with MnemoClient(scripted.url, "k", default_retry_wait=0.1) as c:
        assert c.store("u", "s", "user", "hello").ids == [7]
    assert time.monotonic() - started >= 0.2
    assert len(scripted.requests) == 3


def test_retries_run_out(scripted: Scripted) -> None:
    scripted.answer(unavailable("0"))
    with MnemoClient(scripted.url, "k", max_retries=2) as c:
        with pytest.raises(UnavailableError) as info:
            c.forget_user("u")
    assert info.value.status == 503 and info.value.code == "unavailable"
    assert len(scripted.requests) == 3


def test_an_http_date_retry_after(scripted: Scripted) -> None:
    past = http_date(datetime.now(timezone.utc) - timedelta(minutes=5), usegmt=True)
    scripted.answer(busy(past), ok())
    with MnemoClient(scripted.url, "k") as c:
        assert c.store("u", "s", "user", "hello").ids == [7]
    assert len(scripted.requests) == 2


def test_other_errors_are_not_retried(scripted: Scripted) -> None:
    body = json.dumps({"error": {"code": "invalid_request", "message": "unknown field"}})
    scripted.answer((400, {"Content-Type": "application/json"}, body.encode()), ok())
    with MnemoClient(scripted.url, "k") as c:
        with pytest.raises(BadRequestError) as info:
            c.store("u", "s", "user", "hello")
    assert info.value.code == "invalid_request" and info.value.message == "unknown field"
    assert len(scripted.requests) == 1


def test_answers_that_are_not_mnemo_json(scripted: Scripted) -> None:
    with MnemoClient(scripted.url, "k") as c:
        scripted.answer((502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"))
        with pytest.raises(MnemoError) as info:
            c.search("u", "q")
        assert type(info.value) is MnemoError
        assert info.value.status == 502 and info.value.code == "http_502"
        assert "bad gateway" in info.value.message
        scripted.answer((431, {}, b""))
        with pytest.raises(PayloadTooLargeError) as big:
            c.search("u", "q")
        assert big.value.code == "headers_too_large"
        scripted.answer((504, {}, b"gateway timeout"))
        with pytest.raises(MnemoTimeoutError):
            c.search("u", "q")
        scripted.answer((200, {}, b"not json"))
        with pytest.raises(MnemoError) as bad:
            c.search("u", "q")
        assert bad.value.code == "invalid_response"


def test_ready_reads_a_503_as_not_ready(scripted: Scripted) -> None:
    scripted.answer(
        (
            503,
            {"Content-Type": "application/json"},
            json.dumps({"ready": False, "node": "n1", "behind": True}).encode(),
        )
    )
    with MnemoClient(scripted.url, "k") as c:
        ready = c.ready()
    assert not ready and ready.ready is False and ready.status == 503
    assert ready.node == "n1" and ready.behind is True and ready.body["ready"] is False
    assert len(scripted.requests) == 1


def test_requests_are_encoded(scripted: Scripted) -> None:
    scripted.answer(
        ok({"turns": [], "next_before": None}), ok({"hits": []}), ok({"turns": 0, "summaries": 0})
    )
    with MnemoClient(scripted.url, "k") as c:
        page = c.history("a/b c", "ü?#", limit=5, before=10)
        c.search("u", "a+b c", from_=datetime(2024, 1, 2, 3, 4, 5), to="2024-01-02T03:04:05+01:00")
        c.forget_user("..")
    assert len(page) == 0 and page.next_before is None
    paths = [p for _, p, _ in scripted.requests]
    assert paths[0] == "/v1/users/a%2Fb%20c/sessions/%C3%BC%3F%23/turns?limit=5&before=10"
    assert paths[1] == (
        "/v1/search?user_id=u&q=a%2Bb+c&from=2024-01-02T03%3A04%3A05Z"
        "&to=2024-01-02T03%3A04%3A05%2B01%3A00"
    )
    assert paths[2] == "/v1/users/%2E%2E"


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-2") == 0.0
    assert parse_retry_after("soon") is None
    later = http_date(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now) == 90.0
    assert parse_retry_after(http_date(now - timedelta(days=1), usegmt=True), now=now) == 0.0


# Async client


@pytest.mark.anyio
async def test_async_429_is_retried_and_succeeds(scripted: Scripted) -> None:
    scripted.answer(busy("0"), ok())
    async with AsyncMnemoClient(scripted.url, "k") as c:
        result = await c.store("u", "s", "user", "hello")
    assert result.ids == [7] and len(scripted.requests) == 2


@pytest.mark.anyio
async def test_async_no_retries_raises_busy_at_once(scripted: Scripted) -> None:
    scripted.answer(busy("0"), ok())
    async with AsyncMnemoClient(scripted.url, "k", max_retries=0) as c:
        with pytest.raises(BusyError) as info:
            await c.store("u", "s", "user", "hello")
    assert info.value.retry_after == 0 and len(scripted.requests) == 1


@pytest.mark.anyio
async def test_async_retry_after_over_the_max_wait_raises_at_once(scripted: Scripted) -> None:
    scripted.answer(busy("120"), ok())
    async with AsyncMnemoClient(scripted.url, "k", max_retry_wait=30.0) as c:
        with anyio.fail_after(5):
            with pytest.raises(BusyError) as info:
                await c.context("u", "q")
    assert info.value.retry_after == 120.0 and len(scripted.requests) == 1


@pytest.mark.anyio
async def test_async_waits_without_blocking_the_loop(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_blocking_sleep(_: float) -> None:
        raise AssertionError("the async client must not call time.sleep")

    monkeypatch.setattr(time, "sleep", no_blocking_sleep)
    scripted.answer(unavailable(), unavailable(), ok())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    started = time.monotonic()
    async with AsyncMnemoClient(scripted.url, "k", default_retry_wait=0.1) as c:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            result = await c.store("u", "s", "user", "hello")
            tg.cancel_scope.cancel()
    assert result.ids == [7]
    assert time.monotonic() - started >= 0.2
    assert len(scripted.requests) == 3
    assert ticks >= 5, "the event loop was blocked while waiting to retry"


@pytest.mark.anyio
async def test_async_retries_run_out(scripted: Scripted) -> None:
    scripted.answer(unavailable("0"))
    async with AsyncMnemoClient(scripted.url, "k", max_retries=1) as c:
        with pytest.raises(UnavailableError):
            await c.forget_turn("u", 3)
    assert len(scripted.requests) == 2
    assert scripted.requests[0][1] == "/v1/turns/3?user_id=u"
