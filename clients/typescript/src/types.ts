/**
 * The shapes the client sends and returns. Field names are camelCase; the server's wire
 * format is snake_case and the client converts both ways. Keys *inside* free-form
 * objects (turn `metadata`, emotion `labels`, `timingsMs`, actor `restarts`) are data and
 * are left as the server sent them.
 *
 * Timestamps are returned as the server sent them: ISO 8601 / RFC 3339 strings in UTC
 * (`"2026-10-27T09:30:00Z"`, possibly with fractional seconds); `new Date(s)` parses them.
 * Where a timestamp is sent, a `Date` or such a string is accepted.
 *
 * @module
 */

/** Who spoke a turn. */
export type Role = "user" | "assistant" | "system";

/** A JSON value, as turn metadata holds. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Optional fields of a turn to store. */
export interface StoreOptions {
  /** The speaker's display name. */
  speaker?: string | undefined;
  /** When it was said; default: when it is stored. */
  eventTime?: Date | string | undefined;
  /** Free-form metadata (a JSON object, at most `storage.limits.max_metadata_bytes`). */
  metadata?: JsonObject | undefined;
  /** Idempotency key: storing the same external id twice for a user stores one turn. */
  externalId?: string | undefined;
}

/** One turn of {@link MnemoClient.storeBatch}. */
export interface TurnInput extends StoreOptions {
  /** The user, as the tenant names them. */
  userId: string;
  /** The conversation session. */
  sessionId: string;
  /** Who spoke. */
  role: Role;
  /** What was said (non-empty UTF-8, no NUL). */
  content: string;
}

/** One stored turn of a store answer. */
export interface StoredTurn {
  /** The turn's id. */
  id: number;
  /** Its external id: the one sent, or one the server generated. */
  externalId: string;
  /** False when the external id was already stored and nothing new was written. */
  created: boolean;
}

/** The answer of {@link MnemoClient.store} and {@link MnemoClient.storeBatch}. */
export interface StoreResult {
  /** The ids of the turns, in the order sent. */
  ids: number[];
  /** Each turn with its external id and whether it was new. */
  turns: StoredTurn[];
}

/** Emotion scores of a turn or a user. */
export interface EmotionScores {
  /** Score per emotion label, each in [0, 1]. */
  labels: Record<string, number>;
  /** Pleasantness in [-1, 1]. */
  valence: number;
  /** Activation in [0, 1]. */
  arousal: number;
}

/** A stored turn. */
export interface Turn {
  id: number;
  externalId: string;
  userId: string;
  sessionId: string;
  role: Role;
  /** The speaker's display name, or null. */
  speaker: string | null;
  content: string;
  /** When it was said (ISO string). */
  eventTime: string;
  /** When Mnemo stored it (ISO string). */
  ingestTime: string;
  /** Its metadata object (`{}` when none was sent). */
  metadata: JsonObject;
  /** Emotion scores, once processed. */
  emotion: EmotionScores | null;
  /** Importance in [0, 1], once processed. */
  importance: number | null;
}

/** Options of {@link MnemoClient.context}. */
export interface ContextOptions {
  /** The current session, whose last turns come first. */
  sessionId?: string | undefined;
  /** Recent turns of the session, at most (default from the server's config). */
  maxRecent?: number | undefined;
  /** Relevant items, at most (default from the server's config). */
  maxItems?: number | undefined;
  /** Tokens of the rendered prompt, at most (default from the server's config). */
  tokenBudget?: number | undefined;
  /**
   * How long the caller can wait, in milliseconds (server default 50). Keep it under the
   * client's `timeoutMs`: the server may answer up to twice the deadline.
   */
  deadlineMs?: number | undefined;
}

/** One ranked piece of context. */
export interface ContextItem {
  /** `turn`, `summary` or `entity`. */
  kind: "turn" | "summary" | "entity" | (string & {});
  /** The turn, summary or entity id. */
  id: number;
  /** The text shown to the model. */
  text: string;
  /** The ranking score. */
  score: number;
  /** When it was said (entities: last mentioned); ISO string or null. */
  eventTime: string | null;
  /** Its session, for turns and summaries. */
  sessionId: string | null;
}

/** An entity of a user's graph. */
export interface Entity {
  id: number;
  /** `person`, `place`, `org`, `topic`, ... (a trailing `?` marks a guess). */
  kind: string;
  /** Canonical name. */
  name: string;
  /** Other names it goes by. */
  aliases: string[];
  /** Event time of the first turn that mentioned it (ISO string). */
  firstSeen: string;
  /** Event time of the last turn that mentioned it (ISO string). */
  lastSeen: string;
}

/** An entity with the strength of the user's mentions of it. */
export interface RankedEntity {
  entity: Entity;
  /** Sum of the mention weights. */
  weight: number;
  /** Turns that mention it. */
  mentions: number;
  /** `weight` decayed by the time since it was last mentioned. */
  score: number;
}

/** A user's emotion state: a decayed aggregate of their turns' emotions. */
export interface EmotionState {
  scores: EmotionScores;
  /** Turns folded in. */
  turns: number;
  /** The last turn folded in. */
  lastTurn: number;
  /** Event time of the last turn folded in (ISO string). */
  updated: string;
}

/** The answer of {@link MnemoClient.context}. */
export interface ContextResult {
  /** The rendered prompt text. */
  prompt: string;
  /** Relevant turns, summaries and entities, best first. */
  items: ContextItem[];
  /** The session's recent turns, oldest first. */
  recent: Turn[];
  /** Entities named in the query and the user's strongest ones. */
  entities: RankedEntity[];
  /** The user's emotion state, if any. */
  emotion: EmotionState | null;
  /** Tiers that were late or down and are missing from this answer. */
  degraded: string[];
  /** Milliseconds each tier took, and `total`. */
  timingsMs: Record<string, number>;
  /** Tokens in `prompt` (cl100k). */
  tokens: number;
  /** Whether the answer came from the per-user cache. */
  cached: boolean;
}

/** Options of {@link MnemoClient.search}. */
export interface SearchOptions {
  /** Most hits (server default 10). */
  limit?: number | undefined;
  /** Hits to skip (default 0). */
  offset?: number | undefined;
  /** Only turns and summaries at or after this time. */
  from?: Date | string | undefined;
  /** Only turns and summaries before this time. */
  to?: Date | string | undefined;
}

/** One search hit. */
export interface SearchHit {
  /** `turn` or `summary`. */
  kind: "turn" | "summary" | (string & {});
  /** The turn or summary id. */
  id: number;
  sessionId: string;
  /** When it was said (ISO string). */
  eventTime: string;
  text: string;
  /** BM25 relevance. */
  score: number;
}

/** Options of {@link MnemoClient.history}. */
export interface HistoryOptions {
  /** Most turns (server default 50). */
  limit?: number | undefined;
  /** Only turns older than this turn id: the `nextBefore` of the previous page. */
  before?: number | undefined;
}

/** A page of a session's turns, newest first. */
export interface HistoryPage {
  /** The turns, newest first. */
  turns: Turn[];
  /** `before` of the next page when this page is full, else null. */
  nextBefore: number | null;
}

/** Options of {@link MnemoClient.graph}. */
export interface GraphOptions {
  /** Hops to walk: 1 or 2 (server default 1). */
  depth?: 1 | 2 | undefined;
  /** Most edges per hop (server default 20). */
  limit?: number | undefined;
}

/** An edge of a user's graph. */
export interface Edge {
  /** `MENTIONS` or `RELATED_TO`. */
  kind: string;
  /** Source entity id (0: the user). */
  src: number;
  /** Destination entity id. */
  dst: number;
  /** Sum of the supporting weights. */
  weight: number;
  /** Supporting turns. */
  count: number;
  /** ISO string. */
  firstSeen: string;
  /** ISO string. */
  lastSeen: string;
  /** The most recent supporting turn ids, newest first. */
  turns: number[];
}

/** The answer of {@link MnemoClient.graph}: an entity and its neighbourhood. */
export interface GraphResult {
  /** The entity asked for. */
  center: Entity;
  /** Every other entity reached. */
  entities: Entity[];
  /** The RELATED_TO edges walked, strongest first. */
  edges: Edge[];
}

/** What a forget removed. */
export interface ForgetResult {
  /** Turns removed. */
  turns: number;
  /** Summaries removed. */
  summaries: number;
}

/** One actor in `/readyz`. */
export interface ActorHealth {
  name: string;
  /** `up`, `restarting` or `disabled`. */
  state: string;
  /** Restarts per cause. */
  restarts: Record<string, number>;
  lastFailure: string | null;
  mailboxDepth: number | null;
}

/** One processor in `/readyz`. */
export interface ProcessorHealth {
  name: string;
  running: boolean;
  holdsLease: boolean;
  /** The last turn it has fully handled. */
  checkpoint: number;
  /** Turns stored but not yet handled. */
  lag: number;
}

/** One operation's admission gate in `/readyz`. */
export interface AdmissionGate {
  operation: string;
  inFlight: number;
  limit: number;
}

/** The body of `/readyz`. */
export interface ReadyBody {
  ready: boolean;
  node: string;
  accepting: boolean;
  /** The highest turn id stored. */
  head: number;
  actors: ActorHealth[];
  processors: ProcessorHealth[];
  /** Stored turns the slowest processor has not handled yet. */
  backlog: number;
  /** Whether writes are refused until the processors catch up. */
  behind: boolean;
  admission: AdmissionGate[];
}

/** The answer of {@link MnemoClient.ready}. */
export interface ReadyResult {
  /** True when `/readyz` answered 200 and said ready. */
  ready: boolean;
  /** The HTTP status: 200, or 503 when not ready. */
  status: number;
  /** The readiness report, or null when the body was not one. */
  body: ReadyBody | null;
}
