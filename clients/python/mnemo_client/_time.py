"""RFC 3339 timestamps: what Mnemo sends and accepts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Union

__all__ = ["format_datetime", "parse_datetime", "TimeLike"]

#: A point in time as the client methods take it: a :class:`~datetime.datetime` (naive
#: means UTC) or an RFC 3339 string sent as it is.
TimeLike = Union[datetime, str]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)


def format_datetime(value: TimeLike) -> str:
    """Renders ``value`` as RFC 3339 in UTC with a ``Z`` suffix.

    A naive datetime is taken to be UTC; an aware one is converted to UTC. A string is
    returned unchanged (the server checks it).
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or an RFC 3339 string, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)
    else:
        value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None).isoformat() + "Z"


def parse_datetime(text: str) -> datetime:
    """Parses an RFC 3339 timestamp (as the server writes it) into an aware datetime.

    Fractions finer than microseconds (the server writes up to nanoseconds) are truncated.
    Works on every supported Python version, unlike ``datetime.fromisoformat`` before 3.11.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zulu:
        tz = timezone.utc
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    # A leap second (":60") is folded into the last representable instant.
    sec = min(int(second), 59)
    return datetime(int(year), int(month), int(day), int(hour), int(minute), sec, micro, tzinfo=tz)
