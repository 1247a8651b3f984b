/**
 * What every area's routes share: the server's options, Zapier's response shapes (API errors, OAuth errors, the
 * raw answer of a `Respond` fault), and the request pipeline (`handle` records the request in the ledger and drops
 * the connection when asked, `gated` applies the fault plan and the rate limit, `api` authenticates a `/v2`
 * bearer first).
 *
 * @internal
 */
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { Domain } from "@effect-zapier/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { OAuthFailure, RawAnswer, RequestInfo } from "../model/failures.js"
import { ApiFailure } from "../model/failures.js"
import type { Kernel } from "../model/kernel.js"
import type * as FZ from "../types.js"

/**
 * The token-type URNs and grant type the token endpoint accepts (inferred: RFC 8693's token exchange with Zapier's token types; Zapier has not published the URNs).
 * @since 0.1.0
 */
export interface TokenTypes {
  readonly grantType: string
  readonly jwt: string
  readonly accessToken: string
  readonly connectToken: string
}

/** The URNs the fake accepts by default (RFC 8693 grant, Zapier's external-jwt and connect-token types). @since 0.1.0 */
export const defaultTokenTypes: TokenTypes = {
  grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
  jwt: "urn:ietf:params:oauth:token-type:external-jwt",
  accessToken: "urn:ietf:params:oauth:token-type:access-token",
  connectToken: "urn:ietf:params:oauth:token-type:connect-token"
}

/**
 * Options of the server.
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** The model's seed (default: empty; register a partner key with `PartnerKey.register`). */
  readonly seed?: FZ.Seed | undefined
  /** `expires_in` of issued access tokens (overrides the seed's; default 3600 s). */
  readonly accessTokenTtl?: Duration.DurationInput | undefined
  /** `/v2` requests per minute before a 429 with `Retry-After` and a 60 s cooldown (default: no limit). */
  readonly rateLimitPerMinute?: number | undefined
  /**
   * The window of `rateLimitPerMinute` and the cooldown after its 429 (overrides the seed's; default 60 s).
   * A shorter one scales a real-time test down.
   */
  readonly rateLimitWindow?: Duration.DurationInput | undefined
  /**
   * Which create-run bodies are understood: both (default), only `{data: {action, authentication, inputs}}`, or
   * only the flat `{action, authentication, input}`. The other shape gets `400 parse_error`.
   */
  readonly runBody?: "both" | "data" | "flat" | undefined
  /**
   * The status word of a pending run: `waiting` (default, the API schema's), `queued`, `running`, or `queued`
   * for the first half of the run's life and `running` after.
   */
  readonly pendingStatus?: "waiting" | "queued" | "running" | "queued-then-running" | undefined
  /** The HTTP status of a pending run's GET (default 200; Zapier's SDK also knows 202). */
  readonly pendingHttpStatus?: 200 | 202 | undefined
  /**
   * The long-poll read `GET /actions/v2/runs/{id}?wait_seconds=N`: `serve` (default) reads the runs created on
   * `/v2` (held until the run ends or N seconds pass, then 202); `not-found` answers 404 for them, as Zapier would
   * if its Actions API did not know `/v2` runs (undocumented either way).
   */
  readonly longPollReads?: "serve" | "not-found" | undefined
  /** Longest partner JWT accepted, `exp - iat` (default 300 s). */
  readonly maxJwtLifetime?: Duration.DurationInput | undefined
  /** Tolerance for `nbf`/`exp`/`iat` (default 5 s). */
  readonly clockTolerance?: Duration.DurationInput | undefined
  /** Require a `jti` claim, unique while the JWT is accepted: until its `exp` plus `clockTolerance` (default true). */
  readonly requireJti?: boolean | undefined
  readonly tokenTypes?: Partial<TokenTypes> | undefined
  /** Idle keep-alive sockets are closed after this (default 5 s). */
  readonly keepAliveTimeout?: Duration.DurationInput | undefined
  /** The port (default 0: an ephemeral one). */
  readonly port?: number | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Responses (written from Zapier's API reference)
// ---------------------------------------------------------------------------------------------------------------

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

/** `Retry-After` in delta seconds, or as an HTTP-date relative to the model's `now`. */
export const retryAfterHeader = (seconds: number, format: "seconds" | "http-date" | undefined, now: number): string =>
  format === "http-date" ? new Date(now + seconds * 1000).toUTCString() : String(seconds)

export const apiError = (failure: ApiFailure, now: number): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = {}
  if (failure.retryAfterSeconds !== undefined) {
    headers["retry-after"] = retryAfterHeader(failure.retryAfterSeconds, failure.retryAfterFormat, now)
    headers["x-ratelimit-remaining"] = "0"
    headers["x-ratelimit-reset"] = String(Math.ceil(now / 1000) + failure.retryAfterSeconds)
  }
  if (failure.status === 401) headers["www-authenticate"] = 'Bearer realm="api"'
  return json(
    {
      errors: [
        {
          status: failure.status,
          code: failure.code,
          title: failure.title,
          detail: failure.detail,
          source:
            failure.parameter !== undefined ? { pointer: null, parameter: failure.parameter, header: null } : null,
          meta: { source: "ZAPIER", full_details: { message: failure.detail, code: failure.code } }
        }
      ]
    },
    failure.status,
    headers
  )
}

export const oauthError = (failure: OAuthFailure, basic: boolean, now = 0): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if (failure.retryAfterSeconds !== undefined) {
    headers["retry-after"] = retryAfterHeader(failure.retryAfterSeconds, failure.retryAfterFormat, now)
  }
  if (failure.status === 401 && basic) headers["www-authenticate"] = 'Basic realm="zapier"'
  return json({ error: failure.error, error_description: failure.description }, failure.status, headers)
}

export const malformed = HttpServerResponse.text('{"data": {"type": "run", "status": ', {
  status: 200,
  contentType: "application/json"
})

/** The `Respond` fault's answer, byte for byte (an empty body is sent as an empty body). */
export const raw = (answer: RawAnswer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(answer.body, {
    status: answer.status,
    contentType: answer.contentType,
    headers: answer.headers
  })
export const withQuery = (base: string, query: Record<string, string>): string => {
  const url = new URL(base)
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  return url.toString()
}

// ---------------------------------------------------------------------------------------------------------------
// Request schemas shared by areas
// ---------------------------------------------------------------------------------------------------------------

export const OptionalString = Schema.optional(Schema.String)
export const Count = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())
export const Inputs = Schema.Record({ key: Schema.String, value: Schema.Unknown })
export const Authentication = Schema.NullOr(
  Schema.Union(
    Schema.String,
    Schema.transform(Schema.Number, Schema.String, { strict: true, decode: String, encode: Number })
  )
)

export const isObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

export const describeIssue = (error: unknown): string =>
  error instanceof Error ? error.message.split("\n").slice(0, 6).join(" ") : "invalid"

export const decodeQuery = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.flatMap(HttpServerRequest.ParsedSearchParams, (params) =>
    Schema.decodeUnknown(schema)(
      Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]))
    ).pipe(Effect.mapError((e) => ApiFailure.invalid(`Invalid query parameters: ${describeIssue(e)}`)))
  )

// ---------------------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------------
// The request pipeline
// ---------------------------------------------------------------------------------------------------------------

/** What a handler produced: a response (and whose request it was), or a dropped connection. */
export type Reply =
  | {
      readonly _tag: "Response"
      readonly response: HttpServerResponse.HttpServerResponse
      readonly user?: Domain.EndUser | undefined
    }
  | { readonly _tag: "Drop"; readonly user?: Domain.EndUser | undefined }

export const respond = (response: HttpServerResponse.HttpServerResponse, user?: Domain.EndUser): Reply => ({
  _tag: "Response",
  response,
  user
})

/** The shared pipeline of one server: its URL, options and model kernel. */
export const make = (kernel: Kernel, url: string, options: Options) => {
  const model = kernel

  const pathOf = (req: HttpServerRequest.HttpServerRequest) => new URL(req.url, url).pathname

  /** Runs a handler, records the request in the ledger, and drops the connection when asked to. */
  const handle =
    (endpoint: string) =>
    <R>(handler: Effect.Effect<Reply, never, R>) =>
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const reply = yield* handler
        yield* model.record({
          method: req.method,
          endpoint,
          path: pathOf(req),
          status: reply._tag === "Drop" ? 0 : reply.response.status,
          ...(reply.user !== undefined ? { user: reply.user } : {})
        })
        if (reply._tag === "Drop") {
          yield* Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(req).socket.destroy())
          return yield* Effect.interrupt
        }
        return reply.response
      })

  /** The fault plan and the rate limit around a processed request. */
  const gated = <E>(
    info: RequestInfo,
    body: Effect.Effect<HttpServerResponse.HttpServerResponse, E>,
    onFailure: (failure: ApiFailure, code: string | undefined) => HttpServerResponse.HttpServerResponse,
    onError: (e: E) => HttpServerResponse.HttpServerResponse,
    malformedBody: HttpServerResponse.HttpServerResponse = malformed
  ): Effect.Effect<Reply> =>
    Effect.gen(function* () {
      const gate = yield* model.gate(info)
      if (gate._tag === "Drop") return { _tag: "Drop", user: info.user } as const
      if (gate._tag === "Fail") return respond(onFailure(gate.failure, gate.code), info.user)
      if (gate._tag === "Raw") return respond(raw(gate.answer), info.user)
      if (gate.delay !== undefined) yield* model.clock.sleep(gate.delay)
      const result = yield* Effect.either(body)
      const after = gate.after
      if (after?._tag === "Drop") return { _tag: "Drop", user: info.user } as const
      if (after?._tag === "Fail") return respond(onFailure(after.failure, after.code), info.user)
      if (after?._tag === "Malformed") return respond(malformedBody, info.user)
      if (after?._tag === "Raw") return respond(raw(after.answer), info.user)
      return respond(Either.isRight(result) ? result.right : onError(result.left), info.user)
    })

  // --- the token endpoint ---------------------------------------------------------------------------------
  /** A `/v2` request: the bearer's user, then the gate, then the body. */
  const api = (
    endpoint: string,
    body: (
      user: Domain.EndUser
    ) => Effect.Effect<
      HttpServerResponse.HttpServerResponse,
      ApiFailure,
      HttpServerRequest.ParsedSearchParams | HttpRouter.RouteContext | HttpServerRequest.HttpServerRequest
    >
  ) =>
    handle(endpoint)(
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const now = yield* model.now
        const authorization = req.headers.authorization ?? ""
        const match = /^Bearer\s+(\S+)$/i.exec(authorization)
        if (match === null) return respond(apiError(ApiFailure.notAuthenticated(), now))
        const user = yield* Effect.either(model.authenticate(match[1]!))
        if (Either.isLeft(user)) return respond(apiError(user.left, now))
        const context = yield* Effect.context<
          HttpServerRequest.ParsedSearchParams | HttpRouter.RouteContext | HttpServerRequest.HttpServerRequest
        >()
        return yield* gated(
          { method: req.method, endpoint, path: pathOf(req), user: user.right },
          Effect.provide(body(user.right), context),
          (failure) => apiError(failure, now),
          (failure) => apiError(failure, now)
        )
      })
    )

  const page_ = (path: string, count: number, limit: number, offset: number, params: Record<string, string>) => {
    const link = (o: number) => withQuery(`${url}${path}`, { ...params, limit: String(limit), offset: String(o) })
    return {
      links: {
        next: offset + limit < count ? link(offset + limit) : null,
        prev: offset > 0 ? link(Math.max(0, offset - limit)) : null
      },
      meta: { count, limit, offset }
    }
  }

  return { url, options, model: kernel, pathOf, handle, gated, api, page: page_ }
}

/** The shared pipeline of one server. */
export type ServerKit = ReturnType<typeof make>

/** The routes of an area. */
export type Routes = ReadonlyArray<HttpRouter.Route<never, never>>
