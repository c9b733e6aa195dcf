"""Python client of Mnemo, a memory engine for conversational AI.

:class:`MnemoClient` (synchronous) and :class:`AsyncMnemoClient` (asyncio/anyio) speak
the HTTP API of ``mnemo serve``; results are frozen dataclasses (readable like dicts too),
and every error answer raises a :class:`MnemoError` subclass.
"""

from ._base import RetryPolicy, __version__
from .async_client import AsyncMnemoClient
from .client import MnemoClient
from .errors import (
    AuthenticationError,
    BadRequestError,
    BusyError,
    InvalidInputError,
    MnemoConnectionError,
    MnemoError,
    MnemoTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    UnavailableError,
)
from .models import (
    ActorStatus,
    AdmissionStatus,
    ContextItem,
    ContextResult,
    Edge,
    EmotionScores,
    EmotionState,
    Entity,
    ForgetResult,
    GraphResult,
    HistoryPage,
    ProcessorStatus,
    RankedEntity,
    ReadyResult,
    Role,
    SearchHit,
    StoredTurn,
    StoreResult,
    Turn,
    TurnInput,
)

__all__ = [
    "__version__",
    "MnemoClient",
    "AsyncMnemoClient",
    "RetryPolicy",
    # errors
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
    # inputs and results
    "Role",
    "TurnInput",
    "StoreResult",
    "StoredTurn",
    "ContextResult",
    "ContextItem",
    "Turn",
    "EmotionScores",
    "EmotionState",
    "Entity",
    "RankedEntity",
    "SearchHit",
    "HistoryPage",
    "GraphResult",
    "Edge",
    "ForgetResult",
    "ReadyResult",
    "ActorStatus",
    "ProcessorStatus",
    "AdmissionStatus",
]
