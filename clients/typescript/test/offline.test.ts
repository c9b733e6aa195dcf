/**
 * Tests that need no Mnemo server: the wire format (against a recording fetch) and the
 * retry policy (against a tiny node:http server).
 */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";

import {
  AuthenticationError,
  BadRequestError,
  BusyError,
  InvalidInputError,
  MnemoClient,
  MnemoConnectionError,
  MnemoError,
  MnemoTimeoutError,
  NotFoundError,
  PayloadTooLargeError,
  UnavailableError,
  retryAfterMs,
} from "mnemo-client";

interface Recorded {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A client whose fetch records the request and answers `status` with `json`. */
function recording(status: number, json: unknown, headers: Record<string, string> = {}) {
  const calls: Recorded[] = [];
  const fakeFetch: typeof fetch = async (input, init) => {
    const h = new Headers(init?.headers);
    const all: Record<string, string> = {};
    h.forEach((v, k) => {
      all[k] = v;
    });
    calls.push({
      url: String(input),
      method: init?.method ?? "GET",
      headers: all,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    });
    const text = typeof json === "string" ? json : JSON.stringify(json);
    return new Response(text, { status, headers: { "content-type": "application/json", ...headers } });
  };
  const client = new MnemoClient("http://mnemo.test:8080/", "k-123", { fetch: fakeFetch });
  return { client, calls };
}

const TURN = {
  id: 7,
  external_id: "msg-1",
  user_id: "maya",
  session_id: "s1",
  role: "user",
  speaker: "Maya",
  content: "Biscuit ate a sock!",
  event_time: "2026-10-27T09:30:00Z",
  ingest_time: "2026-10-27T09:30:01.5Z",
  metadata: { channel_name: "app", nested: { some_key: 1 } },
  emotion: { labels: { joy_ful: 0.5 }, valence: 0.2, arousal: 0.3 },
  importance: 0.4,
};

describe("wire format", () => {
  test("both constructor forms, options checked", () => {
    const a = new MnemoClient("http://h:1/", "k");
    assert.equal(a.baseUrl, "http://h:1");
    assert.equal(a.timeoutMs, 10_000);
    assert.equal(a.maxRetries, 2);
    assert.equal(a.maxRetryWaitMs, 30_000);
    assert.equal(a.defaultRetryWaitMs, 1_000);
    const b = new MnemoClient({ baseUrl: "https://h/prefix//", apiKey: "k", timeoutMs: 5, maxRetries: 0 });
    assert.equal(b.baseUrl, "https://h/prefix");
    assert.equal(b.timeoutMs, 5);
    assert.equal(b.maxRetries, 0);
    assert.throws(() => new MnemoClient("not a url", "k"), TypeError);
    assert.throws(() => new MnemoClient("ftp://h", "k"), TypeError);
    assert.throws(() => new MnemoClient("http://h", ""), TypeError);
    assert.throws(() => new MnemoClient("http://h", "k", { maxRetries: -1 }), RangeError);
    assert.throws(() => new MnemoClient("http://h", "k", { timeoutMs: Number.NaN }), RangeError);
  });

  test("store sends snake_case and answers camelCase", async () => {
    const { client, calls } = recording(200, {
      ids: [7],
      turns: [{ id: 7, external_id: "msg-1", created: true }],
    });
    const out = await client.store("maya", "s1", "user", "Biscuit ate a sock!", {
      speaker: "Maya",
      eventTime: new Date(Date.UTC(2026, 9, 27, 9, 30)),
      metadata: { channel_name: "app" },
      externalId: "msg-1",
    });
    assert.deepEqual(out, { ids: [7], turns: [{ id: 7, externalId: "msg-1", created: true }] });
    assert.equal(calls.length, 1);
    const call = calls[0]!;
    assert.equal(call.method, "POST");
    assert.equal(call.url, "http://mnemo.test:8080/v1/turns");
    assert.equal(call.headers.authorization, "Bearer k-123");
    assert.equal(call.headers["content-type"], "application/json");
    assert.deepEqual(call.body, {
      user_id: "maya",
      session_id: "s1",
      role: "user",
      content: "Biscuit ate a sock!",
      speaker: "Maya",
      event_time: "2026-10-27T09:30:00.000Z",
      metadata: { channel_name: "app" },
      external_id: "msg-1",
    });
    // Optional fields left out are not sent at all (the server refuses unknown fields,
    // and undefined is not JSON).
    await client.store("maya", "s1", "assistant", "ok", { speaker: undefined });
    assert.deepEqual(calls[1]!.body, { user_id: "maya", session_id: "s1", role: "assistant", content: "ok" });
  });

  test("storeBatch sends { turns: [...] }", async () => {
    const { client, calls } = recording(200, {
      ids: [1, 2],
      turns: [
        { id: 1, external_id: "a", created: true },
        { id: 2, external_id: "b", created: false },
      ],
    });
    const out = await client.storeBatch([
      { userId: "u", sessionId: "s", role: "user", content: "one", externalId: "a" },
      { userId: "u", sessionId: "s", role: "assistant", content: "two", eventTime: "2026-01-01T00:00:00+01:00" },
    ]);
    assert.deepEqual(out.ids, [1, 2]);
    assert.equal(out.turns[1]!.created, false);
    assert.deepEqual(calls[0]!.body, {
      turns: [
        { user_id: "u", session_id: "s", role: "user", content: "one", external_id: "a" },
        { user_id: "u", session_id: "s", role: "assistant", content: "two", event_time: "2026-01-01T00:00:00+01:00" },
      ],
    });
  });

  test("context converts every field, leaving data keys alone", async () => {
    const { client, calls } = recording(200, {
      recent: [TURN],
      items: [{ kind: "turn", id: 7, text: "Biscuit ate a sock!", score: 0.9, event_time: "2026-10-27T09:30:00Z", session_id: "s1" }],
      entities: [
        {
          entity: { id: 3, kind: "person", name: "Biscuit", aliases: [], first_seen: "2026-10-27T09:30:00Z", last_seen: "2026-10-27T09:30:00Z" },
          weight: 1,
          mentions: 1,
          score: 0.8,
        },
      ],
      emotion: { scores: { labels: { joy: 0.1 }, valence: 0, arousal: 0 }, turns: 1, last_turn: 7, updated: "2026-10-27T09:30:00Z" },
      degraded: ["graph"],
      timings_ms: { graph_sync: 0.5, total: 1.25 },
      prompt: "P",
      tokens: 12,
      cached: false,
    });
    const out = await client.context("maya", "How is my dog?", {
      sessionId: "s2",
      maxRecent: 3,
      maxItems: 4,
      tokenBudget: 500,
      deadlineMs: 200,
    });
    assert.deepEqual(calls[0]!.body, {
      user_id: "maya",
      query: "How is my dog?",
      session_id: "s2",
      max_recent: 3,
      max_items: 4,
      token_budget: 500,
      deadline_ms: 200,
    });
    assert.deepEqual(out.recent[0], {
      id: 7,
      externalId: "msg-1",
      userId: "maya",
      sessionId: "s1",
      role: "user",
      speaker: "Maya",
      content: "Biscuit ate a sock!",
      eventTime: "2026-10-27T09:30:00Z",
      ingestTime: "2026-10-27T09:30:01.5Z",
      metadata: { channel_name: "app", nested: { some_key: 1 } },
      emotion: { labels: { joy_ful: 0.5 }, valence: 0.2, arousal: 0.3 },
      importance: 0.4,
    });
    assert.deepEqual(out.items[0], {
      kind: "turn",
      id: 7,
      text: "Biscuit ate a sock!",
      score: 0.9,
      eventTime: "2026-10-27T09:30:00Z",
      sessionId: "s1",
    });
    assert.equal(out.entities[0]!.entity.firstSeen, "2026-10-27T09:30:00Z");
    assert.equal(out.entities[0]!.entity.lastSeen, "2026-10-27T09:30:00Z");
    assert.deepEqual(out.emotion, {
      scores: { labels: { joy: 0.1 }, valence: 0, arousal: 0 },
      turns: 1,
      lastTurn: 7,
      updated: "2026-10-27T09:30:00Z",
    });
    assert.deepEqual(out.timingsMs, { graph_sync: 0.5, total: 1.25 });
    assert.deepEqual(out.degraded, ["graph"]);
    assert.equal(out.prompt, "P");
    assert.equal(out.tokens, 12);
    assert.equal(out.cached, false);
  });

  test("search encodes its query string", async () => {
    const { client, calls } = recording(200, {
      hits: [{ kind: "turn", id: 1, session_id: "s", event_time: "2026-01-01T00:00:00Z", text: "t", score: 1.5 }],
    });
    const hits = await client.search("maya & co", "dog + sock?", {
      limit: 5,
      offset: 10,
      from: new Date(Date.UTC(2026, 0, 1)),
      to: "2026-02-01T00:00:00+01:00",
    });
    assert.deepEqual(hits, [{ kind: "turn", id: 1, sessionId: "s", eventTime: "2026-01-01T00:00:00Z", text: "t", score: 1.5 }]);
    const url = new URL(calls[0]!.url);
    assert.equal(url.pathname, "/v1/search");
    assert.equal(url.searchParams.get("user_id"), "maya & co");
    assert.equal(url.searchParams.get("q"), "dog + sock?");
    assert.equal(url.searchParams.get("limit"), "5");
    assert.equal(url.searchParams.get("offset"), "10");
    assert.equal(url.searchParams.get("from"), "2026-01-01T00:00:00.000Z");
    assert.equal(url.searchParams.get("to"), "2026-02-01T00:00:00+01:00");
    assert.match(calls[0]!.url, /to=2026-02-01T00%3A00%3A00%2B01%3A00/);
    // Options left out are not sent.
    await client.search("u", "q");
    assert.equal(new URL(calls[1]!.url).search, "?user_id=u&q=q");
  });

  test("path segments are percent-encoded; dot segments refused", async () => {
    const { client, calls } = recording(200, { turns: [TURN], next_before: 7 });
    const page = await client.history("a/b c?é", "s#1%", { limit: 1, before: 9 });
    assert.equal(page.nextBefore, 7);
    assert.equal(page.turns[0]!.externalId, "msg-1");
    assert.equal(
      calls[0]!.url,
      "http://mnemo.test:8080/v1/users/a%2Fb%20c%3F%C3%A9/sessions/s%231%25/turns?limit=1&before=9",
    );
    await assert.rejects(client.history("..", "s"), RangeError);
    await assert.rejects(client.graph(".", "x"), RangeError);
    await assert.rejects(client.forgetUser(""), RangeError);
    assert.equal(calls.length, 1);
  });

  test("history's last page has nextBefore null", async () => {
    const { client } = recording(200, { turns: [], next_before: null });
    assert.deepEqual(await client.history("u", "s"), { turns: [], nextBefore: null });
  });

  test("graph, forgetUser, forgetTurn", async () => {
    const entity = { id: 1, kind: "place", name: "Lisbon", aliases: ["Lisboa"], first_seen: "2026-01-01T00:00:00Z", last_seen: "2026-01-02T00:00:00Z" };
    const { client, calls } = recording(200, {
      center: entity,
      entities: [{ ...entity, id: 2, name: "Maya", kind: "person" }],
      edges: [{ kind: "RELATED_TO", src: 1, dst: 2, weight: 1, count: 1, first_seen: "2026-01-01T00:00:00Z", last_seen: "2026-01-02T00:00:00Z", turns: [5] }],
    });
    const g = await client.graph("u 1", "Lisbon", { depth: 2, limit: 3 });
    assert.deepEqual(g.center, { id: 1, kind: "place", name: "Lisbon", aliases: ["Lisboa"], firstSeen: "2026-01-01T00:00:00Z", lastSeen: "2026-01-02T00:00:00Z" });
    assert.deepEqual(g.edges[0], { kind: "RELATED_TO", src: 1, dst: 2, weight: 1, count: 1, firstSeen: "2026-01-01T00:00:00Z", lastSeen: "2026-01-02T00:00:00Z", turns: [5] });
    assert.equal(calls[0]!.url, "http://mnemo.test:8080/v1/users/u%201/graph?entity=Lisbon&depth=2&limit=3");

    const forget = recording(200, { turns: 2, summaries: 1 });
    assert.deepEqual(await forget.client.forgetUser("u/1"), { turns: 2, summaries: 1 });
    assert.equal(forget.calls[0]!.method, "DELETE");
    assert.equal(forget.calls[0]!.url, "http://mnemo.test:8080/v1/users/u%2F1");
    await forget.client.forgetTurn("u&1", 42);
    assert.equal(forget.calls[1]!.url, "http://mnemo.test:8080/v1/turns/42?user_id=u%261");
    assert.equal(forget.calls[1]!.body, undefined);
  });

  test("ready: 503 is an answer, not an error", async () => {
    const body = {
      ready: false,
      node: "n1",
      accepting: true,
      head: 10,
      actors: [{ name: "archive", state: "restarting", restarts: { panic_x: 1 }, last_failure: "boom", mailbox_depth: null }],
      processors: [{ name: "indexer", running: true, holds_lease: true, checkpoint: 4, lag: 6 }],
      backlog: 6,
      behind: true,
      admission: [{ operation: "store", in_flight: 1, limit: 8 }],
    };
    const { client, calls } = recording(503, body);
    const r = await client.ready();
    assert.equal(calls.length, 1, "not retried");
    assert.equal(r.ready, false);
    assert.equal(r.status, 503);
    assert.deepEqual(r.body, {
      ready: false,
      node: "n1",
      accepting: true,
      head: 10,
      actors: [{ name: "archive", state: "restarting", restarts: { panic_x: 1 }, lastFailure: "boom", mailboxDepth: null }],
      processors: [{ name: "indexer", running: true, holdsLease: true, checkpoint: 4, lag: 6 }],
      backlog: 6,
      behind: true,
      admission: [{ operation: "store", inFlight: 1, limit: 8 }],
    });
    const ok = recording(200, { ...body, ready: true });
    assert.equal((await ok.client.ready()).ready, true);
    const unauthorized = recording(401, { error: { code: "unauthorized", message: "invalid API key" } });
    await assert.rejects(unauthorized.client.ready(), AuthenticationError);
  });

  test("errors by status, with the server's code and message", async () => {
    const cases: [number, string, typeof MnemoError][] = [
      [400, "malformed_json", BadRequestError],
      [401, "unauthorized", AuthenticationError],
      [404, "not_found", NotFoundError],
      [405, "method_not_allowed", MnemoError],
      [408, "timeout", MnemoTimeoutError],
      [413, "too_large", PayloadTooLargeError],
      [414, "uri_too_long", PayloadTooLargeError],
      [422, "invalid_input", InvalidInputError],
      [431, "headers_too_large", PayloadTooLargeError],
      [500, "internal", MnemoError],
      [504, "timeout", MnemoTimeoutError],
    ];
    for (const [status, code, Class] of cases) {
      const { client } = recording(status, { error: { code, message: `m${status}` } });
      const err = await client.forgetUser("u").then(
        () => assert.fail("no error"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Class, `${status}: ${String(err)}`);
      assert.ok(err instanceof MnemoError);
      assert.ok(err instanceof Error);
      assert.equal(err.status, status);
      assert.equal(err.code, code);
      assert.equal(err.message, `m${status}`);
      assert.equal(err.name, Class.name);
      assert.equal(err.retryAfterMs, undefined);
    }
  });

  test("a body that is not Mnemo's JSON gets a synthesised code", async () => {
    const empty = recording(431, "");
    await assert.rejects(empty.client.forgetUser("u"), (e: unknown) => {
      assert.ok(e instanceof PayloadTooLargeError);
      assert.equal(e.code, "headers_too_large");
      assert.equal(e.status, 431);
      return true;
    });
    const html = recording(502, "<html>Bad Gateway</html>");
    await assert.rejects(html.client.forgetUser("u"), (e: unknown) => {
      assert.ok(e instanceof MnemoError);
      assert.equal(e.constructor, MnemoError);
      assert.equal(e.code, "http_502");
      assert.match(e.message, /Bad Gateway/);
      assert.equal(e.body, "<html>Bad Gateway</html>");
      return true;
    });
    const notObject = recording(200, "[1,2]");
    await assert.rejects(notObject.client.forgetUser("u"), (e: unknown) => {
      assert.ok(e instanceof MnemoError);
      assert.equal(e.code, "invalid_response");
      return true;
    });
  });

  test("Retry-After: seconds or an HTTP date", () => {
    assert.equal(retryAfterMs(null), undefined);
    assert.equal(retryAfterMs("0"), 0);
    assert.equal(retryAfterMs(" 3 "), 3000);
    assert.equal(retryAfterMs("1.5"), 1500);
    assert.equal(retryAfterMs("soon"), undefined);
    assert.equal(retryAfterMs("-1"), undefined);
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
    assert.equal(retryAfterMs("Wed, 31 Dec 2025 23:59:00 GMT", now), 0);
  });
});

/** A node:http server answering each request with the next of `answers` (the last repeats). */
type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | "hang";

async function fakeServer(answers: Answer[]) {
  const requests: { method: string; url: string; body: string; at: number }[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      const answer = answers[Math.min(requests.length, answers.length - 1)]!;
      requests.push({ method: req.method ?? "", url: req.url ?? "", body, at: Date.now() });
      if (answer === "hang") return; // never answers
      const text = answer.body === undefined ? "" : JSON.stringify(answer.body);
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const STORED = { ids: [1], turns: [{ id: 1, external_id: "x", created: true }] };
const BUSY = { error: { code: "busy", message: "the archive's queue is full" } };
const DOWN = { error: { code: "unavailable", message: "the archive is restarting" } };

describe("retry policy", () => {
  const servers: { close(): Promise<void> }[] = [];
  async function serve(answers: Answer[]) {
    const s = await fakeServer(answers);
    servers.push(s);
    return s;
  }
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  test("429 with Retry-After: 0 is retried once, then succeeds", async () => {
    const s = await serve([
      { status: 429, headers: { "retry-after": "0" }, body: BUSY },
      { status: 200, body: STORED },
    ]);
    const client = new MnemoClient(s.url, "k");
    const out = await client.store("u", "s", "user", "hello", { externalId: "x" });
    assert.deepEqual(out.ids, [1]);
    assert.equal(s.requests.length, 2);
    assert.equal(s.requests[0]!.body, s.requests[1]!.body, "the same body is sent again");
    assert.equal(s.requests[1]!.method, "POST");
  });

  test("maxRetries: 0 throws BusyError at once", async () => {
    const s = await serve([{ status: 429, headers: { "retry-after": "0" }, body: BUSY }, { status: 200, body: STORED }]);
    const client = new MnemoClient({ baseUrl: s.url, apiKey: "k", maxRetries: 0 });
    await assert.rejects(client.store("u", "s", "user", "hello"), (e: unknown) => {
      assert.ok(e instanceof BusyError);
      assert.equal(e.status, 429);
      assert.equal(e.code, "busy");
      assert.equal(e.retryAfterMs, 0);
      return true;
    });
    assert.equal(s.requests.length, 1);
  });

  test("Retry-After over maxRetryWaitMs throws at once", async () => {
    const s = await serve([{ status: 429, headers: { "retry-after": "60" }, body: BUSY }, { status: 200, body: STORED }]);
    const client = new MnemoClient(s.url, "k", { maxRetryWaitMs: 1000 });
    const started = Date.now();
    await assert.rejects(client.search("u", "q"), (e: unknown) => {
      assert.ok(e instanceof BusyError);
      assert.equal(e.retryAfterMs, 60_000);
      return true;
    });
    assert.ok(Date.now() - started < 1000);
    assert.equal(s.requests.length, 1);
  });

  test("503 without Retry-After waits the default, then succeeds", async () => {
    const s = await serve([{ status: 503, body: DOWN }, { status: 200, body: STORED }]);
    const client = new MnemoClient(s.url, "k", { defaultRetryWaitMs: 150 });
    await client.store("u", "s", "user", "hello");
    assert.equal(s.requests.length, 2);
    const waited = s.requests[1]!.at - s.requests[0]!.at;
    assert.ok(waited >= 140, `waited ${waited} ms`);
  });

  test("an HTTP-date Retry-After in the past retries at once", async () => {
    const s = await serve([
      { status: 503, headers: { "retry-after": new Date(Date.now() - 60_000).toUTCString() }, body: DOWN },
      { status: 200, body: { turns: 0, summaries: 0 } },
    ]);
    const client = new MnemoClient(s.url, "k");
    assert.deepEqual(await client.forgetUser("u"), { turns: 0, summaries: 0 });
    assert.equal(s.requests.length, 2);
  });

  test("retries run out after maxRetries", async () => {
    const s = await serve([{ status: 503, headers: { "retry-after": "0" }, body: DOWN }]);
    const client = new MnemoClient(s.url, "k", { maxRetries: 2 });
    await assert.rejects(client.context("u", "q"), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.code, "unavailable");
      assert.equal(e.retryAfterMs, 0);
      return true;
    });
    assert.equal(s.requests.length, 3);
  });

  test("other errors are not retried", async () => {
    const s = await serve([{ status: 422, body: { error: { code: "invalid_input", message: "content is empty" } } }]);
    const client = new MnemoClient(s.url, "k");
    await assert.rejects(client.store("u", "s", "user", ""), InvalidInputError);
    assert.equal(s.requests.length, 1);
  });

  test("the client's timeout is a MnemoConnectionError", async () => {
    const s = await serve(["hang"]);
    const client = new MnemoClient(s.url, "k", { timeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(client.search("u", "q"), (e: unknown) => {
      assert.ok(e instanceof MnemoConnectionError);
      assert.equal(e.status, 0);
      assert.equal(e.code, "timeout");
      assert.ok(e.cause !== undefined);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
    assert.equal(s.requests.length, 1, "a request without an answer is not retried");
  });
});

describe("connection failures", () => {
  let port = 0;
  before(async () => {
    // A port that was free a moment ago: nothing listens on it.
    const s = await fakeServer([{ status: 200 }]);
    port = Number(new URL(s.url).port);
    await s.close();
  });

  test("connection refused is a MnemoConnectionError with its cause", async () => {
    const client = new MnemoClient(`http://127.0.0.1:${port}`, "k");
    await assert.rejects(client.store("u", "s", "user", "hello"), (e: unknown) => {
      assert.ok(e instanceof MnemoConnectionError);
      assert.ok(e instanceof MnemoError);
      assert.equal(e.status, 0);
      assert.equal(e.code, "connection_failed");
      assert.ok(e.cause !== undefined);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
  });
});
