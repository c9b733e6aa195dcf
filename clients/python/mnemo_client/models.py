"""Inputs and results of the client: frozen dataclasses parsed from the server's JSON.

Every result keeps the JSON object it was parsed from in ``raw``, and can be read like a
dict as well: ``hit["text"]`` is ``hit.text`` (keys the dataclass has no field for are
looked up in ``raw``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import (
    Any,
    ClassVar,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Union,
    overload,
)

from ._time import TimeLike, format_datetime, parse_datetime

__all__ = [
    "Role",
    "TurnInput",
    "StoredTurn",
    "StoreResult",
    "EmotionScores",
    "Turn",
    "ContextItem",
    "Entity",
    "RankedEntity",
    "EmotionState",
    "ContextResult",
    "SearchHit",
    "HistoryPage",
    "Edge",
    "GraphResult",
    "ForgetResult",
    "ActorStatus",
    "ProcessorStatus",
    "AdmissionStatus",
    "ReadyResult",
]


class Role(str, enum.Enum):
    """Who spoke a turn. Plain strings (``"user"``, ...) are accepted wherever a role is."""

    USER = "user"
    """The human."""
    ASSISTANT = "assistant"
    """The bot or agent."""
    SYSTEM = "system"
    """Instructions or events injected by the host application."""

    def __str__(self) -> str:
        return self.value


RoleLike = Union[Role, str]
"""A role: a :class:`Role` or its string value."""


def _role_value(role: RoleLike) -> str:
    return role.value if isinstance(role, Role) else role


def _time_or_none(value: Any) -> Optional[datetime]:
    return None if value is None else parse_datetime(value)


class _Model:
    """Dict-style access for result dataclasses (``obj["field"]``, ``obj.get(...)``)."""

    raw: Dict[str, Any]
    _field_names: ClassVar[FrozenSet[str]] = frozenset()

    # Results are records, not sequences: no iteration through __getitem__.
    __iter__: Any = None

    def __getitem__(self, key: str) -> Any:
        """The field ``key``, or the raw JSON value of ``key`` when there is no such field."""
        if not isinstance(key, str):
            raise TypeError(f"{type(self).__name__} keys are field names, not {key!r}")
        if key in _names(type(self)):
            return getattr(self, key)
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in _names(type(self)) or key in self.raw)

    def get(self, key: str, default: Any = None) -> Any:
        """Like :meth:`dict.get`: the value of ``key``, or ``default`` when absent."""
        try:
            return self[key]
        except KeyError:
            return default


_NAMES: Dict[type, FrozenSet[str]] = {}


def _names(cls: type) -> FrozenSet[str]:
    names = _NAMES.get(cls)
    if names is None:
        names = frozenset(f.name for f in fields(cls) if f.name != "raw")
        _NAMES[cls] = names
    return names


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False, hash=False)


@dataclass(frozen=True)
class TurnInput:
    """A turn to store with :meth:`MnemoClient.store_batch` (the fields of ``store``)."""

    user_id: str
    """The user, as your application names them."""
    session_id: str
    """The conversation session."""
    role: RoleLike
    """Who spoke: ``"user"``, ``"assistant"`` or ``"system"``."""
    content: str
    """What was said (non-empty)."""
    speaker: Optional[str] = None
    """The speaker's display name."""
    event_time: Optional[TimeLike] = None
    """When it was said (naive datetimes are UTC); default: when it is stored."""
    metadata: Optional[Mapping[str, Any]] = None
    """A JSON object stored with the turn."""
    external_id: Optional[str] = None
    """Idempotency key: a second store with the same one for the user stores nothing."""

    def to_json(self) -> Dict[str, Any]:
        """The JSON object sent for this turn (absent options are left out)."""
        return turn_json(
            self.user_id,
            self.session_id,
            self.role,
            self.content,
            speaker=self.speaker,
            event_time=self.event_time,
            metadata=self.metadata,
            external_id=self.external_id,
        )


def turn_json(
    user_id: str,
    session_id: str,
    role: RoleLike,
    content: str,
    *,
    speaker: Optional[str] = None,
    event_time: Optional[TimeLike] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    external_id: Optional[str] = None,
) -> Dict[str, Any]:
    """The JSON object of one turn, as ``POST /v1/turns`` takes it."""
    body: Dict[str, Any] = {
        "user_id": user_id,
        "session_id": session_id,
        "role": _role_value(role),
        "content": content,
    }
    if speaker is not None:
        body["speaker"] = speaker
    if event_time is not None:
        body["event_time"] = format_datetime(event_time)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if external_id is not None:
        body["external_id"] = external_id
    return body


def turn_input_json(turn: Union[TurnInput, Mapping[str, Any]]) -> Dict[str, Any]:
    """The JSON object of a batch entry: a :class:`TurnInput`, or a dict whose ``role``
    may be a :class:`Role` and whose ``event_time`` may be a datetime."""
    if isinstance(turn, TurnInput):
        return turn.to_json()
    if not isinstance(turn, Mapping):
        raise TypeError(f"a turn is a TurnInput or a dict, not {type(turn).__name__}")
    body = dict(turn)
    if isinstance(body.get("role"), Role):
        body["role"] = body["role"].value
    if isinstance(body.get("event_time"), datetime):
        body["event_time"] = format_datetime(body["event_time"])
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        body["metadata"] = dict(body["metadata"])
    return body


@dataclass(frozen=True)
class StoredTurn(_Model):
    """One stored turn, as a store answers it."""

    id: int
    """The turn's id."""
    external_id: str
    """Its external id (the one sent, or one the server generated)."""
    created: bool
    """False when the external id was already stored and nothing new was written."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StoredTurn":
        """Parses the server's JSON object."""
        return cls(
            id=int(data["id"]),
            external_id=data["external_id"],
            created=bool(data["created"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class StoreResult(_Model):
    """The answer of :meth:`~MnemoClient.store` and :meth:`~MnemoClient.store_batch`."""

    ids: List[int]
    """The ids of the turns, in the order sent."""
    turns: List[StoredTurn]
    """Each turn with its external id and whether it was new."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StoreResult":
        """Parses the server's JSON object."""
        return cls(
            ids=[int(i) for i in data["ids"]],
            turns=[StoredTurn.from_json(t) for t in data["turns"]],
            raw=dict(data),
        )


@dataclass(frozen=True)
class EmotionScores(_Model):
    """Emotion scores of a turn or a user."""

    labels: Dict[str, float]
    """Score per emotion label, each in [0, 1]."""
    valence: float
    """Pleasantness in [-1, 1]."""
    arousal: float
    """Activation in [0, 1]."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EmotionScores":
        """Parses the server's JSON object."""
        return cls(
            labels={k: float(v) for k, v in data["labels"].items()},
            valence=float(data["valence"]),
            arousal=float(data["arousal"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Turn(_Model):
    """A stored turn (history pages, the recent turns of a context answer)."""

    id: int
    """Its id."""
    external_id: str
    """Its external id."""
    user_id: str
    """The user."""
    session_id: str
    """The session."""
    role: str
    """Who spoke: ``user``, ``assistant`` or ``system``."""
    speaker: Optional[str]
    """The speaker's display name."""
    content: str
    """What was said."""
    event_time: datetime
    """When it was said."""
    ingest_time: datetime
    """When Mnemo stored it."""
    metadata: Dict[str, Any]
    """Its metadata object."""
    emotion: Optional[EmotionScores]
    """Emotion scores, once processed."""
    importance: Optional[float]
    """Importance in [0, 1], once processed."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Turn":
        """Parses the server's JSON object."""
        emotion = data.get("emotion")
        importance = data.get("importance")
        return cls(
            id=int(data["id"]),
            external_id=data["external_id"],
            user_id=data["user_id"],
            session_id=data["session_id"],
            role=data["role"],
            speaker=data.get("speaker"),
            content=data["content"],
            event_time=parse_datetime(data["event_time"]),
            ingest_time=parse_datetime(data["ingest_time"]),
            metadata=data.get("metadata") or {},
            emotion=None if emotion is None else EmotionScores.from_json(emotion),
            importance=None if importance is None else float(importance),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ContextItem(_Model):
    """One ranked piece of context."""

    kind: str
    """``turn``, ``summary`` or ``entity``."""
    id: int
    """The turn, summary or entity id."""
    text: str
    """The text shown to the model."""
    score: float
    """The ranking score."""
    event_time: Optional[datetime]
    """When it was said (entities: last mentioned)."""
    session_id: Optional[str]
    """Its session, for turns and summaries."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ContextItem":
        """Parses the server's JSON object."""
        return cls(
            kind=data["kind"],
            id=int(data["id"]),
            text=data["text"],
            score=float(data["score"]),
            event_time=_time_or_none(data.get("event_time")),
            session_id=data.get("session_id"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Entity(_Model):
    """An entity of a user's graph."""

    id: int
    """Its id."""
    kind: str
    """What it is (``person``, ``place``, ``topic``, ...)."""
    name: str
    """Canonical name."""
    aliases: List[str]
    """Other names it goes by."""
    first_seen: datetime
    """Event time of the first turn that mentioned it."""
    last_seen: datetime
    """Event time of the last turn that mentioned it."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Entity":
        """Parses the server's JSON object."""
        return cls(
            id=int(data["id"]),
            kind=data["kind"],
            name=data["name"],
            aliases=list(data.get("aliases") or []),
            first_seen=parse_datetime(data["first_seen"]),
            last_seen=parse_datetime(data["last_seen"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class RankedEntity(_Model):
    """An entity with the strength of the user's mentions of it."""

    entity: Entity
    """The entity."""
    weight: float
    """Sum of the mention weights."""
    mentions: int
    """Turns that mention it."""
    score: float
    """``weight`` decayed by the time since it was last mentioned."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RankedEntity":
        """Parses the server's JSON object."""
        return cls(
            entity=Entity.from_json(data["entity"]),
            weight=float(data["weight"]),
            mentions=int(data["mentions"]),
            score=float(data["score"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class EmotionState(_Model):
    """A user's emotion state: a decayed aggregate of their turns' emotions."""

    scores: EmotionScores
    """The aggregate scores."""
    turns: int
    """Turns folded in."""
    last_turn: int
    """The last turn folded in."""
    updated: datetime
    """Event time of the last turn folded in."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EmotionState":
        """Parses the server's JSON object."""
        return cls(
            scores=EmotionScores.from_json(data["scores"]),
            turns=int(data["turns"]),
            last_turn=int(data["last_turn"]),
            updated=parse_datetime(data["updated"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ContextResult(_Model):
    """The answer of :meth:`~MnemoClient.context`: what to put into the next prompt."""

    prompt: str
    """The rendered prompt text."""
    items: List[ContextItem]
    """Relevant turns, summaries and entities, best first."""
    recent: List[Turn]
    """The session's recent turns, oldest first."""
    entities: List[RankedEntity]
    """Entities named in the query and the user's strongest ones."""
    emotion: Optional[EmotionState]
    """The user's emotion state."""
    degraded: List[str]
    """Tiers that were late or down and are missing from this answer."""
    timings_ms: Dict[str, float]
    """Milliseconds each tier took, and the total."""
    tokens: int
    """Tokens in ``prompt`` (cl100k)."""
    cached: bool
    """Whether the answer came from the server's per-user cache."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ContextResult":
        """Parses the server's JSON object."""
        emotion = data.get("emotion")
        return cls(
            prompt=data["prompt"],
            items=[ContextItem.from_json(i) for i in data["items"]],
            recent=[Turn.from_json(t) for t in data["recent"]],
            entities=[RankedEntity.from_json(e) for e in data["entities"]],
            emotion=None if emotion is None else EmotionState.from_json(emotion),
            degraded=list(data.get("degraded") or []),
            timings_ms={k: float(v) for k, v in (data.get("timings_ms") or {}).items()},
            tokens=int(data["tokens"]),
            cached=bool(data["cached"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class SearchHit(_Model):
    """One search hit."""

    kind: str
    """``turn`` or ``summary``."""
    id: int
    """The turn or summary id."""
    session_id: str
    """Its session."""
    event_time: datetime
    """When it was said."""
    text: str
    """Its text."""
    score: float
    """BM25 relevance."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SearchHit":
        """Parses the server's JSON object."""
        return cls(
            kind=data["kind"],
            id=int(data["id"]),
            session_id=data["session_id"],
            event_time=parse_datetime(data["event_time"]),
            text=data["text"],
            score=float(data["score"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class HistoryPage(_Model):
    """A page of a session's turns, newest first. Iterating it, ``len()`` and integer
    indexes go over its turns."""

    turns: List[Turn]
    """The turns, newest first."""
    next_before: Optional[int]
    """The ``before`` of the next page when this page is full, else ``None``."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "HistoryPage":
        """Parses the server's JSON object."""
        next_before = data.get("next_before")
        return cls(
            turns=[Turn.from_json(t) for t in data["turns"]],
            next_before=None if next_before is None else int(next_before),
            raw=dict(data),
        )

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    def __len__(self) -> int:
        return len(self.turns)

    @overload
    def __getitem__(self, key: int) -> Turn: ...

    @overload
    def __getitem__(self, key: str) -> Any: ...

    def __getitem__(self, key: Union[int, str]) -> Any:
        """``page[i]`` is the i-th turn; ``page["turns"]`` the field, as on every result."""
        if isinstance(key, int):
            return self.turns[key]
        return super().__getitem__(key)


@dataclass(frozen=True)
class Edge(_Model):
    """An edge of a user's graph."""

    kind: str
    """``MENTIONS`` or ``RELATED_TO``."""
    src: int
    """Source entity id (0: the user)."""
    dst: int
    """Destination entity id."""
    weight: float
    """Sum of the supporting weights."""
    count: int
    """Supporting turns."""
    first_seen: datetime
    """Event time of the first supporting turn."""
    last_seen: datetime
    """Event time of the last supporting turn."""
    turns: List[int]
    """The most recent supporting turn ids, newest first."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Edge":
        """Parses the server's JSON object."""
        return cls(
            kind=data["kind"],
            src=int(data["src"]),
            dst=int(data["dst"]),
            weight=float(data["weight"]),
            count=int(data["count"]),
            first_seen=parse_datetime(data["first_seen"]),
            last_seen=parse_datetime(data["last_seen"]),
            turns=[int(t) for t in data.get("turns") or []],
            raw=dict(data),
        )


@dataclass(frozen=True)
class GraphResult(_Model):
    """An entity and its neighbourhood (:meth:`~MnemoClient.graph`)."""

    center: Entity
    """The entity asked for."""
    entities: List[Entity]
    """Every other entity reached."""
    edges: List[Edge]
    """The RELATED_TO edges walked, strongest first."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GraphResult":
        """Parses the server's JSON object."""
        return cls(
            center=Entity.from_json(data["center"]),
            entities=[Entity.from_json(e) for e in data["entities"]],
            edges=[Edge.from_json(e) for e in data["edges"]],
            raw=dict(data),
        )


@dataclass(frozen=True)
class ForgetResult(_Model):
    """What a forget removed."""

    turns: int
    """Turns removed."""
    summaries: int
    """Summaries removed."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ForgetResult":
        """Parses the server's JSON object."""
        return cls(turns=int(data["turns"]), summaries=int(data["summaries"]), raw=dict(data))


@dataclass(frozen=True)
class ActorStatus(_Model):
    """One actor in ``/readyz``."""

    name: str
    """Its name."""
    state: str
    """``up``, ``restarting`` or ``disabled``."""
    restarts: Dict[str, int]
    """Restarts per cause."""
    last_failure: Optional[str]
    """The last failure."""
    mailbox_depth: Optional[int]
    """Messages waiting in its mailbox."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ActorStatus":
        """Parses the server's JSON object."""
        return cls(
            name=data["name"],
            state=data["state"],
            restarts={k: int(v) for k, v in (data.get("restarts") or {}).items()},
            last_failure=data.get("last_failure"),
            mailbox_depth=data.get("mailbox_depth"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ProcessorStatus(_Model):
    """One processor in ``/readyz``."""

    name: str
    """Its name."""
    running: bool
    """Whether its loop runs."""
    holds_lease: bool
    """Whether this node runs it now."""
    checkpoint: int
    """The last turn it has fully handled."""
    lag: int
    """Turns stored but not yet handled."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ProcessorStatus":
        """Parses the server's JSON object."""
        return cls(
            name=data["name"],
            running=bool(data["running"]),
            holds_lease=bool(data["holds_lease"]),
            checkpoint=int(data["checkpoint"]),
            lag=int(data["lag"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class AdmissionStatus(_Model):
    """One operation's admission gate in ``/readyz``."""

    operation: str
    """The operation (``store``, ``context``)."""
    in_flight: int
    """Requests in flight now."""
    limit: int
    """How many may be in flight now."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "AdmissionStatus":
        """Parses the server's JSON object."""
        return cls(
            operation=data["operation"],
            in_flight=int(data["in_flight"]),
            limit=int(data["limit"]),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ReadyResult(_Model):
    """The answer of ``/readyz`` (:meth:`~MnemoClient.ready`). True in a boolean context
    exactly when the server answered 200.

    The detail fields are ``None`` or empty when the body was not Mnemo's JSON (e.g. a
    proxy's 503 page).
    """

    ready: bool
    """Whether ``/readyz`` answered 200."""
    status: int
    """The HTTP status of the answer (200 or 503)."""
    body: Dict[str, Any]
    """The parsed JSON body (empty when it was not JSON)."""
    node: Optional[str] = None
    """The node's name."""
    accepting: Optional[bool] = None
    """Whether the engine accepts work (false while shutting down)."""
    head: Optional[int] = None
    """The highest turn id stored."""
    backlog: Optional[int] = None
    """Stored turns the slowest processor has not handled yet."""
    behind: Optional[bool] = None
    """Whether writes are refused until the processors catch up."""
    actors: List[ActorStatus] = field(default_factory=list)
    """Every actor."""
    processors: List[ProcessorStatus] = field(default_factory=list)
    """The processors that run."""
    admission: List[AdmissionStatus] = field(default_factory=list)
    """Per operation, the requests in flight and how many may be."""
    raw: Dict[str, Any] = _raw()
    """The JSON object this was parsed from (the same as ``body``)."""

    def __bool__(self) -> bool:
        return self.ready

    @classmethod
    def from_answer(cls, status: int, data: Any) -> "ReadyResult":
        """Builds the result of a ``/readyz`` answer with ``status`` and JSON ``data``."""
        body: Dict[str, Any] = dict(data) if isinstance(data, Mapping) else {}
        return cls(
            ready=status == 200,
            status=status,
            body=body,
            node=body.get("node"),
            accepting=body.get("accepting"),
            head=body.get("head"),
            backlog=body.get("backlog"),
            behind=body.get("behind"),
            actors=[ActorStatus.from_json(a) for a in body.get("actors") or []],
            processors=[ProcessorStatus.from_json(p) for p in body.get("processors") or []],
            admission=[AdmissionStatus.from_json(a) for a in body.get("admission") or []],
            raw=body,
        )
