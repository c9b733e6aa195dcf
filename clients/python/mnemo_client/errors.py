"""The exceptions the client raises.

Every answer outside 2xx raises a :class:`MnemoError` subclass chosen by its status; a
request that got no answer at all (connection refused, timeout, reset) raises
:class:`MnemoConnectionError`, with the transport's exception as ``__cause__``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "MnemoError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "PayloadTooLargeError",
    "InvalidInputError",
    "BusyError",
    "UnavailableError",
    "MnemoTimeoutError",
    "MnemoConnectionError",
    "error_for_status",
]


class MnemoError(Exception):
    """An error answer of the Mnemo server (or, for :class:`MnemoConnectionError`, none).

    Attributes:
        status: The HTTP status (0 when no answer came).
        code: The stable machine-readable code, the ``error.code`` of the server's JSON
            body (``invalid_input``, ``busy``, ...); when the body is not Mnemo's JSON
            (a proxy's page, actix's empty 431) one is made up from the status.
        message: What went wrong, for people.
        retry_after: Seconds the server asked to wait (``Retry-After``), or ``None``.
        body: The parsed JSON body of the answer, or ``None`` when it was not JSON.
    """

    status: int
    code: str
    message: str
    retry_after: Optional[float]
    body: Optional[Any]

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: Optional[float] = None,
        body: Optional[Any] = None,
    ) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        if self.status:
            return f"{self.status} {self.code}: {self.message}"
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r})"
        )


class BadRequestError(MnemoError):
    """400: the body is not JSON (``malformed_json``), or fields or query parameters are
    missing, unknown or mistyped (``invalid_request``)."""


class AuthenticationError(MnemoError):
    """401 ``unauthorized``: no API key, or one the server does not know."""


class NotFoundError(MnemoError):
    """404 ``not_found``: no such turn or entity for this user, or no such route."""


class PayloadTooLargeError(MnemoError):
    """413 ``too_large``, 414 ``uri_too_long`` or 431 ``headers_too_large``: the body,
    a field, a batch, the URI or the headers are over their limits."""


class InvalidInputError(MnemoError):
    """422 ``invalid_input``: well-formed but unacceptable values (empty content, a NUL
    character, ids too long, limits out of range, ...)."""


class BusyError(MnemoError):
    """429 ``busy``: a queue is full or the processors are behind; nothing was stored.
    Retried automatically (see ``max_retries``) before it is raised."""


class UnavailableError(MnemoError):
    """503 ``unavailable`` or ``shutting_down``: a needed tier is down or the server is
    stopping; nothing was stored. Retried automatically before it is raised."""


class MnemoTimeoutError(MnemoError):
    """408 or 504 ``timeout``: the body came too slowly, or the deadline passed with
    nothing to answer."""


class MnemoConnectionError(MnemoError):
    """No answer: the connection was refused or reset, or the client's timeout passed.

    ``status`` is 0, ``code`` is ``connection_error`` or ``timeout``; the transport's
    exception (an ``httpx.TransportError``) is ``__cause__``. Whether a request that timed
    out after it was sent was carried out is unknown, so it is never retried.
    """


_BY_STATUS: Dict[int, Type[MnemoError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    408: MnemoTimeoutError,
    413: PayloadTooLargeError,
    414: PayloadTooLargeError,
    422: InvalidInputError,
    429: BusyError,
    431: PayloadTooLargeError,
    503: UnavailableError,
    504: MnemoTimeoutError,
}

#: Codes used when an error answer does not carry Mnemo's JSON body.
_DEFAULT_CODES: Dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    414: "uri_too_long",
    422: "invalid_input",
    429: "busy",
    431: "headers_too_large",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


def default_code(status: int) -> str:
    """The code Mnemo uses for ``status``, or ``http_<status>`` for one it never sends."""
    return _DEFAULT_CODES.get(status, f"http_{status}")


def error_for_status(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: Optional[float] = None,
    body: Optional[Any] = None,
) -> MnemoError:
    """Builds the :class:`MnemoError` subclass that stands for ``status``."""
    cls = _BY_STATUS.get(status, MnemoError)
    return cls(status, code, message, retry_after=retry_after, body=body)
