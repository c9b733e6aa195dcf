/**
 * The client against a real `mnemo serve` (MNEMO_BIN, or a release build; see
 * helpers.ts). One server for the file, two tenants; each test uses users of its own.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import {
  AuthenticationError,
  BadRequestError,
  InvalidInputError,
  MnemoClient,
  MnemoError,
  NotFoundError,
  PayloadTooLargeError,
  type SearchHit,
} from "mnemo-client";

import { eventually, startServer, type Server } from "./helpers.js";

let server: Server;
let t1: MnemoClient;
let t2: MnemoClient;

/** A user id no other test uses. */
function user(name: string): string {
  return `${name}-${randomBytes(4).toString("hex")}`;
}

/** Waits until every processor has handled every stored turn. */
async function processed(): Promise<void> {
  await eventually("processors caught up", async () => {
    const r = await t1.ready();
    return r.body !== null && r.body.processors.every((p) => p.lag === 0) ? true : undefined;
  });
}

/** Searches until at least `count` hits come back (the index commits asynchronously). */
async function searchUntil(
  client: MnemoClient,
  userId: string,
  query: string,
  count: number,
): Promise<SearchHit[]> {
  return eventually(`${count} hits for ${query}`, async () => {
    const hits = await client.search(userId, query, { limit: 100 });
    return hits.length >= count ? hits : undefined;
  });
}

const iso = (d: string) => new Date(d).toISOString();

describe("against mnemo serve", () => {
  before(async () => {
    server = await startServer();
    t1 = new MnemoClient(server.baseUrl, server.key1);
    t2 = new MnemoClient({ baseUrl: server.baseUrl, apiKey: server.key2 });
  });

  after(async () => {
    if (server === undefined) return;
    const { code, signal } = await server.stop();
    assert.equal(signal, null, `mnemo was killed by ${signal}; stderr:\n${server.log().slice(-4000)}`);
    assert.equal(code, 0, `mnemo exited with ${code}; stderr:\n${server.log().slice(-4000)}`);
  });

  test("ready", async () => {
    const r = await t1.ready();
    assert.equal(r.ready, true);
    assert.equal(r.status, 200);
    assert.ok(r.body !== null);
    assert.equal(r.body.ready, true);
    assert.equal(r.body.accepting, true);
    assert.equal(typeof r.body.node, "string");
    assert.ok(r.body.actors.some((a) => a.name === "archive" && a.state === "up"), JSON.stringify(r.body.actors));
    assert.ok(r.body.processors.length > 0);
    for (const p of r.body.processors) {
      assert.equal(typeof p.holdsLease, "boolean");
      assert.equal(typeof p.lag, "number");
    }
  });

  test("store answers the ids", async () => {
    const u = user("store");
    const out = await t1.store(u, "s1", "user", "Hello there");
    assert.equal(out.ids.length, 1);
    assert.equal(out.turns.length, 1);
    const [turn] = out.turns;
    assert.ok(turn !== undefined);
    assert.equal(turn.id, out.ids[0]);
    assert.ok(Number.isInteger(turn.id) && turn.id > 0);
    assert.equal(turn.created, true);
    assert.equal(typeof turn.externalId, "string");
    assert.ok(turn.externalId.length > 0, "an external id is generated");
    const again = await t1.store(u, "s1", "assistant", "Hi!");
    assert.ok(again.ids[0]! > turn.id);
  });

  test("every optional field, and externalId idempotency", async () => {
    const u = user("fields");
    const eventTime = new Date(Date.UTC(2026, 9, 27, 9, 30, 0));
    const metadata = { channel_name: "app", nested: { some_key: [1, "two", null, true] } };
    const first = await t1.store(u, "s1", "user", "Biscuit ate a sock!", {
      speaker: "Maya",
      eventTime,
      metadata,
      externalId: "msg-1041",
    });
    assert.equal(first.turns[0]!.created, true);
    assert.equal(first.turns[0]!.externalId, "msg-1041");
    // The same external id again: nothing new, the same id.
    const second = await t1.store(u, "s1", "user", "Biscuit ate a sock!", { externalId: "msg-1041" });
    assert.deepEqual(second.ids, first.ids);
    assert.deepEqual(second.turns, [{ id: first.ids[0], externalId: "msg-1041", created: false }]);
    // A string event time, another role.
    const third = await t1.store(u, "s1", "assistant", "Oh no!", { eventTime: "2026-10-27T10:30:00+01:00", speaker: "Bot" });

    const page = await t1.history(u, "s1");
    assert.equal(page.turns.length, 2);
    assert.equal(page.nextBefore, null);
    const [newest, oldest] = page.turns;
    assert.ok(newest !== undefined && oldest !== undefined);
    assert.equal(newest.id, third.ids[0]);
    assert.equal(newest.role, "assistant");
    assert.equal(newest.speaker, "Bot");
    assert.equal(iso(newest.eventTime), "2026-10-27T09:30:00.000Z");
    assert.deepEqual(newest.metadata, {});
    assert.equal(oldest.id, first.ids[0]);
    assert.equal(oldest.externalId, "msg-1041");
    assert.equal(oldest.userId, u);
    assert.equal(oldest.sessionId, "s1");
    assert.equal(oldest.role, "user");
    assert.equal(oldest.speaker, "Maya");
    assert.equal(oldest.content, "Biscuit ate a sock!");
    assert.equal(iso(oldest.eventTime), eventTime.toISOString());
    assert.equal(typeof oldest.ingestTime, "string");
    assert.ok(!Number.isNaN(Date.parse(oldest.ingestTime)));
    assert.deepEqual(oldest.metadata, metadata, "metadata keys are data: not camelCased");
  });

  test("storeBatch stores all, in order", async () => {
    const u = user("batch");
    const out = await t1.storeBatch([
      { userId: u, sessionId: "s1", role: "user", content: "one", externalId: "b-1" },
      { userId: u, sessionId: "s1", role: "assistant", content: "two", speaker: "Bot" },
      { userId: u, sessionId: "s2", role: "system", content: "three", eventTime: new Date(), metadata: { k: 1 } },
    ]);
    assert.equal(out.ids.length, 3);
    assert.equal(new Set(out.ids).size, 3);
    assert.deepEqual(out.turns.map((t) => t.id), out.ids);
    assert.ok(out.turns.every((t) => t.created));
    assert.equal(out.turns[0]!.externalId, "b-1");
    const s1 = await t1.history(u, "s1");
    assert.deepEqual(s1.turns.map((t) => t.content), ["two", "one"]);
    const s2 = await t1.history(u, "s2");
    assert.equal(s2.turns[0]!.role, "system");
    assert.deepEqual(s2.turns[0]!.metadata, { k: 1 });
    // All or nothing: one bad turn, nothing stored.
    await assert.rejects(
      t1.storeBatch([
        { userId: u, sessionId: "s3", role: "user", content: "fine" },
        { userId: u, sessionId: "s3", role: "user", content: "" },
      ]),
      InvalidInputError,
    );
    assert.deepEqual((await t1.history(u, "s3")).turns, []);
    // The batch's external id again: not created twice.
    const again = await t1.storeBatch([{ userId: u, sessionId: "s1", role: "user", content: "one", externalId: "b-1" }]);
    assert.deepEqual(again.turns, [{ id: out.ids[0], externalId: "b-1", created: false }]);
  });

  test("context returns the stored fact once processed", async () => {
    const u = user("context");
    const stored = await t1.store(u, "s1", "user", "My dog Biscuit ate a whole sock at the beach yesterday.");
    await processed();
    const answer = await eventually("context with the sock", async () => {
      const c = await t1.context(u, "What did Biscuit eat?", { sessionId: "s2", maxItems: 5, deadlineMs: 5000 });
      return c.items.some((i) => i.id === stored.ids[0]) ? c : undefined;
    });
    const item = answer.items.find((i) => i.id === stored.ids[0])!;
    assert.equal(item.kind, "turn");
    assert.match(item.text, /sock/);
    assert.equal(item.sessionId, "s1");
    assert.ok(item.eventTime !== null && !Number.isNaN(Date.parse(item.eventTime)));
    assert.equal(typeof item.score, "number");
    assert.match(answer.prompt, /sock/);
    assert.ok(answer.tokens > 0);
    assert.equal(typeof answer.cached, "boolean");
    assert.ok(Array.isArray(answer.degraded));
    assert.equal(typeof answer.timingsMs.total, "number");
    assert.deepEqual(answer.recent, [], "session s2 has no turns");

    // The turn's own session comes back as recent turns, oldest first.
    const withRecent = await t1.context(u, "sock", { sessionId: "s1", maxRecent: 5, tokenBudget: 1000, deadlineMs: 5000 });
    assert.deepEqual(withRecent.recent.map((t) => t.id), stored.ids);
    assert.equal(withRecent.recent[0]!.sessionId, "s1");
    assert.equal(withRecent.recent[0]!.userId, u);
  });

  test("search with limit, offset, from and to", async () => {
    const u = user("search");
    const day = (d: number) => new Date(Date.UTC(2026, 0, d, 12));
    const out = await t1.storeBatch(
      [1, 2, 3, 4, 5].map((d) => ({
        userId: u,
        sessionId: `day-${d}`,
        role: "user" as const,
        content: `Pottery class number ${d} was fun`,
        eventTime: day(d),
      })),
    );
    const all = await searchUntil(t1, u, "pottery", 5);
    assert.equal(all.length, 5);
    assert.deepEqual(new Set(all.map((h) => h.id)), new Set(out.ids));
    for (const h of all) {
      assert.equal(h.kind, "turn");
      assert.match(h.text, /Pottery/);
      assert.match(h.sessionId, /^day-\d$/);
      assert.equal(typeof h.score, "number");
      assert.ok(!Number.isNaN(Date.parse(h.eventTime)));
    }

    const page1 = await t1.search(u, "pottery", { limit: 2 });
    const page2 = await t1.search(u, "pottery", { limit: 2, offset: 2 });
    const page3 = await t1.search(u, "pottery", { limit: 2, offset: 4 });
    assert.equal(page1.length, 2);
    assert.equal(page2.length, 2);
    assert.equal(page3.length, 1);
    const paged = [...page1, ...page2, ...page3].map((h) => h.id);
    assert.equal(new Set(paged).size, 5, "pages do not overlap");

    const fromDay3 = await t1.search(u, "pottery", { from: day(3) });
    assert.deepEqual(fromDay3.map((h) => h.sessionId).sort(), ["day-3", "day-4", "day-5"]);
    // `to` is exclusive; a "+01:00" offset must arrive intact (%2B).
    const toDay3 = await t1.search(u, "pottery", { to: "2026-01-03T13:00:00+01:00" });
    assert.deepEqual(toDay3.map((h) => h.sessionId).sort(), ["day-1", "day-2"]);
    const between = await t1.search(u, "pottery", { from: "2026-01-02T00:00:00Z", to: day(4) });
    assert.deepEqual(between.map((h) => h.sessionId).sort(), ["day-2", "day-3"]);
    assert.deepEqual(await t1.search(u, "zeppelin"), []);
  });

  test("history pages with before / nextBefore", async () => {
    const u = user("history");
    const out = await t1.storeBatch(
      [0, 1, 2, 3, 4].map((i) => ({ userId: u, sessionId: "s1", role: "user" as const, content: `turn ${i}` })),
    );
    const seen: number[] = [];
    let before: number | undefined;
    const sizes: number[] = [];
    for (let pages = 0; pages < 10; pages++) {
      const page = await t1.history(u, "s1", { limit: 2, before });
      sizes.push(page.turns.length);
      seen.push(...page.turns.map((t) => t.id));
      if (page.nextBefore === null) break;
      assert.equal(page.nextBefore, page.turns.at(-1)!.id);
      before = page.nextBefore;
    }
    assert.deepEqual(sizes, [2, 2, 1]);
    assert.deepEqual(seen, [...out.ids].reverse(), "newest first, every turn once");
    assert.deepEqual(await t1.history(u, "nope"), { turns: [], nextBefore: null });
  });

  test("graph of an entity named in stored turns", async () => {
    const u = user("graph");
    const stored = await t1.storeBatch([
      { userId: u, sessionId: "s1", role: "user", content: "My dog Biscuit lives with Maya in Lisbon." },
      { userId: u, sessionId: "s1", role: "user", content: "Maya told me she works at NASA now." },
    ]);
    await processed();
    const g = await eventually("Biscuit in the graph", async () => {
      try {
        return await t1.graph(u, "Biscuit");
      } catch (e) {
        if (e instanceof NotFoundError) return undefined;
        throw e;
      }
    });
    assert.equal(g.center.name, "Biscuit");
    assert.ok(!Number.isNaN(Date.parse(g.center.firstSeen)));
    assert.ok(!Number.isNaN(Date.parse(g.center.lastSeen)));
    assert.ok(Array.isArray(g.center.aliases));
    const names = g.entities.map((e) => e.name).sort();
    assert.deepEqual(names, ["Lisbon", "Maya"], JSON.stringify(g));
    assert.equal(g.entities.find((e) => e.name === "Lisbon")!.kind, "place");
    assert.equal(g.entities.find((e) => e.name === "Maya")!.kind, "person");
    assert.ok(g.edges.length >= 2, JSON.stringify(g.edges));
    for (const e of g.edges) {
      assert.equal(e.kind, "RELATED_TO");
      assert.ok(e.count >= 1);
      assert.ok(e.turns.includes(stored.ids[0]!), JSON.stringify(e));
      assert.ok(!Number.isNaN(Date.parse(e.firstSeen)));
    }
    // Two hops reach NASA through Maya.
    const deep = await t1.graph(u, "Biscuit", { depth: 2, limit: 10 });
    assert.ok(deep.entities.some((e) => e.name === "NASA"), JSON.stringify(deep.entities));
    const oneHop = await t1.graph(u, "biscuit", { depth: 1 });
    assert.equal(oneHop.center.id, g.center.id, "names match case-insensitively");
    await assert.rejects(t1.graph(u, "Nobody"), NotFoundError);
    await assert.rejects(t1.graph(u, "Biscuit", { depth: 3 as never }), InvalidInputError);
  });

  test("forgetTurn, then forgetUser", async () => {
    const u = user("forget");
    const out = await t1.storeBatch([
      { userId: u, sessionId: "s1", role: "user", content: "The zeppelin flew over the harbour" },
      { userId: u, sessionId: "s1", role: "user", content: "Another zeppelin followed it" },
    ]);
    const [first, second] = out.ids;
    await searchUntil(t1, u, "zeppelin", 2);
    assert.deepEqual(await t1.forgetTurn(u, first!), { turns: 1, summaries: 0 });
    const left = await eventually("the forgotten turn gone from search", async () => {
      const hits = await t1.search(u, "zeppelin");
      return hits.length === 1 ? hits : undefined;
    });
    assert.equal(left[0]!.id, second);
    await assert.rejects(t1.forgetTurn(u, first!), NotFoundError);
    assert.deepEqual((await t1.history(u, "s1")).turns.map((t) => t.id), [second]);

    const gone = await t1.forgetUser(u);
    assert.equal(gone.turns, 1);
    assert.equal(typeof gone.summaries, "number");
    await eventually("the user gone from search", async () => ((await t1.search(u, "zeppelin")).length === 0 ? true : undefined));
    assert.deepEqual(await t1.history(u, "s1"), { turns: [], nextBefore: null });
    assert.deepEqual(await t1.forgetUser(u), { turns: 0, summaries: 0 }, "an unknown user: zero counts");
  });

  test("tenants are isolated", async () => {
    const u = user("shared");
    const out = await t1.store(u, "s1", "user", "The walrus password is secret");
    await searchUntil(t1, u, "walrus", 1);
    assert.deepEqual(await t2.search(u, "walrus"), []);
    assert.deepEqual(await t2.history(u, "s1"), { turns: [], nextBefore: null });
    await assert.rejects(t2.forgetTurn(u, out.ids[0]!), NotFoundError);
    assert.deepEqual(await t2.forgetUser(u), { turns: 0, summaries: 0 });
    // t2's own turn for the same user id stays apart too.
    await t2.store(u, "s1", "user", "t2 talks about a walrus as well");
    assert.deepEqual((await t1.history(u, "s1")).turns.map((t) => t.id), out.ids);
    assert.equal((await t1.search(u, "walrus")).length, 1);
  });

  test("unusual ids survive the URL", async () => {
    const u = user("a/b c?d#e%f&g=ü");
    const session = "sess/1 +x";
    const out = await t1.store(u, session, "user", "Slashes and spaces");
    const page = await t1.history(u, session);
    assert.deepEqual(page.turns.map((t) => t.id), out.ids);
    assert.equal(page.turns[0]!.userId, u);
    assert.equal(page.turns[0]!.sessionId, session);
    assert.deepEqual(await t1.forgetTurn(u, out.ids[0]!), { turns: 1, summaries: 0 });
    assert.deepEqual(await t1.forgetUser(u), { turns: 0, summaries: 0 });
  });

  test("errors", async () => {
    const wrong = new MnemoClient(server.baseUrl, "not-a-key");
    await assert.rejects(wrong.store("u", "s", "user", "hi"), (e: unknown) => {
      assert.ok(e instanceof AuthenticationError);
      assert.ok(e instanceof MnemoError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "unauthorized");
      assert.ok(e.message.length > 0);
      return true;
    });
    await assert.rejects(t1.store(user("err"), "s", "user", ""), (e: unknown) => {
      assert.ok(e instanceof InvalidInputError);
      assert.equal(e.status, 422);
      assert.equal(e.code, "invalid_input");
      return true;
    });
    await assert.rejects(t1.forgetTurn(user("err"), 987_654_321), (e: unknown) => {
      assert.ok(e instanceof NotFoundError);
      assert.equal(e.status, 404);
      assert.equal(e.code, "not_found");
      return true;
    });
    await assert.rejects(t1.search(user("err"), "dog\u0000sock"), (e: unknown) => {
      assert.ok(e instanceof InvalidInputError);
      assert.equal(e.status, 422);
      return true;
    });
    await assert.rejects(t1.context(user("err"), "dog\u0000sock"), InvalidInputError);
    await assert.rejects(t1.store(user("err"), "s", "user", "a\u0000b"), InvalidInputError);
    await assert.rejects(t1.store(user("err"), "s", "robot" as never, "hi"), (e: unknown) => {
      assert.ok(e instanceof BadRequestError);
      assert.equal(e.status, 400);
      assert.equal(e.code, "invalid_request");
      return true;
    });
    await assert.rejects(t1.store(user("err"), "s", "user", "x".repeat(70_000)), (e: unknown) => {
      assert.ok(e instanceof PayloadTooLargeError);
      assert.equal(e.status, 413);
      assert.equal(e.code, "too_large");
      return true;
    });
    await assert.rejects(t1.search(user("err"), "dog", { limit: 0 }), InvalidInputError);
    await assert.rejects(t1.history(user("err"), "s", { limit: 0 }), InvalidInputError);
    await assert.rejects(t1.forgetTurn(user("err"), 1.5), BadRequestError);
  });

  test("50 concurrent stores", async () => {
    const u = user("concurrent");
    const outs = await Promise.all(
      Array.from({ length: 50 }, (_, i) => t1.store(u, `s${i % 5}`, "user", `concurrent turn ${i}`)),
    );
    const ids = outs.map((o) => o.ids[0]!);
    assert.equal(new Set(ids).size, 50);
    assert.ok(outs.every((o) => o.turns[0]!.created));
    let total = 0;
    for (let s = 0; s < 5; s++) total += (await t1.history(u, `s${s}`)).turns.length;
    assert.equal(total, 50);
  });
});
