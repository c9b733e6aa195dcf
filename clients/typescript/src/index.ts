/**
 * The TypeScript client of Mnemo's HTTP API (`mnemo serve`).
 *
 * ```ts
 * import { MnemoClient } from "mnemo-client";
 * const mnemo = new MnemoClient("http://127.0.0.1:8080", process.env.MNEMO_KEY!);
 * await mnemo.store("maya", "2026-10-27", "user", "Biscuit ate a sock!");
 * const { prompt } = await mnemo.context("maya", "How is my dog?");
 * ```
 *
 * @module
 */

export { MnemoClient, VERSION, retryAfterMs } from "./client.js";
export type { MnemoClientConfig, MnemoClientOptions } from "./client.js";
export {
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
} from "./errors.js";
export type { MnemoErrorInit } from "./errors.js";
export type * from "./types.js";
