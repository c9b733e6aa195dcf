"""AsyncMnemoClient against a real `mnemo serve`."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, TypeVar

import httpx
import pytest
from conftest import Server

from mnemo_client import (
    AsyncMnemoClient,
    AuthenticationError,
    InvalidInputError,
    MnemoConnectionError,
    NotFoundError,
    Role,
    TurnInput,
)

pytestmark = pytest.mark.anyio

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 15.0, what: str = "condition"
) -> T:
    """Awaits ``check`` until it returns something truthy, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s; last: {result!r}")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.25)


async def test_fifty_concurrent_stores(server: Server, user: str) -> None:
    async with AsyncMnemoClient(server.url, server.key1) as mnemo:
        results = await asyncio.gather(
            *(
                mnemo.store(
                    user, "burst", Role.USER, f"concurrent message {n}", external_id=f"burst-{n}"
                )
                for n in range(50)
            )
        )
        ids = [r.ids[0] for r in results]
        assert len(set(ids)) == 50
        assert all(r.turns[0].created for r in results)
        assert [r.turns[0].external_id for r in results] == [f"burst-{n}" for n in range(50)]
        page = await mnemo.history(user, "burst", limit=100)
        assert sorted(t.id for t in page) == sorted(ids)


async def test_read_methods(server: Server, user: str) -> None:
    async with AsyncMnemoClient(server.url, server.key1, timeout=10.0) as mnemo:
        stored = await mnemo.store_batch(
            [
                TurnInput(
                    user,
                    "async",
                    "user",
                    "My dog Biscuit lives with Maya in Lisbon.",
                    event_time=datetime(2025, 5, 5, tzinfo=timezone.utc),
                ),
                {
                    "user_id": user,
                    "session_id": "async",
                    "role": "assistant",
                    "content": "Lisbon sounds lovely for Biscuit.",
                    "external_id": "a-2",
                },
            ]
        )
        assert len(stored.ids) == 2

        async def hits() -> Any:
            found = await mnemo.search(user, "Biscuit Lisbon", limit=5)
            return len(found) == 2 and found

        found = await eventually(hits, what="two hits")
        assert {h.id for h in found} == set(stored.ids)
        assert await mnemo.search(user, "Biscuit", from_=datetime(2030, 1, 1)) == []

        async def context() -> Any:
            got = await mnemo.context(
                user, "Where does Biscuit live?", session_id="later", deadline_ms=5000
            )
            return any("Maya in Lisbon" in i.text for i in got.items) and got

        got = await eventually(context, what="the fact in context")
        assert "Maya in Lisbon" in got.prompt

        page = await mnemo.history(user, "async", limit=1)
        assert len(page) == 1 and page.next_before == stored.ids[1]
        rest = await mnemo.history(user, "async", before=page.next_before)
        assert [t.id for t in rest] == stored.ids[:1]
        assert [t.id async for t in mnemo.iter_history(user, "async", page_size=1)] == list(
            reversed(stored.ids)
        )

        async def graph() -> Any:
            try:
                return await mnemo.graph(user, "Biscuit", depth=2)
            except NotFoundError:
                return None

        g = await eventually(graph, what="Biscuit in the graph")
        assert g.center.name == "Biscuit"

        ready = await mnemo.ready()
        assert ready and ready.status == 200

        removed = await mnemo.forget_turn(user, stored.ids[0])
        assert removed.turns == 1
        with pytest.raises(NotFoundError):
            await mnemo.forget_turn(user, stored.ids[0])
        assert (await mnemo.forget_user(user)).turns == 1

        async def empty() -> bool:
            return await mnemo.search(user, "Biscuit") == []

        await eventually(empty, what="search finding nothing")


async def test_errors(server: Server, user: str) -> None:
    async with AsyncMnemoClient(server.url, "wrong-key") as bad:
        with pytest.raises(AuthenticationError) as info:
            await bad.search(user, "x")
    assert info.value.status == 401 and info.value.code == "unauthorized"
    mnemo = AsyncMnemoClient(server.url, server.key1)
    try:
        with pytest.raises(InvalidInputError):
            await mnemo.store(user, "s", "user", "")
        with pytest.raises(InvalidInputError):
            await mnemo.search(user, "nul\x00")
    finally:
        await mnemo.aclose()


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncMnemoClient(f"http://127.0.0.1:{port}", "k", timeout=2.0) as mnemo:
        with pytest.raises(MnemoConnectionError) as info:
            await mnemo.store("u", "s", "user", "hello")
    assert info.value.status == 0
    assert isinstance(info.value.__cause__, httpx.ConnectError)
