"""Asynchronous sleep for retries: anyio's when it is installed (httpx brings it), so
the client works under asyncio and trio alike; asyncio's otherwise."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional

__all__ = ["sleep"]

_anyio_sleep: Optional[Callable[[float], Awaitable[Any]]]
try:
    from anyio import sleep as _anyio_sleep
except ImportError:  # pragma: no cover - httpx >= 0.25 depends on anyio
    _anyio_sleep = None


async def sleep(seconds: float) -> None:
    """Waits ``seconds`` without blocking the event loop."""
    if _anyio_sleep is not None:
        await _anyio_sleep(seconds)
    else:
        await asyncio.sleep(seconds)
