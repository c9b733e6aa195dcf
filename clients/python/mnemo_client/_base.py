"""What the sync and async clients share: building requests, reading answers, errors and
the retry policy. Nothing here does I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, TypeVar, Union
from urllib.parse import quote

import httpx

from ._time import TimeLike, format_datetime
from .errors import MnemoConnectionError, MnemoError, default_code, error_for_status
from .models import RoleLike, SearchHit, TurnInput, turn_input_json, turn_json

__version__ = "0.1.0"

T = TypeVar("T")

#: Statuses answered by a server that refused the request without doing anything, and
#: that may be tried again later.
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Call:
    """One API call: method, path (already encoded), query and JSON body."""

    method: str
    path: str
    params: Optional[Dict[str, Any]] = None
    json: Optional[Any] = None


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a refused request again.

    Only 429 and 503 answers are retried: the server stored nothing for them. A wait is
    the answer's ``Retry-After`` or ``default_wait`` without one; a wait longer than
    ``max_wait`` is not waited (the error is raised at once).
    """

    max_retries: int = 2
    max_wait: float = 30.0
    default_wait: float = 1.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.max_wait < 0:
            raise ValueError("max_retry_wait must be >= 0")
        if self.default_wait < 0:
            raise ValueError("default_retry_wait must be >= 0")

    def wait_before_retry(self, error: MnemoError, retries_done: int) -> Optional[float]:
        """Seconds to wait before retry number ``retries_done + 1``, or ``None`` when
        ``error`` is to be raised."""
        if error.status not in RETRY_STATUSES or retries_done >= self.max_retries:
            return None
        wait = self.default_wait if error.retry_after is None else error.retry_after
        if wait > self.max_wait:
            return None
        return wait


def segment(value: str, name: str) -> str:
    """Percent-encodes one path segment (slashes, spaces and non-ASCII included)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if value == "":
        raise ValueError(f"{name} must not be empty")
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        # Dot segments would be removed by URL normalisation.
        encoded = encoded.replace(".", "%2E")
    return encoded


def drop_none(values: Mapping[str, Any]) -> Dict[str, Any]:
    """The entries of ``values`` that are not ``None``."""
    return {k: v for k, v in values.items() if v is not None}


def time_param(value: Optional[TimeLike]) -> Optional[str]:
    """A time query parameter: RFC 3339 with ``Z`` (strings are sent unchanged)."""
    return None if value is None else format_datetime(value)


def parse_retry_after(value: Optional[str], now: Optional[datetime] = None) -> Optional[float]:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP date (a date in the
    past is 0). ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> MnemoError:
    """The :class:`MnemoError` an error answer stands for."""
    status = response.status_code
    body = json_or_none(response)
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        code = detail["code"]
        message = str(detail.get("message", ""))
    else:
        code = default_code(status)
        text = response.text.strip() if response.content else ""
        message = text[:500] if text else (response.reason_phrase or f"HTTP {status}")
    return error_for_status(
        status,
        code,
        message,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        body=body,
    )


def parse_success(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """Parses a 2xx answer with ``parse``; a body that is not the expected JSON raises a
    :class:`MnemoError` with code ``invalid_response``."""
    try:
        data = json.loads(response.content)
        return parse(data)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise MnemoError(
            response.status_code,
            "invalid_response",
            f"the server's answer is not what Mnemo sends: {e!r}",
            body=json_or_none(response),
        ) from e


def parse_hits(data: Any) -> List[SearchHit]:
    """The hits of a ``GET /v1/search`` answer."""
    return [SearchHit.from_json(h) for h in data["hits"]]


def transport_error(e: httpx.TransportError, call: Call) -> MnemoConnectionError:
    """The :class:`MnemoConnectionError` for a request that got no answer."""
    code = "timeout" if isinstance(e, httpx.TimeoutException) else "connection_error"
    detail = str(e) or type(e).__name__
    return MnemoConnectionError(0, code, f"{call.method} {call.path}: {detail}")


def make_headers(api_key: str, extra: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The headers every request carries."""
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("api_key must be a non-empty string")
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": f"mnemo-client-python/{__version__}",
    }
    if extra:
        headers.update(extra)
    return headers


def make_timeout(timeout: Union[float, httpx.Timeout, None]) -> httpx.Timeout:
    """An :class:`httpx.Timeout` from seconds (``None``: no timeout)."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout)


# Calls of each method: the sync and async clients send exactly these.


def store_call(
    user_id: str,
    session_id: str,
    role: RoleLike,
    content: str,
    *,
    speaker: Optional[str],
    event_time: Optional[TimeLike],
    metadata: Optional[Mapping[str, Any]],
    external_id: Optional[str],
) -> Call:
    """``POST /v1/turns`` with one turn."""
    body = turn_json(
        user_id,
        session_id,
        role,
        content,
        speaker=speaker,
        event_time=event_time,
        metadata=metadata,
        external_id=external_id,
    )
    return Call("POST", "/v1/turns", json=body)


def store_batch_call(turns: Iterable[Union[TurnInput, Mapping[str, Any]]]) -> Call:
    """``POST /v1/turns`` with ``{"turns": [...]}``."""
    if isinstance(turns, (str, bytes, Mapping)):
        raise TypeError("turns must be an iterable of TurnInput or dicts")
    return Call("POST", "/v1/turns", json={"turns": [turn_input_json(t) for t in turns]})


def context_call(
    user_id: str,
    query: str,
    *,
    session_id: Optional[str],
    max_recent: Optional[int],
    max_items: Optional[int],
    token_budget: Optional[int],
    deadline_ms: Optional[int],
) -> Call:
    """``POST /v1/context``."""
    body = drop_none(
        {
            "user_id": user_id,
            "query": query,
            "session_id": session_id,
            "max_recent": max_recent,
            "max_items": max_items,
            "token_budget": token_budget,
            "deadline_ms": deadline_ms,
        }
    )
    return Call("POST", "/v1/context", json=body)


def search_call(
    user_id: str,
    query: str,
    *,
    limit: Optional[int],
    offset: Optional[int],
    from_: Optional[TimeLike],
    to: Optional[TimeLike],
) -> Call:
    """``GET /v1/search``."""
    params = drop_none(
        {
            "user_id": user_id,
            "q": query,
            "limit": limit,
            "offset": offset,
            "from": time_param(from_),
            "to": time_param(to),
        }
    )
    return Call("GET", "/v1/search", params=params)


def history_call(
    user_id: str, session_id: str, *, limit: Optional[int], before: Optional[int]
) -> Call:
    """``GET /v1/users/{user_id}/sessions/{session_id}/turns``."""
    path = (
        f"/v1/users/{segment(user_id, 'user_id')}"
        f"/sessions/{segment(session_id, 'session_id')}/turns"
    )
    return Call("GET", path, params=drop_none({"limit": limit, "before": before}))


def graph_call(user_id: str, entity: str, *, depth: Optional[int], limit: Optional[int]) -> Call:
    """``GET /v1/users/{user_id}/graph``."""
    path = f"/v1/users/{segment(user_id, 'user_id')}/graph"
    return Call("GET", path, params=drop_none({"entity": entity, "depth": depth, "limit": limit}))


def forget_user_call(user_id: str) -> Call:
    """``DELETE /v1/users/{user_id}``."""
    return Call("DELETE", f"/v1/users/{segment(user_id, 'user_id')}")


def forget_turn_call(user_id: str, turn_id: int) -> Call:
    """``DELETE /v1/turns/{id}?user_id=``."""
    if isinstance(turn_id, bool) or not isinstance(turn_id, int):
        raise TypeError(f"turn_id must be an int, not {type(turn_id).__name__}")
    return Call("DELETE", f"/v1/turns/{turn_id}", params={"user_id": user_id})


def ready_call() -> Call:
    """``GET /readyz``."""
    return Call("GET", "/readyz")
