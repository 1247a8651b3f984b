/**
 * The one place where @effect/platform's errors (HttpClientError, HttpBodyError, TimeoutException, ParseError)
 * are turned into something else: first into an {@link AttemptError} (what happened to one attempt), which the
 * retry policy reads, then into core's typed errors. Nothing from @effect/platform leaves this package.
 *
 * Secrets never enter these errors: response bodies are only read for Zapier's `errors[]` / OAuth `error` fields,
 * which are truncated and scrubbed of anything that looks like a token.
 * @internal
 */

import type * as Headers from "@effect/platform/Headers"
import type * as HttpBody from "@effect/platform/HttpBody"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as Errors from "@effect-zapier/core/Errors"
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Wire from "../Wire.js"

// ---------------------------------------------------------------------------------------------------------------
// One attempt
// ---------------------------------------------------------------------------------------------------------------

/** The transport failed before the request could have left this process (refused, DNS, connect timeout). */
export class Unsent extends Data.TaggedError("Unsent")<{ readonly reason: string }> {}
/** The transport failed after the request may have been sent (reset, socket closed, …): ambiguous. */
export class Transport extends Data.TaggedError("Transport")<{ readonly reason: string }> {}
/** The attempt hit its timeout (request and body together). */
export class Timeout extends Data.TaggedError("Timeout")<{ readonly after: Duration.Duration }> {}
/** A non-2xx answer; the (capped) body is kept to read Zapier's error envelope. */
export class Status extends Data.TaggedError("Status")<{
  readonly status: number
  readonly headers: Headers.Headers
  readonly body: string
}> {}
/**
 * A 2xx answer whose body could not be read or understood. `transient` is true for a truncated or reset body
 * (worth another attempt on a safe request), false for a body that was read but does not decode.
 */
export class BadBody extends Data.TaggedError("BadBody")<{
  readonly status: number
  readonly reason: string
  readonly transient: boolean
}> {}
/** The request could not even be built (an invalid URL, inputs that are not JSON): never sent, never retried. */
export class Local extends Data.TaggedError("Local")<{ readonly reason: string; readonly code?: string }> {}
/**
 * The client-side rate limiter would have made the request wait longer than its `maxWait`: never sent, not
 * retried here (the caller gets `RateLimited` with the wait that would have been needed).
 */
export class Throttled extends Data.TaggedError("Throttled")<{ readonly retryAfter: Duration.Duration }> {}

/** @internal */
export type AttemptError = Unsent | Transport | Timeout | Status | BadBody | Local | Throttled

/**
 * Error codes that prove the request never reached a server: the connection was never established. Looked up
 * on the transport error's cause chain (undici's and fetch's errors carry Node's `code`; fetch wraps it in
 * `cause`, happy-eyeballs in an `AggregateError`'s `errors`). Anything else (ECONNRESET, "other side closed",
 * ETIMEDOUT on an open socket, an abort) is treated as possibly sent.
 */
const unsentCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_FAIL",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN"
])

const codesOf = (cause: unknown): ReadonlyArray<string> => {
  const codes: Array<string> = []
  const seen = new Set<unknown>()
  const visit = (u: unknown, depth: number) => {
    if (depth > 6 || typeof u !== "object" || u === null || seen.has(u)) return
    seen.add(u)
    if ("code" in u && typeof u.code === "string") codes.push(u.code)
    if ("cause" in u) visit(u.cause, depth + 1)
    if ("errors" in u && Array.isArray(u.errors)) for (const e of u.errors) visit(e, depth + 1)
  }
  visit(cause, 0)
  return codes
}

/**
 * Did this transport failure provably happen before the request was sent? Only when every code found on the
 * cause chain says the connection was never made.
 * @internal
 */
export const isUnsent = (cause: unknown): boolean => {
  const codes = codesOf(cause)
  return codes.length > 0 && codes.every((code) => unsentCodes.has(code))
}

/** Maps a platform failure of one attempt. @internal */
export const fromPlatform = (
  error: HttpClientError.HttpClientError | HttpBody.HttpBodyError | Cause.TimeoutException,
  timeout: Duration.Duration
): AttemptError => {
  switch (error._tag) {
    case "TimeoutException":
      return new Timeout({ after: timeout })
    case "HttpBodyError":
      return new Local({ reason: "the inputs could not be encoded as JSON", code: "invalid_inputs" })
    case "RequestError": {
      if (error.reason === "Transport") {
        const codes = codesOf(error.cause)
        const what = codes.length > 0 ? codes.join("/") : "connection failed"
        return isUnsent(error.cause)
          ? new Unsent({ reason: `could not connect (${what})` })
          : new Transport({ reason: `transport failure (${what})` })
      }
      return new Local({ reason: error.reason === "InvalidUrl" ? "invalid request URL" : "request encoding failed" })
    }
    case "ResponseError":
      return new BadBody({
        status: error.response.status,
        reason: "the response body could not be read (truncated or reset)",
        transient: true
      })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding, without ever quoting a value
// ---------------------------------------------------------------------------------------------------------------

/**
 * Where a decode failed and how, without the offending values (a ParseError's own message quotes the input,
 * which may hold a token).
 * @internal
 */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const parts = issues.slice(0, 3).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join(".") : "body"
    const what = issue._tag === "Missing" ? "is missing" : issue._tag === "Unexpected" ? "is not allowed" : "is invalid"
    return `${path} ${what}`
  })
  return parts.join("; ") + (issues.length > 3 ? ` (and ${issues.length - 3} more)` : "")
}

const parseJson = (body: string): Either.Either<unknown, string> => {
  if (body.trim().length === 0) return Either.left("the body is empty")
  try {
    return Either.right(JSON.parse(body))
  } catch {
    return Either.left("the body is not valid JSON")
  }
}

/**
 * Parses and decodes a 2xx body; failures are {@link BadBody} (not transient). The decoder is compiled once, when
 * `decodeBody(schema)` is called (at module load for every endpoint), not per response.
 * @internal
 */
export const decodeBody = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (status: number, body: string): Either.Either<A, BadBody> => {
    const json = parseJson(body)
    if (Either.isLeft(json)) return Either.left(new BadBody({ status, reason: json.left, transient: false }))
    const decoded = decode(json.right)
    return Either.mapLeft(
      decoded,
      (e) => new BadBody({ status, reason: `unexpected shape: ${describeParseError(e)}`, transient: false })
    )
  }
}

const decodeQuietly = <A, I>(schema: Schema.Schema<A, I>, body: string): A | undefined => {
  const json = parseJson(body)
  if (Either.isLeft(json)) return undefined
  return Either.getOrUndefined(Schema.decodeUnknownEither(schema)(json.right))
}

// ---------------------------------------------------------------------------------------------------------------
// Scrubbing what Zapier says before it goes into an error
// ---------------------------------------------------------------------------------------------------------------

const jwtLike = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g
const longOpaque = /[A-Za-z0-9_\-+/=]{40,}/g

/** `text` as an HTML form encodes it (`+` for a space, `%XX` for the rest but `*-._`). */
const formEncode = (text: string): string => new URLSearchParams({ v: text }).toString().slice(2)

/**
 * The part of the base64 (and base64url) encoding of `secret` that is the same wherever the secret sits in the
 * encoded bytes, for each of the three alignments: the characters made only of the secret's bits.
 */
const base64Cores = (secret: string): ReadonlyArray<string> => {
  const bytes = new TextEncoder().encode(secret)
  const cores: Array<string> = []
  for (let offset = 0; offset < 3; offset++) {
    const padded = new Uint8Array(offset + bytes.length)
    padded.set(bytes, offset)
    let binary = ""
    for (const byte of padded) binary += String.fromCharCode(byte)
    const encoded = btoa(binary)
    const core = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6))
    if (core.length >= 6) cores.push(core, core.replace(/\+/g, "-").replace(/\//g, "_"))
  }
  return cores
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Every shape in which a server could echo `secret`: as is, URL-encoded (`encodeURIComponent`, and as a form
 * encodes it, with `+` for a space; percent-escapes matched in either case), and base64 / base64url at any
 * alignment (e.g. inside `Basic base64(id:secret)` or a base64 of the whole form body). Longest first.
 * @internal
 */
export const secretShapes = (secret: string): ReadonlyArray<RegExp> =>
  [...new Set([secret, encodeURIComponent(secret), formEncode(secret), ...base64Cores(secret)])]
    .filter((shape) => shape.length >= 4)
    .sort((a, b) => b.length - a.length)
    .map((shape) => new RegExp(escapeRegExp(shape), shape.includes("%") ? "gi" : "g"))

/**
 * A scrubber for the given secrets (their shapes computed once): truncates a server-provided text and removes
 * anything token-like (JWTs, long opaque strings) and any of the secrets in any of the shapes of
 * {@link secretShapes}.
 * @internal
 */
export const scrubber = (secrets: ReadonlyArray<string> = []): ((text: string) => string) => {
  const shapes = secrets
    .filter((secret) => secret.length >= 4)
    .flatMap(secretShapes)
    .sort((a, b) => b.source.length - a.source.length)
  return (text) => {
    let out = text
    for (const shape of shapes) out = out.replace(shape, "<redacted>")
    out = out.replace(jwtLike, "<redacted>").replace(longOpaque, "<redacted>")
    return out.length > 300 ? `${out.slice(0, 300)}…` : out
  }
}

const apiErrorsOf = (body: string, secrets: ReadonlyArray<string>): ReadonlyArray<Errors.ApiError> => {
  const envelope = decodeQuietly(Wire.ErrorEnvelope, body)
  if (envelope === undefined) return []
  const clean = scrubber(secrets)
  return envelope.errors.slice(0, 20).map((e) =>
    Errors.ApiError.make({
      code: clean(e.code ?? "error"),
      title: clean(e.title ?? e.code ?? "Error"),
      ...(e.detail ? { detail: clean(e.detail) } : {}),
      ...(typeof e.status === "number" && Number.isFinite(e.status) ? { status: e.status } : {})
    })
  )
}

/**
 * A 400 whose `errors[]` says `unauthenticated`: how the Trigger Inbox routes refuse an invalid or expired token.
 * @internal
 */
export const isUnauthenticated400 = (error: AttemptError): boolean =>
  error._tag === "Status" &&
  error.status === 400 &&
  apiErrorsOf(error.body, []).some((e) => e.code === "unauthenticated")

// ---------------------------------------------------------------------------------------------------------------
// Server hints
// ---------------------------------------------------------------------------------------------------------------

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const day = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
const longDay = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
const month = `(${months.join("|")})`
const time = "(\\d{2}):(\\d{2}):(\\d{2})"
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const imfFixdate = new RegExp(`^${day}, (\\d{2}) ${month} (\\d{4}) ${time} GMT$`)
/** Obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`. */
const rfc850 = new RegExp(`^${longDay}, (\\d{2})-${month}-(\\d{2}) ${time} GMT$`)
/** Obsolete asctime: `Sun Nov  6 08:49:37 1994`. */
const asctime = new RegExp(`^${day} ${month} ([ \\d]\\d) ${time} (\\d{4})$`)

type DateFields = { d: string; mon: string; y: string; h: string; mi: string; s: string }

/** The fields of one of the three HTTP-date forms, or `undefined`. */
const fieldsOfHttpDate = (text: string, now: number): DateFields | undefined => {
  const imf = imfFixdate.exec(text)
  if (imf) return { d: imf[1]!, mon: imf[2]!, y: imf[3]!, h: imf[4]!, mi: imf[5]!, s: imf[6]! }
  const old = rfc850.exec(text)
  if (old) {
    const thisYear = new Date(now).getUTCFullYear()
    let year = Math.floor(thisYear / 100) * 100 + Number(old[3])
    if (year > thisYear + 50) year -= 100
    return { d: old[1]!, mon: old[2]!, y: String(year), h: old[4]!, mi: old[5]!, s: old[6]! }
  }
  const asc = asctime.exec(text)
  if (asc) return { d: asc[2]!.trim(), mon: asc[1]!, y: asc[6]!, h: asc[3]!, mi: asc[4]!, s: asc[5]! }
  return undefined
}

/**
 * An HTTP-date (RFC 9110 §5.6.7, its three forms) as epoch millis; `undefined` for anything else, including
 * what `Date.parse` would accept but HTTP does not (`-5` is the year -5 to it) and impossible dates (31 Feb).
 * A two-digit RFC 850 year more than 50 years ahead is taken as the previous century, as RFC 9110 says.
 */
const parseHttpDate = (text: string, now: number): number | undefined => {
  const parts = fieldsOfHttpDate(text, now)
  if (parts === undefined) return undefined
  const [y, mon, d, h, mi, s] = [
    Number(parts.y),
    months.indexOf(parts.mon),
    Number(parts.d),
    Number(parts.h),
    Number(parts.mi),
    Number(parts.s)
  ]
  if (h > 23 || mi > 59 || s > 60) return undefined
  const at = Date.UTC(y, mon, d, h, mi, Math.min(s, 59))
  // Date.UTC rolls 31 Feb over into March: refuse a day the month does not have.
  return new Date(at).getUTCDate() === d ? at : undefined
}

/**
 * The server's hint of when to come back, relative to `now` (epoch millis): `Retry-After` as non-negative
 * delta-seconds (digits only) or as a valid HTTP-date (one in the past means now), else `X-RateLimit-Reset`
 * (UTC epoch seconds). `undefined` when absent or not one of those forms (`-5`, `1.5`, `soon`, an ISO date):
 * the caller then applies its documented default (after a 429, Zapier's 60 s cooldown), never "no wait".
 * @internal
 */
export const retryAfterHint = (headers: Headers.Headers, now: number): Duration.Duration | undefined => {
  const retryAfter = headers["retry-after"]?.trim()
  if (retryAfter !== undefined && retryAfter.length > 0) {
    if (/^\d+$/.test(retryAfter)) {
      // A hint too long to be meant (past 2^53 ms) is still a hint: "not any time soon".
      return Duration.millis(Math.min(Number(retryAfter) * 1000, Number.MAX_SAFE_INTEGER))
    }
    const date = parseHttpDate(retryAfter, now)
    return date === undefined ? undefined : Duration.millis(Math.max(0, date - now))
  }
  const reset = headers["x-ratelimit-reset"]?.trim()
  if (reset !== undefined && /^\d+(\.\d+)?$/.test(reset)) {
    return Duration.millis(Math.max(0, Math.ceil(Number(reset) * 1000 - now)))
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Final mapping onto core's errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * The kinds of request, each with its own retry policy and error mapping. `create` (the create-run POST) and
 * `lease` (a Trigger Inbox lease) are replayed only when they provably never reached Zapier.
 * @internal
 */
export type Kind = "token" | "safe" | "create" | "lease"

/** Kinds that must not be replayed after an ambiguous failure. @internal */
export const replaysOnlyUnsent = (kind: Kind): boolean => kind === "create" || kind === "lease"

/** What the mapping needs to know about the request. @internal */
export interface Context {
  readonly endpoint: string
  readonly kind: Kind
  /** The resource named in a NotFound (e.g. `action run 123`). */
  readonly resource?: string | undefined
  /** The hint (if any) recorded for the last response, relative to when it arrived. */
  readonly retryAfter?: Duration.Duration | undefined
  /** Fallback wait for a 429 without a hint. */
  readonly rateLimitCooldown: Duration.Duration
  /** Secrets that must not appear in a message built from the body. */
  readonly secrets?: ReadonlyArray<string> | undefined
  /** For RunOutcomeUnknown: what the caller needs to reconcile. */
  readonly run?:
    | {
        readonly app?: Errors.RunOutcomeUnknown["app"]
        readonly action?: Errors.RunOutcomeUnknown["action"]
        readonly connection?: Errors.RunOutcomeUnknown["connection"]
      }
    | undefined
}

/** What a token exchange ends with. @internal */
export type TokenError =
  | Errors.TokenExchangeFailed
  | Errors.RateLimited
  | Errors.ZapierUnavailable
  | Errors.InvalidResponse

/** What an API request ends with. @internal */
export type ApiFailure = Errors.RequestError | Errors.RunOutcomeUnknown

const transientStatuses = new Set([408, 500, 502, 503, 504])

/** Statuses a safe request retries. @internal */
export const isTransientStatus = (status: number): boolean => status === 429 || transientStatuses.has(status)

const outcomeUnknown = (ctx: Context, reason: string, status?: number) =>
  new Errors.RunOutcomeUnknown({
    endpoint: ctx.endpoint,
    reason,
    ...(ctx.run?.app !== undefined ? { app: ctx.run.app } : {}),
    ...(ctx.run?.action !== undefined ? { action: ctx.run.action } : {}),
    ...(ctx.run?.connection !== undefined ? { connection: ctx.run.connection } : {}),
    ...(status !== undefined ? { status } : {})
  })

const rateLimited = (ctx: Context) =>
  new Errors.RateLimited({ endpoint: ctx.endpoint, retryAfter: ctx.retryAfter ?? ctx.rateLimitCooldown })

/** The client-side budget was exhausted: nothing was sent. */
const throttled = (ctx: Context, error: Throttled) =>
  new Errors.RateLimited({ endpoint: `${ctx.endpoint} (client-side rate limit)`, retryAfter: error.retryAfter })

/**
 * A safe request's failure that never reached an answer it could use: unavailable, or an unreadable answer
 * (`InvalidResponse` unless the body failure looked transient). Shared by the token endpoint and the GETs.
 */
const safeFailure = (
  error: Extract<AttemptError, { readonly _tag: "Unsent" | "Transport" | "Timeout" | "BadBody" }>,
  endpoint: string
): Errors.ZapierUnavailable | Errors.InvalidResponse => {
  switch (error._tag) {
    case "Unsent":
    case "Transport":
      return new Errors.ZapierUnavailable({ endpoint, reason: error.reason })
    case "Timeout":
      return new Errors.ZapierUnavailable({
        endpoint,
        reason: `no complete answer within ${Duration.format(error.after)}`
      })
    case "BadBody":
      return error.transient
        ? new Errors.ZapierUnavailable({ endpoint, reason: error.reason, status: error.status })
        : new Errors.InvalidResponse({ endpoint, reason: error.reason, status: error.status })
  }
}

/**
 * Maps the last failure of a token exchange: OAuth errors (`invalid_client`, `invalid_grant`, …) and any other
 * refusal become `TokenExchangeFailed`; 429 `RateLimited`; 5xx and transport failures `ZapierUnavailable`.
 * @internal
 */
export const forToken = (error: AttemptError, ctx: Context): TokenError => {
  const { endpoint } = ctx
  const secrets = ctx.secrets ?? []
  switch (error._tag) {
    case "Unsent":
    case "Transport":
    case "Timeout":
    case "BadBody":
      return safeFailure(error, endpoint)
    case "Local":
      return new Errors.TokenExchangeFailed({ error: error.code ?? "invalid_request", description: error.reason })
    case "Throttled":
      return throttled(ctx, error)
    case "Status": {
      const status = error.status
      if (status === 429) return rateLimited(ctx)
      if (status >= 500 || status === 408) {
        return new Errors.ZapierUnavailable({ endpoint, reason: "the token endpoint failed", status })
      }
      if (status >= 300 && status < 400) {
        return new Errors.TokenExchangeFailed({
          error: "redirect",
          description: "the token endpoint answered with a redirect, which is never followed; check tokenUrl",
          status
        })
      }
      const oauth = decodeQuietly(Wire.OAuthError, error.body)
      if (oauth !== undefined) {
        const clean = scrubber(secrets)
        return new Errors.TokenExchangeFailed({
          error: clean(oauth.error).slice(0, 100),
          ...(oauth.error_description ? { description: clean(oauth.error_description) } : {}),
          status
        })
      }
      const api = apiErrorsOf(error.body, secrets)
      return new Errors.TokenExchangeFailed({
        error: api[0]?.code ?? `http_${status}`,
        ...(api[0] ? { description: api[0].detail ?? api[0].title } : {}),
        status
      })
    }
  }
}

/**
 * Maps the last failure of a safe API request (a GET).
 * @internal
 */
export const forSafe = (error: AttemptError, ctx: Context): Errors.RequestError => {
  const { endpoint } = ctx
  switch (error._tag) {
    case "Unsent":
    case "Transport":
    case "Timeout":
    case "BadBody":
      return safeFailure(error, endpoint)
    case "Local":
      return error.code === "invalid_inputs"
        ? new Errors.BadRequest({
            endpoint,
            errors: [Errors.ApiError.make({ code: "invalid_inputs", title: error.reason })]
          })
        : new Errors.InvalidResponse({ endpoint, reason: error.reason })
    case "Throttled":
      return throttled(ctx, error)
    case "Status":
      return fromStatus(error, ctx)
  }
}

/**
 * Maps the last failure of the create-run POST. Everything that may have reached Zapier without a readable
 * answer (a transport failure after connecting, a timeout, a 5xx or 408, a redirect, a 2xx body that cannot be
 * read) is `RunOutcomeUnknown`; a connection that was never made is `ZapierUnavailable` (safe to try again); a
 * 4xx is the same typed error as for a safe request (Zapier refused it, no run exists).
 * @internal
 */
export const forCreate = (error: AttemptError, ctx: Context): ApiFailure => {
  switch (error._tag) {
    case "Transport":
      return outcomeUnknown(ctx, error.reason)
    case "Timeout":
      return outcomeUnknown(ctx, `no complete answer within ${Duration.format(error.after)}`)
    case "BadBody":
      return outcomeUnknown(ctx, error.reason, error.status)
    case "Status":
      return error.status !== 429 && (error.status >= 500 || error.status === 408 || error.status < 400)
        ? outcomeUnknown(
            ctx,
            error.status >= 500
              ? "Zapier answered with a server error"
              : isRedirect(error.status)
                ? `${redirectReason(error.status)}; whether the run was created cannot be known`
                : `unexpected HTTP ${error.status}`,
            error.status
          )
        : fromStatus(error, ctx)
    default:
      return forSafe(error, ctx)
  }
}

/**
 * Maps the last failure of a Trigger Inbox lease. A lease that may have reached Zapier without a readable answer
 * is not replayed (a second lease would not return the same messages); it is `ZapierUnavailable`, and it is safe:
 * whatever that lease took comes back to the inbox when it expires.
 * @internal
 */
export const forLease = (error: AttemptError, ctx: Context): Errors.RequestError => {
  const lost = "the lease's answer was lost; any messages it leased come back after the lease"
  switch (error._tag) {
    case "Transport":
    case "Timeout":
      return new Errors.ZapierUnavailable({ endpoint: ctx.endpoint, reason: lost })
    case "BadBody":
      return error.transient
        ? new Errors.ZapierUnavailable({ endpoint: ctx.endpoint, reason: lost, status: error.status })
        : new Errors.InvalidResponse({ endpoint: ctx.endpoint, reason: error.reason, status: error.status })
    default:
      return forSafe(error, ctx)
  }
}

const fromStatus = (error: Status, ctx: Context): Errors.RequestError => {
  const { endpoint } = ctx
  const status = error.status
  const secrets = ctx.secrets ?? []
  if (status === 429) return rateLimited(ctx)
  if (status >= 500 || status === 408) {
    return new Errors.ZapierUnavailable({ endpoint, reason: "Zapier answered with a server error", status })
  }
  if (status === 401 || status === 403) {
    const first = apiErrorsOf(error.body, secrets)[0]
    const detail = first?.detail ?? first?.title
    return new Errors.Unauthorized({ endpoint, status, ...(detail ? { detail } : {}) })
  }
  if (status === 404) {
    return new Errors.NotFound({ endpoint, resource: ctx.resource ?? "the resource" })
  }
  if (status >= 400) {
    const errors = apiErrorsOf(error.body, secrets)
    // The Trigger Inbox routes refuse an invalid or expired token with 400 `unauthenticated`.
    const unauthenticated = errors.find((e) => e.code === "unauthenticated")
    if (status === 400 && unauthenticated !== undefined) {
      return new Errors.Unauthorized({ endpoint, status, detail: unauthenticated.detail ?? unauthenticated.title })
    }
    return new Errors.BadRequest({
      endpoint,
      errors:
        errors.length > 0
          ? errors
          : [
              Errors.ApiError.make({
                code: `http_${status}`,
                title: `HTTP ${status} without an error envelope`,
                status
              })
            ]
    })
  }
  return new Errors.InvalidResponse({
    endpoint,
    reason: isRedirect(status) ? `${redirectReason(status)}; check apiUrl` : `unexpected HTTP ${status}`,
    status
  })
}

const isRedirect = (status: number): boolean => status >= 300 && status < 400

const redirectReason = (status: number): string =>
  `the answer was a redirect (HTTP ${status}), which is never followed (its target is not trusted)`
