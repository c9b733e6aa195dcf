/** Test helpers: a real `mnemo serve` on a free port, and bounded waiting. */

import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package directory (clients/typescript), found from this file. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name;
      if (name === "mnemo-client") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the mnemo-client package directory");
    dir = parent;
  }
}

/**
 * The `mnemo` binary: `MNEMO_BIN`, else the first release build that exists of
 * `$CARGO_TARGET_DIR/release/mnemo`, `<repo>/target/release/mnemo`,
 * `$HOME/.cache/mnemo-target/release/mnemo`. Throws (failing the tests) when none does.
 */
export function mnemoBinary(): string {
  const fromEnv = process.env.MNEMO_BIN;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!existsSync(fromEnv)) {
      throw new Error(`MNEMO_BIN=${fromEnv} does not exist`);
    }
    return resolve(fromEnv);
  }
  const repo = resolve(packageRoot(), "..", "..");
  const candidates: string[] = [];
  if (process.env.CARGO_TARGET_DIR) candidates.push(join(process.env.CARGO_TARGET_DIR, "release", "mnemo"));
  candidates.push(join(repo, "target", "release", "mnemo"));
  if (process.env.HOME) candidates.push(join(process.env.HOME, ".cache", "mnemo-target", "release", "mnemo"));
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) {
    throw new Error(
      `no mnemo binary: set MNEMO_BIN, or build one (cargo build --release --bin mnemo); looked at:\n  ${candidates.join("\n  ")}`,
    );
  }
  return found;
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A running `mnemo serve` with two tenants, t1 and t2. */
export interface Server {
  baseUrl: string;
  key1: string;
  key2: string;
  /** What the server wrote to stderr so far. */
  log(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after 30 s); the exit code or signal. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const ANSI = /\u001b\[[0-9;]*m/g;

/** Starts `mnemo --config <tmp> serve` on a free port and waits for its "serving on" line. */
export async function startServer(): Promise<Server> {
  const bin = mnemoBinary();
  const dir = mkdtempSync(join(tmpdir(), "mnemo-ts-"));
  const key1 = randomBytes(32).toString("hex");
  const key2 = randomBytes(32).toString("hex");
  const config = join(dir, "config.toml");
  writeFileSync(
    config,
    [
      "[storage]",
      `data_dir = ${JSON.stringify(join(dir, "data"))}`,
      "[server]",
      'listen = "127.0.0.1:0"',
      "[auth]",
      `keys = [{ tenant = "t1", sha256 = "${sha256Hex(key1)}" }, { tenant = "t2", sha256 = "${sha256Hex(key2)}" }]`,
      "",
    ].join("\n"),
  );
  // The server's own configuration only: no MNEMO__* overrides from the caller's
  // environment, and info logs so the "serving on" line is written.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("MNEMO_")) env[k] = v;
  }
  env.RUST_LOG = "info";
  env.NO_COLOR = "1";
  const child: ChildProcess = spawn(bin, ["--config", config, "serve"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once("exit", (code, signal) => done({ code, signal }));
  });
  child.stdout?.on("data", () => {}); // drained, not needed
  const baseUrl = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`mnemo did not say "serving on" within 60 s; stderr:\n${stderr}`));
    }, 60_000);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      stderr += chunk;
      const match = /mnemo serving on (http:\/\/[0-9.]+:\d+)/.exec(stderr.replace(ANSI, ""));
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message}`));
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`mnemo exited (code ${code}, signal ${signal}) before serving; stderr:\n${stderr}`));
    });
  });
  let stopped: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  return {
    baseUrl,
    key1,
    key2,
    log: () => stderr,
    stop() {
      stopped ??= (async () => {
        child.kill("SIGTERM");
        let killTimer: NodeJS.Timeout | undefined;
        const killed = new Promise<void>((done) => {
          killTimer = setTimeout(() => {
            child.kill("SIGKILL");
            done();
          }, 30_000);
        });
        const result = await Promise.race([exited, killed.then(() => exited)]);
        clearTimeout(killTimer);
        rmSync(dir, { recursive: true, force: true });
        return result;
      })();
      return stopped;
    },
  };
}

/** Calls `probe` until it returns a value other than undefined, at most `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${last === undefined ? "" : ` (last error: ${String(last)})`}`);
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}
