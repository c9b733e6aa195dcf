/**
 * Errors thrown by {@link MnemoClient}. Every non-2xx answer is a {@link MnemoError} (or
 * one of its subclasses, by status); a request that got no answer at all (connection
 * refused or reset, DNS failure, the client's own timeout) is a
 * {@link MnemoConnectionError} with status 0.
 *
 * @module
 */

/** What a {@link MnemoError} is built from. */
export interface MnemoErrorInit {
  /** The HTTP status; 0 when there was no answer. */
  status: number;
  /** The server's stable `error.code`, or one synthesised from the status. */
  code: string;
  /** Milliseconds the server asked to wait (`Retry-After`), when it said. */
  retryAfterMs?: number | undefined;
  /** The parsed JSON error body, or the raw text when it was not JSON. */
  body?: unknown;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** An error answer of the Mnemo server, or a failure to reach it. */
export class MnemoError extends Error {
  /** The HTTP status; 0 when there was no answer ({@link MnemoConnectionError}). */
  readonly status: number;
  /**
   * The stable code of the server's JSON error (`invalid_input`, `busy`, ...). When the
   * body is not Mnemo's JSON (a proxy, actix's own empty 431), it is synthesised from
   * the status: the code Mnemo documents for it, else `http_<status>`.
   */
  readonly code: string;
  /** Milliseconds the server asked to wait before retrying (`Retry-After`), if it said. */
  readonly retryAfterMs: number | undefined;
  /** The parsed JSON error body, or its raw text when it was not JSON. */
  readonly body: unknown;

  constructor(message: string, init: MnemoErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
    this.body = init.body;
  }
}

/** 400: malformed JSON (`malformed_json`) or missing, unknown or mistyped fields (`invalid_request`). */
export class BadRequestError extends MnemoError {}

/** 401 `unauthorized`: no API key, or one the server does not know. */
export class AuthenticationError extends MnemoError {}

/** 404 `not_found`: no such turn or entity for this user, or no such route. */
export class NotFoundError extends MnemoError {}

/** 413 `too_large`, 414 `uri_too_long`, 431 `headers_too_large`: a body, field, URI or headers over its limit. */
export class PayloadTooLargeError extends MnemoError {}

/** 422 `invalid_input`: well-formed but unacceptable values (empty content, NUL characters, limits out of range, ...). */
export class InvalidInputError extends MnemoError {}

/** 429 `busy`: a queue is full or the processors are behind; retried by the client per `Retry-After`. */
export class BusyError extends MnemoError {}

/** 503 `unavailable` or `shutting_down`: a needed tier is down or the server is stopping; retried by the client. */
export class UnavailableError extends MnemoError {}

/** 408 or 504 `timeout`: the body came too slowly, or the server's deadline passed with nothing to answer. */
export class MnemoTimeoutError extends MnemoError {}

/**
 * No answer: the connection was refused or broke, the name did not resolve, or the
 * client's own `timeoutMs` passed (`code` is `timeout`; otherwise `connection_failed`).
 * `status` is 0 and `cause` holds the underlying error. Not retried: a request that got
 * no answer may or may not have been carried out.
 */
export class MnemoConnectionError extends MnemoError {}

/** The code Mnemo documents for `status`, used when an error body is not Mnemo's JSON. */
export function defaultCode(status: number): string {
  switch (status) {
    case 401:
      return "unauthorized";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
    case 504:
      return "timeout";
    case 413:
      return "too_large";
    case 414:
      return "uri_too_long";
    case 422:
      return "invalid_input";
    case 429:
      return "busy";
    case 431:
      return "headers_too_large";
    case 500:
      return "internal";
    case 503:
      return "unavailable";
    default:
      return `http_${status}`;
  }
}

/** The error class for an answer with this status. */
export function errorClassFor(status: number): typeof MnemoError {
  switch (status) {
    case 400:
      return BadRequestError;
    case 401:
      return AuthenticationError;
    case 404:
      return NotFoundError;
    case 413:
    case 414:
    case 431:
      return PayloadTooLargeError;
    case 422:
      return InvalidInputError;
    case 429:
      return BusyError;
    case 503:
      return UnavailableError;
    case 408:
    case 504:
      return MnemoTimeoutError;
    default:
      return MnemoError;
  }
}
