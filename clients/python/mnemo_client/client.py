"""The synchronous client, :class:`MnemoClient`."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Type, TypeVar, Union

import httpx

from . import _base
from ._base import Call, RetryPolicy
from ._time import TimeLike
from .models import (
    ContextResult,
    ForgetResult,
    GraphResult,
    HistoryPage,
    ReadyResult,
    RoleLike,
    SearchHit,
    StoreResult,
    Turn,
    TurnInput,
)

__all__ = ["MnemoClient"]

T = TypeVar("T")


class MnemoClient:
    """A client of a Mnemo server's HTTP API (``mnemo serve``).

    One client holds one connection pool; share it between threads (httpx clients are
    thread-safe) and close it when done, with :meth:`close` or a ``with`` block::

        with MnemoClient("http://127.0.0.1:8080", api_key) as mnemo:
            mnemo.store("maya", "s1", "user", "My dog Biscuit ate a sock")
            print(mnemo.context("maya", "How is my dog?").prompt)

    Answers 429 (busy) and 503 (unavailable) are retried: the server stored nothing for
    them. Each retry waits for the answer's ``Retry-After`` (``default_retry_wait``
    without one); a wait over ``max_retry_wait`` is not waited, the error is raised at
    once. Every other non-2xx answer raises the :class:`~mnemo_client.MnemoError`
    subclass of its status; no answer at all raises
    :class:`~mnemo_client.MnemoConnectionError`.

    Args:
        base_url: The server's address, e.g. ``http://127.0.0.1:8080`` (a path prefix
            behind a proxy is kept).
        api_key: The tenant's API key (sent as ``Authorization: Bearer``).
        timeout: Seconds to wait for the server, per request (connect, send, read); an
            :class:`httpx.Timeout` for finer control, ``None`` for no limit. Give
            ``context`` calls more than their ``deadline_ms``.
        max_retries: How many times a 429 or 503 answer is retried (0: never).
        max_retry_wait: The longest wait, in seconds, before one retry.
        default_retry_wait: The wait, in seconds, when a 429 or 503 has no
            ``Retry-After``.
        headers: Extra headers sent with every request.
        transport: An httpx transport to send requests through (tests, proxies, TLS
            settings); default: httpx's own.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: Union[float, httpx.Timeout, None] = 10.0,
        *,
        max_retries: int = 2,
        max_retry_wait: float = 30.0,
        default_retry_wait: float = 1.0,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self._retry = RetryPolicy(max_retries, max_retry_wait, default_retry_wait)
        self._http = httpx.Client(
            base_url=base_url,
            headers=_base.make_headers(api_key, headers),
            timeout=_base.make_timeout(timeout),
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        """The server's address."""
        return str(self._http.base_url)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry settings this client was made with."""
        return self._retry

    # Lifecycle

    def close(self) -> None:
        """Closes the connection pool. The client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> "MnemoClient":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MnemoClient({self.base_url!r})"

    # Sending

    def _send(self, call: Call) -> httpx.Response:
        """Sends ``call`` once; transport failures become MnemoConnectionError."""
        try:
            return self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TransportError as e:
            raise _base.transport_error(e, call) from e

    def _request(self, call: Call, parse: Callable[[Any], T]) -> T:
        """Sends ``call``, retrying 429 and 503, and parses the 2xx answer."""
        retries = 0
        while True:
            response = self._send(call)
            if response.is_success:
                return _base.parse_success(response, parse)
            error = _base.error_from_response(response)
            wait = self._retry.wait_before_retry(error, retries)
            if wait is None:
                raise error
            retries += 1
            if wait > 0:
                time.sleep(wait)

    # The API

    def store(
        self,
        user_id: str,
        session_id: str,
        role: RoleLike,
        content: str,
        *,
        speaker: Optional[str] = None,
        event_time: Optional[TimeLike] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        external_id: Optional[str] = None,
    ) -> StoreResult:
        """Stores one turn (``POST /v1/turns``); it is durable when this returns.

        Args:
            user_id: The user, as your application names them.
            session_id: The conversation session.
            role: ``"user"``, ``"assistant"`` or ``"system"`` (or a :class:`Role`).
            content: What was said (non-empty UTF-8, no NUL character).
            speaker: The speaker's display name.
            event_time: When it was said: a datetime (naive means UTC) or an RFC 3339
                string; default: now.
            metadata: A JSON object stored with the turn.
            external_id: Idempotency key: storing the same one again for the user
                stores nothing and answers the first turn's id with ``created=False``.

        Returns:
            The id (``ids[0]``) and ``turns[0]`` with its external id and ``created``.
        """
        call = _base.store_call(
            user_id,
            session_id,
            role,
            content,
            speaker=speaker,
            event_time=event_time,
            metadata=metadata,
            external_id=external_id,
        )
        return self._request(call, StoreResult.from_json)

    def store_batch(self, turns: Iterable[Union[TurnInput, Mapping[str, Any]]]) -> StoreResult:
        """Stores several turns, all or nothing (``POST /v1/turns`` with ``{"turns": [...]}``).

        Args:
            turns: :class:`TurnInput` objects or dicts with the fields of :meth:`store`
                (a dict's ``role`` may be a :class:`Role`, its ``event_time`` a datetime).

        Returns:
            The ids and stored turns, in the order sent.
        """
        return self._request(_base.store_batch_call(turns), StoreResult.from_json)

    def context(
        self,
        user_id: str,
        query: str,
        *,
        session_id: Optional[str] = None,
        max_recent: Optional[int] = None,
        max_items: Optional[int] = None,
        token_budget: Optional[int] = None,
        deadline_ms: Optional[int] = None,
    ) -> ContextResult:
        """Assembles the memories to put into the user's next prompt (``POST /v1/context``).

        Args:
            user_id: The user.
            query: What the next prompt is about (usually the user's message).
            session_id: The current session, whose last turns come first in ``recent``.
            max_recent: Recent turns of the session, at most (server default: 10).
            max_items: Relevant items, at most (server default: 10).
            token_budget: Tokens of the rendered prompt, at most (server default: 1500).
            deadline_ms: How long the server may take, in milliseconds (server default:
                50); tiers that are late are named in ``degraded``.

        Returns:
            The rendered ``prompt`` and its parts.
        """
        call = _base.context_call(
            user_id,
            query,
            session_id=session_id,
            max_recent=max_recent,
            max_items=max_items,
            token_budget=token_budget,
            deadline_ms=deadline_ms,
        )
        return self._request(call, ContextResult.from_json)

    def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        from_: Optional[TimeLike] = None,
        to: Optional[TimeLike] = None,
    ) -> List[SearchHit]:
        """Full-text (BM25) search over the user's turns and summaries (``GET /v1/search``).

        Args:
            user_id: The user.
            query: Words to look for.
            limit: Most hits (server default: 10).
            offset: Hits to skip, for paging.
            from_: Only items said at or after this time (naive datetimes are UTC).
            to: Only items said before this time.

        Returns:
            The hits, best first.
        """
        call = _base.search_call(user_id, query, limit=limit, offset=offset, from_=from_, to=to)
        return self._request(call, _base.parse_hits)

    def history(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: Optional[int] = None,
        before: Optional[int] = None,
    ) -> HistoryPage:
        """A page of a session's turns, newest first
        (``GET /v1/users/{user_id}/sessions/{session_id}/turns``).

        Args:
            user_id: The user.
            session_id: The session.
            limit: Most turns (server default: 50).
            before: Only turns older than this turn id: the previous page's
                ``next_before``.

        Returns:
            The page; its ``next_before`` is set when there may be more.
        """
        call = _base.history_call(user_id, session_id, limit=limit, before=before)
        return self._request(call, HistoryPage.from_json)

    def iter_history(
        self,
        user_id: str,
        session_id: str,
        *,
        page_size: Optional[int] = None,
        before: Optional[int] = None,
    ) -> Iterator[Turn]:
        """Every turn of a session, newest first, fetching pages of ``page_size`` as it
        goes (see :meth:`history`)."""
        while True:
            page = self.history(user_id, session_id, limit=page_size, before=before)
            yield from page.turns
            if page.next_before is None:
                return
            before = page.next_before

    def graph(
        self,
        user_id: str,
        entity: str,
        *,
        depth: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> GraphResult:
        """An entity of the user's graph and its neighbours
        (``GET /v1/users/{user_id}/graph``).

        Args:
            user_id: The user.
            entity: The entity's name or one of its aliases.
            depth: Hops to walk, 1 or 2 (server default: 1).
            limit: Most edges per hop (server default: 20).

        Raises:
            NotFoundError: The user has no such entity.
        """
        call = _base.graph_call(user_id, entity, depth=depth, limit=limit)
        return self._request(call, GraphResult.from_json)

    def forget_user(self, user_id: str) -> ForgetResult:
        """Forgets a user in every tier (``DELETE /v1/users/{user_id}``). An unknown user
        answers zero counts."""
        return self._request(_base.forget_user_call(user_id), ForgetResult.from_json)

    def forget_turn(self, user_id: str, turn_id: int) -> ForgetResult:
        """Forgets one turn of a user, with the summaries covering it
        (``DELETE /v1/turns/{turn_id}?user_id=``).

        Raises:
            NotFoundError: The user has no such turn.
        """
        return self._request(_base.forget_turn_call(user_id, turn_id), ForgetResult.from_json)

    def ready(self) -> ReadyResult:
        """Asks ``/readyz`` whether the server takes requests. A 503 is an answer (not
        ready), not an error, and is not retried; the result is truthy when ready."""
        call = _base.ready_call()
        response = self._send(call)
        if response.status_code in (200, 503):
            data = _base.json_or_none(response)
            return ReadyResult.from_answer(response.status_code, data)
        raise _base.error_from_response(response)
