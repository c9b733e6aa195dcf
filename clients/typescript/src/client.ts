/**
 * {@link MnemoClient}: the HTTP API of `mnemo serve`, one method per route.
 *
 * @module
 */

import {
  MnemoConnectionError,
  MnemoError,
  defaultCode,
  errorClassFor,
} from "./errors.js";
import type {
  ContextOptions,
  ContextResult,
  ForgetResult,
  GraphOptions,
  GraphResult,
  HistoryOptions,
  HistoryPage,
  ReadyResult,
  Role,
  SearchHit,
  SearchOptions,
  StoreOptions,
  StoreResult,
  TurnInput,
} from "./types.js";
import {
  contextOut,
  forgetOut,
  graphOut,
  historyOut,
  readyOut,
  searchOut,
  storeOut,
  timestamp,
  turnIn,
  type WireContextIn,
} from "./wire.js";

/** The client's version, sent in `User-Agent`. */
export const VERSION = "0.1.0";

/** Options of {@link MnemoClient}. */
export interface MnemoClientOptions {
  /**
   * Milliseconds one attempt may take, answer body included (default 10000). Past it the
   * request is aborted and {@link MnemoConnectionError} (code `timeout`) is thrown.
   */
  timeoutMs?: number | undefined;
  /**
   * Retries of a request answered 429 or 503 (default 2; 0 switches retrying off). A
   * refused request stored nothing, so retrying any method is safe.
   */
  maxRetries?: number | undefined;
  /**
   * Longest wait before one retry, in milliseconds (default 30000). When `Retry-After`
   * asks for longer, the error is thrown at once instead.
   */
  maxRetryWaitMs?: number | undefined;
  /** Wait before a retry when the answer has no `Retry-After`, in milliseconds (default 1000). */
  defaultRetryWaitMs?: number | undefined;
  /** The `fetch` to use (default: the global one, Node >= 18). */
  fetch?: typeof fetch | undefined;
}

/** {@link MnemoClientOptions} with the server's address and the API key. */
export interface MnemoClientConfig extends MnemoClientOptions {
  /** Where `mnemo serve` listens, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /** The API key (`mnemo keygen`); it selects the tenant. */
  apiKey: string;
}

type Query = Record<string, string | number | undefined>;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** A client of one Mnemo server for one tenant (the API key's). Safe to share. */
export class MnemoClient {
  /** The server's address, without a trailing slash. */
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly maxRetryWaitMs: number;
  readonly defaultRetryWaitMs: number;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;

  /** A client of the server at `baseUrl` with the API key `apiKey`. */
  constructor(baseUrl: string, apiKey: string, options?: MnemoClientOptions);
  /** A client from one object: `{ baseUrl, apiKey, ...options }`. */
  constructor(config: MnemoClientConfig);
  constructor(
    baseUrlOrConfig: string | MnemoClientConfig,
    apiKey?: string,
    options: MnemoClientOptions = {},
  ) {
    let config: MnemoClientConfig;
    if (typeof baseUrlOrConfig === "string") {
      config = { ...options, baseUrl: baseUrlOrConfig, apiKey: apiKey as string };
    } else if (baseUrlOrConfig !== null && typeof baseUrlOrConfig === "object") {
      config = baseUrlOrConfig;
    } else {
      throw new TypeError("MnemoClient needs (baseUrl, apiKey, options?) or ({ baseUrl, apiKey, ... })");
    }
    if (typeof config.baseUrl !== "string") {
      throw new TypeError("baseUrl must be a string");
    }
    const parsed = new URL(config.baseUrl); // throws on an invalid URL
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError(`baseUrl must be http or https, not ${parsed.protocol}`);
    }
    if (typeof config.apiKey !== "string" || config.apiKey === "") {
      throw new TypeError("apiKey must be a non-empty string");
    }
    this.baseUrl = config.baseUrl.replace(/\/+$/, "");
    this.#apiKey = config.apiKey;
    this.timeoutMs = nonNegative("timeoutMs", config.timeoutMs, 10_000);
    this.maxRetries = Math.floor(nonNegative("maxRetries", config.maxRetries, 2));
    this.maxRetryWaitMs = nonNegative("maxRetryWaitMs", config.maxRetryWaitMs, 30_000);
    this.defaultRetryWaitMs = nonNegative("defaultRetryWaitMs", config.defaultRetryWaitMs, 1_000);
    const f = config.fetch;
    if (f !== undefined) {
      this.#fetch = (input, init) => f(input, init);
    } else if (typeof globalThis.fetch === "function") {
      this.#fetch = globalThis.fetch.bind(globalThis);
    } else {
      throw new TypeError("no global fetch (Node >= 18 has one): pass options.fetch");
    }
  }

  /**
   * Stores one turn (`POST /v1/turns`). With `externalId`, storing it again for the user
   * stores nothing new and answers the first turn's id with `created: false`.
   */
  async store(
    userId: string,
    sessionId: string,
    role: Role,
    content: string,
    options: StoreOptions = {},
  ): Promise<StoreResult> {
    const body = turnIn({ ...options, userId, sessionId, role, content });
    return storeOut(await this.#request("POST", "/v1/turns", { body }));
  }

  /** Stores turns all or nothing (`POST /v1/turns` with `{ "turns": [...] }`). */
  async storeBatch(turns: TurnInput[]): Promise<StoreResult> {
    const body = { turns: turns.map(turnIn) };
    return storeOut(await this.#request("POST", "/v1/turns", { body }));
  }

  /** Context for the user's next prompt (`POST /v1/context`). */
  async context(userId: string, query: string, options: ContextOptions = {}): Promise<ContextResult> {
    const body: WireContextIn = { user_id: userId, query };
    if (options.sessionId !== undefined) body.session_id = options.sessionId;
    if (options.maxRecent !== undefined) body.max_recent = options.maxRecent;
    if (options.maxItems !== undefined) body.max_items = options.maxItems;
    if (options.tokenBudget !== undefined) body.token_budget = options.tokenBudget;
    if (options.deadlineMs !== undefined) body.deadline_ms = options.deadlineMs;
    return contextOut(await this.#request("POST", "/v1/context", { body }));
  }

  /** BM25 search over the user's turns and summaries, best first (`GET /v1/search`). */
  async search(userId: string, query: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    const params: Query = {
      user_id: userId,
      q: query,
      limit: options.limit,
      offset: options.offset,
      from: options.from === undefined ? undefined : timestamp(options.from),
      to: options.to === undefined ? undefined : timestamp(options.to),
    };
    return searchOut(await this.#request("GET", "/v1/search", { query: params }));
  }

  /**
   * A page of a session's turns, newest first. Pass the answer's `nextBefore` as
   * `before` for the next page; it is null on the last one.
   */
  async history(userId: string, sessionId: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    const path = `/v1/users/${segment("userId", userId)}/sessions/${segment("sessionId", sessionId)}/turns`;
    const query: Query = { limit: options.limit, before: options.before };
    return historyOut(await this.#request("GET", path, { query }));
  }

  /** An entity of the user (by name or alias) and its neighbours, 1 or 2 hops. */
  async graph(userId: string, entity: string, options: GraphOptions = {}): Promise<GraphResult> {
    const path = `/v1/users/${segment("userId", userId)}/graph`;
    const query: Query = { entity, depth: options.depth, limit: options.limit };
    return graphOut(await this.#request("GET", path, { query }));
  }

  /** Forgets the user in every tier (zero counts for an unknown user). */
  async forgetUser(userId: string): Promise<ForgetResult> {
    const path = `/v1/users/${segment("userId", userId)}`;
    return forgetOut(await this.#request("DELETE", path, {}));
  }

  /** Forgets one turn of the user; {@link NotFoundError} when the user has no such turn. */
  async forgetTurn(userId: string, turnId: number): Promise<ForgetResult> {
    const path = `/v1/turns/${segment("turnId", String(turnId))}`;
    return forgetOut(await this.#request("DELETE", path, { query: { user_id: userId } }));
  }

  /**
   * Whether the server is ready (`GET /readyz`). A 503 is an answer, not an error:
   * `{ ready: false, status: 503, body }`. Not retried.
   */
  async ready(): Promise<ReadyResult> {
    const answer = await this.#send("GET", this.#url("/readyz", undefined), undefined);
    if (answer.status === 200 || answer.status === 503) {
      const json = parseJson(answer.text);
      const body =
        json !== undefined && json !== null && typeof json === "object" && typeof (json as { ready?: unknown }).ready === "boolean"
          ? readyOut(json as never)
          : null;
      return { ready: answer.status === 200 && body !== null && body.ready, status: answer.status, body };
    }
    throw errorFrom(answer);
  }

  #url(path: string, query: Query | undefined): string {
    let url = this.baseUrl + path;
    if (query !== undefined) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined) params.append(key, String(value));
      }
      const text = params.toString();
      if (text !== "") url += `?${text}`;
    }
    return url;
  }

  /** Sends the request, retrying 429 and 503 per the options; the parsed 2xx JSON body. */
  async #request<T>(method: string, path: string, parts: { query?: Query; body?: unknown }): Promise<T> {
    const url = this.#url(path, parts.query);
    const body = parts.body === undefined ? undefined : JSON.stringify(parts.body);
    for (let attempt = 0; ; attempt++) {
      const answer = await this.#send(method, url, body);
      if (answer.status >= 200 && answer.status < 300) {
        const json = parseJson(answer.text);
        if (json === undefined || json === null || typeof json !== "object" || Array.isArray(json)) {
          throw new MnemoError(`the server answered ${answer.status} with a body that is not a JSON object`, {
            status: answer.status,
            code: "invalid_response",
            body: answer.text,
          });
        }
        return json as T;
      }
      const error = errorFrom(answer);
      if ((answer.status === 429 || answer.status === 503) && attempt < this.maxRetries) {
        const wait = error.retryAfterMs ?? this.defaultRetryWaitMs;
        if (wait <= this.maxRetryWaitMs) {
          await sleep(wait);
          continue;
        }
      }
      throw error;
    }
  }

  /** One attempt: the status, headers and body text, or a {@link MnemoConnectionError}. */
  async #send(method: string, url: string, body: string | undefined): Promise<Answer> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#apiKey}`,
      accept: "application/json",
      "user-agent": `mnemo-client-ts/${VERSION}`,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      const init: RequestInit = { method, headers, signal: controller.signal };
      if (body !== undefined) init.body = body;
      const response = await this.#fetch(url, init);
      const text = await response.text();
      return { status: response.status, headers: response.headers, text };
    } catch (cause) {
      if (timedOut) {
        throw new MnemoConnectionError(`no answer from ${method} ${stripQuery(url)} within ${this.timeoutMs} ms`, {
          status: 0,
          code: "timeout",
          cause,
        });
      }
      throw new MnemoConnectionError(`cannot reach ${method} ${stripQuery(url)}: ${describe(cause)}`, {
        status: 0,
        code: "connection_failed",
        cause,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The error for a non-2xx answer. */
function errorFrom(answer: Answer): MnemoError {
  const json = parseJson(answer.text);
  let code: string | undefined;
  let message: string | undefined;
  if (json !== null && typeof json === "object") {
    const detail = (json as { error?: unknown }).error;
    if (detail !== null && typeof detail === "object") {
      const c = (detail as { code?: unknown }).code;
      const m = (detail as { message?: unknown }).message;
      if (typeof c === "string") code = c;
      if (typeof m === "string") message = m;
    }
  }
  if (code === undefined) {
    code = defaultCode(answer.status);
    const text = answer.text.trim();
    message = text === "" ? `HTTP ${answer.status}` : `HTTP ${answer.status}: ${text.slice(0, 200)}`;
  }
  const Class = errorClassFor(answer.status);
  return new Class(message ?? `HTTP ${answer.status} ${code}`, {
    status: answer.status,
    code,
    retryAfterMs: retryAfterMs(answer.headers.get("retry-after")),
    body: json === undefined ? answer.text : json,
  });
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; undefined when absent or unusable. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // An HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT") names a day and month in letters.
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A path segment, percent-encoded. An empty id, `.` and `..` cannot be sent as a
 * segment (the server would see another route: `.` and `..` are dot segments to URLs,
 * even percent-encoded), so they are refused here.
 */
function segment(name: string, value: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be a string`);
  }
  if (value === "" || value === "." || value === "..") {
    throw new RangeError(`${name} ${JSON.stringify(value)} cannot be used in a URL path`);
  }
  return encodeURIComponent(value);
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number >= 0`);
  }
  return value;
}

function stripQuery(url: string): string {
  const i = url.indexOf("?");
  return i < 0 ? url : url.slice(0, i);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return `${error.message} (${typeof code === "string" ? `${code}: ` : ""}${cause.message})`;
    }
    return error.message;
  }
  return String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
