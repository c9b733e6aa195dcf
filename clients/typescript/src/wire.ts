/**
 * The server's wire format (snake_case, as engine/src/http/api.rs defines it) and the
 * conversions to and from the client's camelCase shapes. Internal.
 */

import type {
  ActorHealth,
  AdmissionGate,
  ContextItem,
  ContextResult,
  Edge,
  EmotionScores,
  EmotionState,
  Entity,
  ForgetResult,
  GraphResult,
  HistoryPage,
  JsonObject,
  ProcessorHealth,
  RankedEntity,
  ReadyBody,
  Role,
  SearchHit,
  StoreResult,
  Turn,
  TurnInput,
} from "./types.js";

/** A turn as `POST /v1/turns` takes it. */
export interface WireTurnIn {
  user_id: string;
  session_id: string;
  role: Role;
  content: string;
  speaker?: string;
  event_time?: string;
  metadata?: JsonObject;
  external_id?: string;
}

/** The body of `POST /v1/context`. */
export interface WireContextIn {
  user_id: string;
  query: string;
  session_id?: string;
  max_recent?: number;
  max_items?: number;
  token_budget?: number;
  deadline_ms?: number;
}

interface WireStoreOut {
  ids: number[];
  turns: { id: number; external_id: string; created: boolean }[];
}

interface WireEmotionScores {
  labels: Record<string, number>;
  valence: number;
  arousal: number;
}

interface WireTurnOut {
  id: number;
  external_id: string;
  user_id: string;
  session_id: string;
  role: Role;
  speaker?: string | null;
  content: string;
  event_time: string;
  ingest_time: string;
  metadata?: JsonObject | null;
  emotion?: WireEmotionScores | null;
  importance?: number | null;
}

interface WireItem {
  kind: string;
  id: number;
  text: string;
  score: number;
  event_time?: string | null;
  session_id?: string | null;
}

interface WireEntity {
  id: number;
  kind: string;
  name: string;
  aliases?: string[];
  first_seen: string;
  last_seen: string;
}

interface WireRankedEntity {
  entity: WireEntity;
  weight: number;
  mentions: number;
  score: number;
}

interface WireEmotionState {
  scores: WireEmotionScores;
  turns: number;
  last_turn: number;
  updated: string;
}

interface WireContextOut {
  recent?: WireTurnOut[];
  items?: WireItem[];
  entities?: WireRankedEntity[];
  emotion?: WireEmotionState | null;
  degraded?: string[];
  timings_ms?: Record<string, number>;
  prompt: string;
  tokens: number;
  cached: boolean;
}

interface WireHit {
  kind: string;
  id: number;
  session_id: string;
  event_time: string;
  text: string;
  score: number;
}

interface WireHistoryOut {
  turns?: WireTurnOut[];
  next_before?: number | null;
}

interface WireEdge {
  kind: string;
  src: number;
  dst: number;
  weight: number;
  count: number;
  first_seen: string;
  last_seen: string;
  turns?: number[];
}

interface WireGraphOut {
  center: WireEntity;
  entities?: WireEntity[];
  edges?: WireEdge[];
}

interface WireReadyOut {
  ready: boolean;
  node: string;
  accepting: boolean;
  head: number;
  actors?: {
    name: string;
    state: string;
    restarts?: Record<string, number>;
    last_failure?: string | null;
    mailbox_depth?: number | null;
  }[];
  processors?: {
    name: string;
    running: boolean;
    holds_lease: boolean;
    checkpoint: number;
    lag: number;
  }[];
  backlog: number;
  behind: boolean;
  admission?: { operation: string; in_flight: number; limit: number }[];
}

/** A timestamp to send: a `Date` as ISO 8601 in UTC, a string as it is. */
export function timestamp(value: Date | string): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw new RangeError("invalid Date");
    }
    return value.toISOString();
  }
  return value;
}

/** The wire form of `turn`; fields left undefined are not sent. */
export function turnIn(turn: TurnInput): WireTurnIn {
  const out: WireTurnIn = {
    user_id: turn.userId,
    session_id: turn.sessionId,
    role: turn.role,
    content: turn.content,
  };
  if (turn.speaker !== undefined) out.speaker = turn.speaker;
  if (turn.eventTime !== undefined) out.event_time = timestamp(turn.eventTime);
  if (turn.metadata !== undefined) out.metadata = turn.metadata;
  if (turn.externalId !== undefined) out.external_id = turn.externalId;
  return out;
}

export function storeOut(w: WireStoreOut): StoreResult {
  return {
    ids: w.ids,
    turns: w.turns.map((t) => ({ id: t.id, externalId: t.external_id, created: t.created })),
  };
}

function emotionScores(w: WireEmotionScores): EmotionScores {
  return { labels: w.labels ?? {}, valence: w.valence, arousal: w.arousal };
}

export function turnOut(w: WireTurnOut): Turn {
  return {
    id: w.id,
    externalId: w.external_id,
    userId: w.user_id,
    sessionId: w.session_id,
    role: w.role,
    speaker: w.speaker ?? null,
    content: w.content,
    eventTime: w.event_time,
    ingestTime: w.ingest_time,
    metadata: w.metadata ?? {},
    emotion: w.emotion ? emotionScores(w.emotion) : null,
    importance: w.importance ?? null,
  };
}

function item(w: WireItem): ContextItem {
  return {
    kind: w.kind,
    id: w.id,
    text: w.text,
    score: w.score,
    eventTime: w.event_time ?? null,
    sessionId: w.session_id ?? null,
  };
}

function entity(w: WireEntity): Entity {
  return {
    id: w.id,
    kind: w.kind,
    name: w.name,
    aliases: w.aliases ?? [],
    firstSeen: w.first_seen,
    lastSeen: w.last_seen,
  };
}

function rankedEntity(w: WireRankedEntity): RankedEntity {
  return { entity: entity(w.entity), weight: w.weight, mentions: w.mentions, score: w.score };
}

function emotionState(w: WireEmotionState): EmotionState {
  return {
    scores: emotionScores(w.scores),
    turns: w.turns,
    lastTurn: w.last_turn,
    updated: w.updated,
  };
}

export function contextOut(w: WireContextOut): ContextResult {
  return {
    prompt: w.prompt,
    items: (w.items ?? []).map(item),
    recent: (w.recent ?? []).map(turnOut),
    entities: (w.entities ?? []).map(rankedEntity),
    emotion: w.emotion ? emotionState(w.emotion) : null,
    degraded: w.degraded ?? [],
    timingsMs: w.timings_ms ?? {},
    tokens: w.tokens,
    cached: w.cached,
  };
}

export function searchOut(w: { hits?: WireHit[] }): SearchHit[] {
  return (w.hits ?? []).map((h) => ({
    kind: h.kind,
    id: h.id,
    sessionId: h.session_id,
    eventTime: h.event_time,
    text: h.text,
    score: h.score,
  }));
}

export function historyOut(w: WireHistoryOut): HistoryPage {
  return { turns: (w.turns ?? []).map(turnOut), nextBefore: w.next_before ?? null };
}

function edge(w: WireEdge): Edge {
  return {
    kind: w.kind,
    src: w.src,
    dst: w.dst,
    weight: w.weight,
    count: w.count,
    firstSeen: w.first_seen,
    lastSeen: w.last_seen,
    turns: w.turns ?? [],
  };
}

export function graphOut(w: WireGraphOut): GraphResult {
  return {
    center: entity(w.center),
    entities: (w.entities ?? []).map(entity),
    edges: (w.edges ?? []).map(edge),
  };
}

export function forgetOut(w: { turns: number; summaries: number }): ForgetResult {
  return { turns: w.turns, summaries: w.summaries };
}

export function readyOut(w: WireReadyOut): ReadyBody {
  const actors: ActorHealth[] = (w.actors ?? []).map((a) => ({
    name: a.name,
    state: a.state,
    restarts: a.restarts ?? {},
    lastFailure: a.last_failure ?? null,
    mailboxDepth: a.mailbox_depth ?? null,
  }));
  const processors: ProcessorHealth[] = (w.processors ?? []).map((p) => ({
    name: p.name,
    running: p.running,
    holdsLease: p.holds_lease,
    checkpoint: p.checkpoint,
    lag: p.lag,
  }));
  const admission: AdmissionGate[] = (w.admission ?? []).map((g) => ({
    operation: g.operation,
    inFlight: g.in_flight,
    limit: g.limit,
  }));
  return {
    ready: w.ready,
    node: w.node,
    accepting: w.accepting,
    head: w.head,
    actors,
    processors,
    backlog: w.backlog,
    behind: w.behind,
    admission,
  };
}
