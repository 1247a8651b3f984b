/**
 * The FakeZapier model served over real HTTP on 127.0.0.1 (an ephemeral port), speaking Zapier's White Label wire
 * protocol as the spec (`spec/zapier-white-label-api.md`) describes it: the token endpoint, `/v2` apps,
 * authentications, actions (with their input fields, choices and output fields) and action runs, and Connect UI
 * pages. Its JSON is written from the spec, not from any client's schemas, documented quirks included:
 * `/v2/apps` names its previous-page link `previous` (as the spec's example does) where the other lists say
 * `prev`, and the choices endpoint, declared as an array of envelopes, answers with one envelope.
 *
 * One port serves everything: the API base URL, the token URL (`{url}/oauth/token`) and the Connect UI base URL
 * (links are `{url}/to/{app}?token=…`).
 *
 * Time is the model's: the `Clock` in scope when the layer is built. Under `it.live` (or a real program) that is the
 * live clock; inside `it.effect` it is the `TestClock`, so sign JWTs with `iat` from `Clock.currentTimeMillis` there.
 *
 * @example
 * ```ts
 * import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const server = yield* FakeZapierServer.FakeZapierServer
 *   const zapier = yield* FakeZapier.FakeZapier
 *   console.log(server.tokenUrl, server.apiUrl, server.connectUrl)
 * })
 * Effect.flatMap(PartnerKey.generate(), (key) =>
 *   program.pipe(Effect.provide(FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })))
 * )
 * ```
 * @since 0.1.0
 */
import * as Http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Domain } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Jose from "jose"
import * as FakeZapier from "./FakeZapier.js"
import * as Model from "./internal/model.js"
import type { PartnerKey } from "./PartnerKey.js"

/**
 * The token-type URNs and grant type the token endpoint accepts (spec §1.3; Zapier has not published them).
 * @since 0.1.0
 */
export interface TokenTypes {
  readonly grantType: string
  readonly jwt: string
  readonly accessToken: string
  readonly connectToken: string
}

/** The spec's §1.3 defaults. @since 0.1.0 */
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
  readonly seed?: FakeZapier.Seed | undefined
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
  /** Longest partner JWT accepted, `exp - iat` (default 300 s). */
  readonly maxJwtLifetime?: Duration.DurationInput | undefined
  /** Tolerance for `nbf`/`exp`/`iat` (default 5 s). */
  readonly clockTolerance?: Duration.DurationInput | undefined
  /** Require a `jti` claim, unique until the JWT expires (default true). */
  readonly requireJti?: boolean | undefined
  readonly tokenTypes?: Partial<TokenTypes> | undefined
  /** Idle keep-alive sockets are closed after this (default 5 s). */
  readonly keepAliveTimeout?: Duration.DurationInput | undefined
  /** The port (default 0: an ephemeral one). */
  readonly port?: number | undefined
}

/**
 * Where the running server is.
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** `http://127.0.0.1:{port}` */
  readonly url: string
  /** The API base URL (`/v2/…` lives under it): the same as `url`. */
  readonly apiUrl: string
  /** `{url}/oauth/token` */
  readonly tokenUrl: string
  /** The Connect UI base URL (`{connectUrl}/to/{app}`): the same as `url`. */
  readonly connectUrl: string
  readonly port: number
}

/**
 * The tag of the running server.
 * @since 0.1.0
 * @category tags
 */
export class FakeZapierServer extends Context.Tag("@effect-zapier/testing/FakeZapierServer")<
  FakeZapierServer,
  Service
>() {}

// ---------------------------------------------------------------------------------------------------------------
// Responses (written from the spec)
// ---------------------------------------------------------------------------------------------------------------

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

/** `Retry-After` in delta seconds, or as an HTTP-date relative to the model's `now`. */
const retryAfterHeader = (seconds: number, format: "seconds" | "http-date" | undefined, now: number): string =>
  format === "http-date" ? new Date(now + seconds * 1000).toUTCString() : String(seconds)

const apiError = (failure: Model.ApiFailure, now: number): HttpServerResponse.HttpServerResponse => {
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

const oauthError = (failure: Model.OAuthFailure, basic: boolean, now = 0): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if (failure.retryAfterSeconds !== undefined) {
    headers["retry-after"] = retryAfterHeader(failure.retryAfterSeconds, failure.retryAfterFormat, now)
  }
  if (failure.status === 401 && basic) headers["www-authenticate"] = 'Basic realm="zapier"'
  return json({ error: failure.error, error_description: failure.description }, failure.status, headers)
}

const malformed = HttpServerResponse.text('{"data": {"type": "run", "status": ', {
  status: 200,
  contentType: "application/json"
})

/** The `Respond` fault's answer, byte for byte (an empty body is sent as an empty body). */
const raw = (answer: Model.RawAnswer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(answer.body, {
    status: answer.status,
    contentType: answer.contentType,
    headers: answer.headers
  })

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

/** JSON safe to embed in a `<script>`. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")

const page = (title: string, body: string, status = 200) =>
  HttpServerResponse.text(
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body>${body}</body></html>\n`,
    { status, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
  )

/** The page Connect UI ends on in the popup pattern: posts the outcome to the opener, then closes. */
const popupPage = (outcome: Model.ConnectOutcome) => {
  const message = Model.popupMessage(outcome)
  const title = outcome._tag === "Approved" ? "Connected" : "Connection failed"
  const text =
    outcome._tag === "Approved"
      ? "<p>Connected. You can close this window.</p>"
      : `<p>${escapeHtml(outcome.error)}: ${escapeHtml(outcome.description)}</p>`
  return page(
    title,
    `<h1>${title}</h1>${text}` +
      `<script>window.opener && window.opener.postMessage(${scriptJson(message)}, "*"); window.close();</script>`,
    outcome._tag === "Approved" ? 200 : 400
  )
}

const withQuery = (base: string, query: Record<string, string>): string => {
  const url = new URL(base)
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  return url.toString()
}

/** Where Connect UI sends the browser for an outcome: the redirect, or the popup page. */
const connectReply = (outcome: Model.ConnectOutcome) =>
  outcome.redirectUri !== undefined
    ? HttpServerResponse.redirect(withQuery(outcome.redirectUri, Model.redirectQuery(outcome)), {
        status: 302,
        headers: { "cache-control": "no-store" }
      })
    : popupPage(outcome)

// ---------------------------------------------------------------------------------------------------------------
// Request schemas
// ---------------------------------------------------------------------------------------------------------------

const OptionalString = Schema.optional(Schema.String)

const TokenForm = Schema.Struct({
  grant_type: OptionalString,
  client_id: OptionalString,
  client_secret: OptionalString,
  subject_token: OptionalString,
  subject_token_type: OptionalString,
  requested_token_type: OptionalString,
  scope: OptionalString,
  resource: OptionalString
})

const Count = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

const ListQuery = Schema.Struct({
  app: OptionalString,
  limit: Schema.optional(Count),
  offset: Schema.optional(Count)
})

const ChoicesQuery = Schema.Struct({
  page: Schema.optional(Schema.NumberFromString.pipe(Schema.int()))
})

const AppsQuery = Schema.Struct({
  ids: OptionalString,
  query: OptionalString,
  category: OptionalString,
  limit: Schema.optional(Count),
  offset: Schema.optional(Count)
})

const ActionsQuery = Schema.Struct({
  app: OptionalString,
  action_type: Schema.optional(Schema.Literal(...Domain.ActionType.literals.filter((t) => t !== "FILTER")))
})

const ConnectQuery = Schema.Struct({
  token: OptionalString,
  state: OptionalString,
  redirect_uri: OptionalString,
  reconnect_id: OptionalString,
  theme: OptionalString
})

const ConnectForm = Schema.Struct({
  session: Schema.String,
  decision: Schema.Literal("approve", "deny"),
  title: OptionalString
})

const Inputs = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const Authentication = Schema.NullOr(
  Schema.Union(
    Schema.String,
    Schema.transform(Schema.Number, Schema.String, { strict: true, decode: String, encode: Number })
  )
)

/** The API schema's body: `{data: {action, authentication, inputs, callback_url?}}`. */
const DataRunBody = Schema.Struct({
  data: Schema.Struct({
    action: Schema.String,
    authentication: Authentication,
    inputs: Inputs,
    callback_url: OptionalString
  })
})

/** The body of the inputs, choices and outputs endpoints: `{data: {authentication, inputs}}`. */
const FieldsBody = Schema.Struct({
  data: Schema.Struct({
    authentication: Authentication,
    inputs: Schema.optional(Schema.NullOr(Inputs))
  })
})

/** The guides' body: `{action, authentication, input, callback_url?}`. */
const FlatRunBody = Schema.Struct({
  action: Schema.String,
  authentication: Authentication,
  input: Inputs,
  callback_url: OptionalString
})

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const describeIssue = (error: unknown): string =>
  error instanceof Error ? error.message.split("\n").slice(0, 6).join(" ") : "invalid"

const decodeQuery = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.flatMap(HttpServerRequest.ParsedSearchParams, (params) =>
    Schema.decodeUnknown(schema)(
      Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]))
    ).pipe(Effect.mapError((e) => Model.ApiFailure.invalid(`Invalid query parameters: ${describeIssue(e)}`)))
  )

// ---------------------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------------------

/** What a handler produced: a response (and whose request it was), or a dropped connection. */
type Reply =
  | {
      readonly _tag: "Response"
      readonly response: HttpServerResponse.HttpServerResponse
      readonly user?: Domain.EndUser | undefined
    }
  | { readonly _tag: "Drop"; readonly user?: Domain.EndUser | undefined }

const respond = (response: HttpServerResponse.HttpServerResponse, user?: Domain.EndUser): Reply => ({
  _tag: "Response",
  response,
  user
})

const allowedAlgorithms = new Set(["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"])

const joseReason = (error: unknown): string => {
  if (error instanceof Jose.errors.JWTExpired) return "the assertion has expired (exp)"
  if (error instanceof Jose.errors.JWTClaimValidationFailed) {
    return `the assertion's "${error.claim}" claim is invalid (${error.reason})`
  }
  if (error instanceof Jose.errors.JWSSignatureVerificationFailed) {
    return "the assertion's signature does not verify against the registered key"
  }
  if (error instanceof Jose.errors.JOSEAlgNotAllowed) return "the assertion's alg is not allowed for this key"
  return "the assertion could not be verified"
}

const make = (options: Options) =>
  Effect.gen(function* () {
    const keepAlive = Duration.toMillis(Duration.decode(options.keepAliveTimeout ?? Duration.seconds(5)))
    const server = yield* NodeHttpServer.make(
      () => {
        const s = Http.createServer()
        s.keepAliveTimeout = keepAlive
        return s
      },
      { host: "127.0.0.1", port: options.port ?? 0 }
    )
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("FakeZapierServer: expected a TCP address")
    const url = `http://127.0.0.1:${address.port}`
    const seed: FakeZapier.Seed = {
      ...options.seed,
      ...(options.accessTokenTtl !== undefined ? { accessTokenTtl: options.accessTokenTtl } : {}),
      ...(options.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: options.rateLimitPerMinute } : {}),
      ...(options.rateLimitWindow !== undefined ? { rateLimitWindow: options.rateLimitWindow } : {})
    }
    const model = yield* Model.make(seed, { connectUrl: url })
    const types: TokenTypes = { ...defaultTokenTypes, ...options.tokenTypes }
    const maxLifetime = Math.floor(
      Duration.toMillis(Duration.decode(options.maxJwtLifetime ?? Duration.seconds(300))) / 1000
    )
    const tolerance = Math.floor(
      Duration.toMillis(Duration.decode(options.clockTolerance ?? Duration.seconds(5))) / 1000
    )
    const requireJti = options.requireJti ?? true
    const runBody = options.runBody ?? "both"
    const keys = yield* Ref.make(new Map<string, Jose.CryptoKey | Uint8Array>())

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
      info: Model.RequestInfo,
      body: Effect.Effect<HttpServerResponse.HttpServerResponse, E>,
      onFailure: (failure: Model.ApiFailure, code: string | undefined) => HttpServerResponse.HttpServerResponse,
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

    const importKey = (key: FakeZapier.PartnerKeySeed, alg: string) =>
      Effect.gen(function* () {
        const cacheKey = `${key.kid}\u0000${alg}\u0000${typeof key.publicKey === "string" ? key.publicKey : JSON.stringify(key.publicKey)}`
        const cached = (yield* Ref.get(keys)).get(cacheKey)
        if (cached !== undefined) return cached
        const imported = yield* Effect.tryPromise({
          try: () =>
            typeof key.publicKey === "string"
              ? Jose.importSPKI(key.publicKey, alg)
              : Jose.importJWK(key.publicKey, alg),
          catch: () => "the registered key cannot be used with this alg"
        })
        yield* Ref.update(keys, (m) => new Map(m).set(cacheKey, imported))
        return imported
      })

    const invalidGrant = (description: string) =>
      Model.oauthFromApi(Model.ApiFailure.invalid(description), "invalid_grant")

    /** Verifies the partner JWT (signature, alg, kid, aud, iss, exp/nbf/iat, lifetime, claims, jti). */
    const verifyJwt = (jwt: string) =>
      Effect.gen(function* () {
        const partner = yield* model.partner
        const header = yield* Effect.try({
          try: () => Jose.decodeProtectedHeader(jwt),
          catch: () => invalidGrant("The subject_token is not a JWT.")
        })
        const alg = header.alg ?? ""
        if (!allowedAlgorithms.has(alg)) {
          return yield* Effect.fail(invalidGrant(`The JWT alg "${alg}" is not one of RS256/384/512, ES256/384/512.`))
        }
        const key = partner.keys.find((k) => k.kid === header.kid)
        if (header.kid === undefined || key === undefined) {
          return yield* Effect.fail(invalidGrant("The JWT kid does not match a registered partner key."))
        }
        if (key.alg !== undefined && key.alg !== alg) {
          return yield* Effect.fail(invalidGrant(`The key ${key.kid} is registered for ${key.alg}, not ${alg}.`))
        }
        const publicKey = yield* importKey(key, alg).pipe(Effect.mapError(invalidGrant))
        const now = yield* model.now
        const required = ["iat", "exp", "nbf", partner.userClaim, partner.tenantClaim, ...(requireJti ? ["jti"] : [])]
        const { payload } = yield* Effect.tryPromise({
          try: () =>
            Jose.jwtVerify(jwt, publicKey, {
              algorithms: [alg],
              audience: partner.audience,
              issuer: partner.issuer,
              currentDate: new Date(now),
              clockTolerance: tolerance,
              requiredClaims: required
            }),
          catch: (e) => invalidGrant(`The subject_token was refused: ${joseReason(e)}.`)
        })
        const iat = payload.iat ?? 0
        const exp = payload.exp ?? 0
        if (iat > Math.floor(now / 1000) + tolerance) {
          return yield* Effect.fail(invalidGrant("The JWT was issued in the future (iat)."))
        }
        if (exp - iat > maxLifetime) {
          return yield* Effect.fail(invalidGrant(`The JWT lives longer than ${maxLifetime} s (exp - iat).`))
        }
        const user = yield* Schema.decodeUnknown(Domain.EndUser)({
          userId: payload[partner.userClaim],
          tenantId: payload[partner.tenantClaim]
        }).pipe(
          Effect.mapError(() =>
            invalidGrant(
              `The JWT's "${partner.userClaim}" and "${partner.tenantClaim}" claims must be non-empty strings.`
            )
          )
        )
        if (requireJti) {
          const jti = payload.jti
          if (typeof jti !== "string" || jti.length === 0 || !(yield* model.useJti(jti, exp))) {
            return yield* Effect.fail(invalidGrant("The JWT's jti was already used."))
          }
        }
        return user
      })

    const tokenResponse = (issued: Model.Issued, issuedType: string) =>
      json(
        {
          access_token: issued.token,
          token_type: "Bearer",
          expires_in: issued.expiresIn,
          scope: issued.scope,
          issued_token_type: issuedType
        },
        200,
        { "cache-control": "no-store", pragma: "no-cache" }
      )

    const token = handle(FakeZapier.Endpoint.token)(
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const authorization = req.headers.authorization
        const basic = authorization?.toLowerCase().startsWith("basic ") ?? false
        const now = yield* model.now
        const fail = (failure: Model.OAuthFailure, user?: Domain.EndUser) => respond(oauthError(failure, basic), user)
        const contentType = req.headers["content-type"] ?? ""
        if (!contentType.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
          return fail({
            status: 400,
            error: "invalid_request",
            description: "The body must be application/x-www-form-urlencoded."
          })
        }
        const form = yield* req.urlParamsBody.pipe(
          Effect.flatMap((params) => Schema.decodeUnknown(TokenForm)(Object.fromEntries(params))),
          Effect.either
        )
        if (Either.isLeft(form)) {
          return fail({ status: 400, error: "invalid_request", description: "The form body could not be read." })
        }
        const f = form.right
        // Client authentication: HTTP Basic or the form body (not both with different values).
        let clientId = f.client_id
        let clientSecret = f.client_secret
        if (basic && authorization !== undefined) {
          const decoded = Either.try(() => globalThis.atob(authorization.slice(6).trim()))
          const [id, secret] = Either.isRight(decoded) ? decoded.right.split(/:(.*)/s) : []
          const unform = (s: string | undefined) =>
            s === undefined ? undefined : decodeURIComponent(s.replace(/\+/g, " "))
          const basicId = Either.getOrUndefined(Either.try(() => unform(id)))
          const basicSecret = Either.getOrUndefined(Either.try(() => unform(secret)))
          if (
            (clientId !== undefined && clientId !== basicId) ||
            (clientSecret !== undefined && clientSecret !== basicSecret)
          ) {
            return fail({ status: 400, error: "invalid_request", description: "Use one client authentication method." })
          }
          clientId = basicId
          clientSecret = basicSecret
        }
        const partner = yield* model.partner
        if (clientId !== partner.clientId || clientSecret !== partner.clientSecret) {
          return fail({ status: 401, error: "invalid_client", description: "Client authentication failed." })
        }
        if (f.grant_type !== types.grantType) {
          return fail({
            status: 400,
            error: "unsupported_grant_type",
            description: `grant_type must be ${types.grantType}.`
          })
        }
        if (f.subject_token === undefined || f.subject_token.length === 0) {
          return fail({ status: 400, error: "invalid_request", description: "subject_token is required." })
        }
        const requested = f.requested_token_type ?? types.accessToken
        if (requested !== types.accessToken && requested !== types.connectToken) {
          return fail({
            status: 400,
            error: "invalid_request",
            description: `requested_token_type must be ${types.accessToken} or ${types.connectToken}.`
          })
        }
        if (f.subject_token_type === types.jwt) {
          const user = yield* Effect.either(verifyJwt(f.subject_token))
          if (Either.isLeft(user)) return fail(user.left)
          if (requested === types.connectToken && f.resource === undefined) {
            return fail(
              { status: 400, error: "invalid_target", description: "A connect token needs a resource." },
              user.right
            )
          }
          return yield* gated(
            { method: "POST", endpoint: FakeZapier.Endpoint.token, path: "/oauth/token", user: user.right },
            requested === types.accessToken
              ? Effect.map(model.exchangeAccess(user.right, f.scope), (i) => tokenResponse(i, types.accessToken))
              : Effect.map(model.connectFor(user.right, f.resource ?? "", f.scope), (i) =>
                  tokenResponse(i, types.connectToken)
                ),
            (failure, code) => oauthError(Model.oauthFromApi(failure, code), basic, now),
            (e) => oauthError(e, basic)
          )
        }
        if (f.subject_token_type === types.accessToken) {
          if (requested !== types.connectToken) {
            return fail({
              status: 400,
              error: "invalid_request",
              description: "An access token can only be exchanged for a connect token."
            })
          }
          if (f.resource === undefined) {
            return fail({ status: 400, error: "invalid_target", description: "A connect token needs a resource." })
          }
          const owner = yield* Effect.option(model.authenticate(f.subject_token))
          return yield* gated(
            {
              method: "POST",
              endpoint: FakeZapier.Endpoint.token,
              path: "/oauth/token",
              user: Option.getOrUndefined(owner)
            },
            Effect.map(model.exchangeConnect(f.subject_token, f.resource, f.scope), (i) =>
              tokenResponse(i, types.connectToken)
            ),
            (failure, code) => oauthError(Model.oauthFromApi(failure, code), basic, now),
            (e) => oauthError(e, basic)
          )
        }
        return fail({
          status: 400,
          error: "invalid_request",
          description: `subject_token_type must be ${types.jwt} or ${types.accessToken}.`
        })
      })
    )

    // --- /v2 --------------------------------------------------------------------------------------------------

    /** A `/v2` request: the bearer's user, then the gate, then the body. */
    const api = (
      endpoint: string,
      body: (
        user: Domain.EndUser
      ) => Effect.Effect<
        HttpServerResponse.HttpServerResponse,
        Model.ApiFailure,
        HttpServerRequest.ParsedSearchParams | HttpRouter.RouteContext | HttpServerRequest.HttpServerRequest
      >
    ) =>
      handle(endpoint)(
        Effect.gen(function* () {
          const req = yield* HttpServerRequest.HttpServerRequest
          const now = yield* model.now
          const authorization = req.headers.authorization ?? ""
          const match = /^Bearer\s+(\S+)$/i.exec(authorization)
          if (match === null) return respond(apiError(Model.ApiFailure.notAuthenticated(), now))
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

    const apps = api(FakeZapier.Endpoint.apps, () =>
      Effect.gen(function* () {
        const q = yield* decodeQuery(AppsQuery)
        const limit = Math.min(q.limit ?? 10, 100)
        const offset = q.offset ?? 0
        const ids = q.ids
          ?.split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
        const { items, count } = yield* model.listApps({ ids, search: q.query, category: q.category, limit, offset })
        const params: Record<string, string> = {}
        if (q.ids !== undefined) params.ids = q.ids
        if (q.query !== undefined) params.query = q.query
        if (q.category !== undefined) params.category = q.category
        const paged = page_("/v2/apps", count, limit, offset, params)
        return json({
          // The spec's /v2/apps example names the previous page `previous`; the shared Links schema says `prev`.
          links: { next: paged.links.next, previous: paged.links.prev },
          meta: paged.meta,
          data: items.map((a) => ({
            id: a.id,
            type: "app",
            title: a.title,
            description: a.description ?? "",
            image: `${url}/static/${encodeURIComponent(a.id)}/128.png`,
            images: {
              url_16x16: `${url}/static/${encodeURIComponent(a.id)}/16.png`,
              url_32x32: `${url}/static/${encodeURIComponent(a.id)}/32.png`,
              url_64x64: `${url}/static/${encodeURIComponent(a.id)}/64.png`,
              url_128x128: `${url}/static/${encodeURIComponent(a.id)}/128.png`
            },
            hex_color: "ff4f00",
            categories: a.categories.map((slug) => ({ slug })),
            action_types: [...new Set(a.actions.map((x) => x.actionType))],
            links: { connect_new_authentication: `${url}/to/${encodeURIComponent(a.id)}` }
          }))
        })
      })
    )

    const authentications = api(FakeZapier.Endpoint.authentications, (user) =>
      Effect.gen(function* () {
        const q = yield* decodeQuery(ListQuery)
        if (q.app === undefined || q.app.length === 0) {
          return yield* Effect.fail(Model.ApiFailure.invalid("The app query parameter is required.", "app"))
        }
        const limit = Math.min(Math.max(q.limit ?? 10, 1), 100)
        const offset = q.offset ?? 0
        const { items, count } = yield* model.listConnections(user, q.app, limit, offset)
        return json({
          ...page_("/v2/authentications", count, limit, offset, { app: q.app }),
          data: items.map((c) => ({
            type: "authentication",
            id: c.id,
            app: c.app,
            is_expired: c.isExpired,
            title: c.title
          }))
        })
      })
    )

    const actions = api(FakeZapier.Endpoint.actions, (user) =>
      Effect.gen(function* () {
        const q = yield* decodeQuery(ActionsQuery)
        if (q.app === undefined || q.app.length === 0) {
          return yield* Effect.fail(Model.ApiFailure.invalid("The app query parameter is required.", "app"))
        }
        const issued = yield* model.lookupActions(user, q.app, q.action_type)
        return json({
          links: { next: null, prev: null },
          meta: { count: issued.length, limit: null, offset: 0 },
          data: issued.map((a) => ({
            id: a.id,
            key: a.key,
            app: a.app,
            type: "action",
            action_type: a.actionType,
            is_instant: a.isInstant,
            title: a.title,
            description: a.description ?? ""
          }))
        })
      })
    )

    /** The `{data: {authentication, inputs}}` body of the field endpoints (`400 parse_error` when unreadable). */
    const fieldsBody = Effect.gen(function* () {
      const req = yield* HttpServerRequest.HttpServerRequest
      const text = yield* Effect.orElseSucceed(req.text, () => "")
      const parsed = Either.try(() => JSON.parse(text) as unknown)
      if (Either.isLeft(parsed)) return yield* Effect.fail(Model.ApiFailure.parseError())
      const body = yield* Schema.decodeUnknown(FieldsBody)(parsed.right).pipe(
        Effect.mapError((e) => Model.ApiFailure.invalid(`Invalid body: ${describeIssue(e)}`))
      )
      return { authentication: body.data.authentication, inputs: body.data.inputs ?? {} }
    })

    const inputFieldJson = (f: Model.InputFieldView) => ({
      type: "input_field",
      id: f.id,
      title: f.title,
      description: f.description,
      default_value: f.default,
      placeholder: f.placeholder,
      is_required: f.required,
      depends_on: f.dependsOn,
      invalidates_input_fields: f.invalidates,
      value_type: f.list ? "ARRAY" : f.valueType,
      items: f.list ? { type: f.valueType } : {},
      // The spec's example leaves `format` out of a field that has none.
      ...(f.format !== undefined ? { format: f.format } : {})
    })
    const infoFieldJson = (f: Model.InfoFieldView) => ({ type: "info_field", id: f.id, description: f.description })
    const fieldJson = (f: Model.FieldView) =>
      f.kind === "input"
        ? inputFieldJson(f)
        : f.kind === "info"
          ? infoFieldJson(f)
          : {
              type: "fieldset",
              id: f.id,
              title: f.title,
              fields: f.fields.map((x) => (x.kind === "input" ? inputFieldJson(x) : infoFieldJson(x)))
            }

    const inputs = api(FakeZapier.Endpoint.inputs, (user) =>
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const body = yield* fieldsBody
        const fields = yield* model.inputFields(user, params.id ?? "", body)
        return json({
          links: { next: null, prev: null },
          meta: { count: fields.length, limit: null, offset: 0 },
          data: fields.map(fieldJson)
        })
      })
    )

    const choices = api(FakeZapier.Endpoint.choices, (user) =>
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const q = yield* decodeQuery(ChoicesQuery)
        const body = yield* fieldsBody
        const id = params.id ?? ""
        const input = params.input ?? ""
        const view = yield* model.choices(user, id, input, { ...body, page: q.page ?? 1 })
        const link = (page: number) =>
          `${url}/v2/actions/${encodeURIComponent(id)}/inputs/${encodeURIComponent(input)}/choices?page=${page}`
        // Declared as an array of envelopes (spec §4.3); served as one envelope.
        return json({
          data: view.choices.map((c) => ({ id: c.id, type: "choice", label: c.label, value: c.value })),
          links: { next: view.hasNext ? link(view.page + 1) : null, prev: view.page > 1 ? link(view.page - 1) : null },
          meta: { page: view.page }
        })
      })
    )

    const outputs = api(FakeZapier.Endpoint.outputs, (user) =>
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const body = yield* fieldsBody
        const fields = yield* model.outputFields(user, params.id ?? "", body)
        return json({
          links: { next: null, prev: null },
          meta: { count: fields.length, limit: null, offset: 0 },
          data: fields.map((f) => ({ type: "output_field", id: f.id, title: f.title, sample: f.sample ?? null }))
        })
      })
    )

    const createRun = api(FakeZapier.Endpoint.createRun, (user) =>
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const text = yield* Effect.orElseSucceed(req.text, () => "")
        const parsed = Either.try(() => JSON.parse(text) as unknown)
        if (Either.isLeft(parsed) || !isObject(parsed.right)) {
          return yield* Effect.fail(Model.ApiFailure.parseError())
        }
        const body = parsed.right
        const shape = isObject(body.data) ? "data" : "action" in body ? "flat" : undefined
        if (shape === undefined || (runBody !== "both" && runBody !== shape)) {
          return yield* Effect.fail(Model.ApiFailure.parseError())
        }
        const input =
          shape === "data"
            ? yield* Schema.decodeUnknown(DataRunBody)(body).pipe(
                Effect.map(({ data }) => ({
                  action: data.action,
                  authentication: data.authentication,
                  inputs: data.inputs,
                  callbackUrl: data.callback_url
                }))
              )
            : yield* Schema.decodeUnknown(FlatRunBody)(body).pipe(
                Effect.map((b) => ({
                  action: b.action,
                  authentication: b.authentication,
                  inputs: b.input,
                  callbackUrl: b.callback_url
                }))
              )
        const runId = yield* model.createRun(user, input)
        return json({ data: { type: "run", id: runId } })
      }).pipe(
        Effect.catchTag("ParseError", (e) => Effect.fail(Model.ApiFailure.invalid(`Invalid body: ${describeIssue(e)}`)))
      )
    )

    const pendingStatus = options.pendingStatus ?? "waiting"
    const getRun = api(FakeZapier.Endpoint.getRun, (user) =>
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const id = params.id ?? ""
        const view = yield* model.getRun(user, id)
        let status: string = view.status
        if (view.status === "waiting" && pendingStatus !== "waiting") {
          if (pendingStatus === "queued-then-running") {
            const info = yield* Effect.orDie(model.control.run(id))
            const now = yield* model.now
            const half = info.finishesAt === undefined ? 1000 : (info.finishesAt - info.createdAt) / 2
            status = now - info.createdAt < half ? "queued" : "running"
          } else {
            status = pendingStatus
          }
        }
        return json(
          {
            data: {
              type: "run",
              status,
              results: view.results,
              errors: view.errors.map((e) => ({
                code: e.code,
                title: e.title,
                detail: e.detail ?? "",
                ...(e.delaySeconds !== undefined ? { delay: e.delaySeconds } : {}),
                meta: null
              }))
            }
          },
          view.status === "waiting" ? (options.pendingHttpStatus ?? 200) : 200
        )
      })
    )

    // --- Connect UI -------------------------------------------------------------------------------------------

    const connectPage = handle(FakeZapier.Endpoint.connectPage)(
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const params = yield* HttpRouter.params
        const app = params.app ?? ""
        const q = yield* Effect.orElseSucceed(decodeQuery(ConnectQuery), () => ({}) as typeof ConnectQuery.Type)
        const opened = yield* Effect.either(
          model.openSession(app, {
            token: q.token,
            state: q.state,
            redirectUri: q.redirect_uri,
            reconnectId: q.reconnect_id
          })
        )
        return yield* gated(
          { method: req.method, endpoint: FakeZapier.Endpoint.connectPage, path: pathOf(req) },
          Either.isLeft(opened)
            ? Effect.succeed(connectReply(opened.left))
            : Effect.succeed(
                page(
                  `Connect ${opened.right.appTitle}`,
                  `<h1>${opened.right.reconnect !== undefined ? "Reconnect" : "Connect"} ${escapeHtml(opened.right.appTitle)}</h1>` +
                    `<p>Allow this app to use your ${escapeHtml(opened.right.appTitle)} account` +
                    `${opened.right.reconnect !== undefined ? ` (connection ${escapeHtml(opened.right.reconnect)})` : ""}.</p>` +
                    `<form method="post" action="/to/${encodeURIComponent(app)}">` +
                    `<input type="hidden" name="session" value="${escapeHtml(opened.right.id)}">` +
                    `<label>Title <input name="title" value=""></label> ` +
                    `<button type="submit" name="decision" value="approve" id="approve">Approve</button> ` +
                    `<button type="submit" name="decision" value="deny" id="deny">Deny</button>` +
                    "</form>"
                )
              ),
          (failure) => page(failure.title, `<p>${escapeHtml(failure.detail)}</p>`, failure.status),
          () => page("Error", "<p>An unexpected error occurred</p>", 500)
        ).pipe(
          Effect.map((reply) =>
            reply._tag === "Response" && Either.isRight(opened) ? { ...reply, user: opened.right.user } : reply
          )
        )
      })
    )

    const connectSubmit = handle(FakeZapier.Endpoint.connectSubmit)(
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const form = yield* req.urlParamsBody.pipe(
          Effect.flatMap((p) => Schema.decodeUnknown(ConnectForm)(Object.fromEntries(p))),
          Effect.either
        )
        if (Either.isLeft(form)) {
          return respond(page("Error", "<p>Session initialization failed</p>", 400))
        }
        const title = form.right.title?.trim()
        const outcome = yield* model.finishSession(
          form.right.session,
          form.right.decision === "approve"
            ? { _tag: "Approve", title: title !== undefined && title.length > 0 ? title : undefined }
            : { _tag: "Deny", error: "server_error", description: "OAuth Failed: access_denied" }
        )
        return yield* gated(
          { method: req.method, endpoint: FakeZapier.Endpoint.connectSubmit, path: pathOf(req) },
          Effect.succeed(connectReply(outcome)),
          (failure) => page(failure.title, `<p>${escapeHtml(failure.detail)}</p>`, failure.status),
          () => page("Error", "<p>An unexpected error occurred</p>", 500)
        ).pipe(
          Effect.map((reply) => (outcome._tag === "Approved" ? { ...reply, user: outcome.connection.user } : reply))
        )
      })
    )

    const notFound = handle("unknown")(
      Effect.flatMap(model.now, (now) => Effect.succeed(respond(apiError(Model.ApiFailure.notFound("route"), now))))
    )

    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/oauth/token", token),
      HttpRouter.get("/v2/apps", apps),
      HttpRouter.get("/v2/authentications", authentications),
      HttpRouter.get("/v2/actions", actions),
      HttpRouter.post("/v2/actions/:id/inputs", inputs),
      HttpRouter.post("/v2/actions/:id/inputs/:input/choices", choices),
      HttpRouter.post("/v2/actions/:id/outputs", outputs),
      HttpRouter.post("/v2/action-runs/", createRun),
      HttpRouter.get("/v2/action-runs/:id/", getRun),
      HttpRouter.get("/to/:app", connectPage),
      HttpRouter.post("/to/:app", connectSubmit),
      HttpRouter.all("*", notFound)
    )
    // find-my-way ignores a trailing slash: `/v2/action-runs/` also matches `/v2/action-runs`.
    yield* server.serve(yield* HttpRouter.toHttpApp(router))

    const service: Service = {
      url,
      apiUrl: url,
      tokenUrl: `${url}/oauth/token`,
      connectUrl: url,
      port: address.port
    }
    return Context.make(FakeZapierServer, service).pipe(Context.add(FakeZapier.FakeZapier, model.control))
  })

/**
 * Starts the server (scoped: it stops when the scope closes) with a fresh model, and provides its address and the
 * model's control tag.
 *
 * @example
 * ```ts
 * const TestServer = FakeZapierServer.layer({ seed, pendingStatus: "queued-then-running", runBody: "data" })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<FakeZapierServer | FakeZapier.FakeZapier, ServeError> =>
  Layer.scopedContext(make(options))

/**
 * What a live client needs to reach this server as the sample partner ({@link FakeZapier.sample}) signing with
 * `key`: plain values shaped like `ZapierHttp.Options` (this package does not depend on the http package), with
 * `allowInsecureHttp` since the server is plain HTTP on loopback.
 *
 * @example
 * ```ts
 * const key = yield* PartnerKey.generate()
 * const Server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
 * const Client = Layer.unwrapEffect(
 *   Effect.map(FakeZapierServer.FakeZapierServer, (server) => ZapierHttp.layer(FakeZapierServer.clientOptions(server, key)))
 * )
 * ```
 * @since 0.1.0
 * @category clients
 */
export const clientOptions = (server: Service, key: PartnerKey) => ({
  clientId: FakeZapier.sample.clientId,
  clientSecret: Redacted.make(FakeZapier.sample.clientSecret),
  signingKey: key.privateKeyPem,
  keyId: key.kid,
  algorithm: key.alg,
  issuer: FakeZapier.sample.issuer,
  apiUrl: server.apiUrl,
  tokenUrl: server.tokenUrl,
  connectUrl: server.connectUrl,
  allowInsecureHttp: true
})
