/**
 * The run callback receiver, ready to mount: when a run created with a `callback_url` ends, Zapier POSTs
 * `{"data":{"type":"run","id","status","results","errors"}}` to it, signed in the header
 * `Zapier-Callback-Signature` (an RS256 JWT verifiable against Zapier's JWKS, valid about 5 minutes), retrying
 * up to 3 attempts on a 5xx or a network error, and sometimes delivering twice.
 *
 * `RunCallback.handler` checks, in this order, and answers at once:
 * 1. the body, read raw under a size cap (`413`), and the header's presence and size (`401`);
 * 2. the signature: RS256 only (`none`, HMAC and the rest refused before any key is looked at), a key of Zapier's
 *    key set (fetched through the app's `HttpClient`, cached, fetched again on an unknown `kid` at most once a
 *    minute: `503` while it may not be), `iat`/`exp` within a small clock skew (`401`);
 * 3. the body, decoded with Schema: a run id and a terminal status, `success` or `error` (`400`);
 * 4. the binding of token and body (see below; `401`);
 * 5. the routing token of the URL against the one recorded for that run on the run-event bus: another run's token
 *    is `401`; a run the bus does not know (yet) is `503`, so Zapier delivers again;
 * 6. the run's end, published on the bus: `200` the first time, `200` again for a duplicate, which is ignored.
 *
 * What binds the signature to this body and run (Zapier documents no claim for it, so this is INFERRED): a `run_id`
 * claim, if the token has one, must equal the body's run id, and a `body_sha256` claim, if present, must be the
 * SHA-256 of the raw body. Whatever the claims, the per-run routing token in the URL, known only to Zapier and the
 * partner, must be the one minted for the body's run: a signature and body lifted from another run's callback are
 * refused. A refusal says what was wrong and never quotes the body, the token or the signature.
 *
 * The handler needs the `Receiver` that `ZapierHttp.layer` provides (with the same bus the program awaits on).
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { RunCallback } from "@effect-zapier/http"
 *
 * // Mounted at the path of the configured runCallbackUrl (e.g. https://partner.example/zapier/runs):
 * const router = HttpRouter.empty.pipe(HttpRouter.post("/zapier/runs", RunCallback.handler))
 * ```
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { ActionRunId } from "@effect-zapier/core/Domain"
import * as RunEvents from "@effect-zapier/core/RunEvents"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { toRunState } from "./internal/actionRuns.js"
import { makeVerifier, type Refusal, refuse, type VerifierSettings } from "./internal/callbackJwt.js"
import { scrubServerSpan } from "./internal/serverSpan.js"
import * as Wire from "./Wire.js"

/**
 * The header that carries Zapier's signature.
 * @since 0.1.0
 */
export const signatureHeader = "zapier-callback-signature"

/**
 * A callback as received: the request URL (path and query), its headers (lower-case names) and its raw body.
 * @since 0.1.0
 * @category models
 */
export interface Incoming {
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: Uint8Array
}

/**
 * What the receiver did with a callback: delivered (the first time; `duplicate` when it had been before), or
 * refused with the status to answer and a message that quotes nothing received.
 * @since 0.1.0
 * @category models
 */
export type Outcome = { readonly _tag: "Delivered"; readonly runId: ActionRunId; readonly duplicate: boolean } | Refusal

/** @since 0.1.0 */
export interface Service {
  /** Verifies one callback and publishes the run's end on the bus (see the module's description). */
  readonly receive: (incoming: Incoming) => Effect.Effect<Outcome>
  /** The largest body read, in bytes. */
  readonly maxBodyBytes: number
  /** The query parameter of the routing token. */
  readonly tokenParameter: string
  /** How many times Zapier's key set was fetched. */
  readonly keySetFetches: Effect.Effect<number>
}

/**
 * The receiver the handler uses; `ZapierHttp.layer` provides it.
 * @since 0.1.0
 * @category tags
 */
export class Receiver extends Context.Tag("@effect-zapier/http/RunCallback/Receiver")<Receiver, Service>() {}

/**
 * The receiver's settings (validated by `ZapierHttp`'s options).
 * @since 0.1.0
 * @category options
 */
export interface ReceiverOptions {
  /** Zapier's JWKS URL. */
  readonly jwksUrl: string
  /** Tolerance on `iat`/`exp`. */
  readonly clockSkew: Duration.Duration
  /** The largest body accepted, in bytes. */
  readonly maxBodyBytes: number
  /** The query parameter of the routing token. */
  readonly tokenParameter: string
  /** Timeout of the key set's fetch. */
  readonly requestTimeout: Duration.Duration
  /** The least time between two key set fetches caused by an unknown `kid`. */
  readonly refetchInterval: Duration.Duration
}

/** The callback's body: the run's shape (as a poll reads it) with its id, which is required here. */
const CallbackBody = Schema.Struct({
  data: Schema.Struct({
    ...Wire.Run.fields.data.fields,
    id: Wire.Id
  })
})
const decodeBody = Schema.decodeUnknownEither(Schema.parseJson(CallbackBody))

/** The longest signature header read (a JWT signed with a 4096-bit key and a few claims is well under). */
const maxSignatureLength = 8192

const routingTokenOf = (url: string, parameter: string): string | undefined => {
  const at = url.indexOf("?")
  if (at === -1) return undefined
  const query = url.slice(at + 1).split("#")[0] ?? ""
  let found: string | undefined
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=")
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (name !== parameter) continue
    if (found !== undefined) return undefined // given twice: ambiguous
    try {
      found = decodeURIComponent(eq === -1 ? "" : pair.slice(eq + 1))
    } catch {
      return undefined
    }
  }
  return found !== undefined && found.length > 0 && found.length <= 256 ? found : undefined
}

const sha256 = (bytes: Uint8Array) =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new Uint8Array(bytes))).pipe(
    Effect.map((d) => new Uint8Array(d))
  )
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
const base64url = (bytes: Uint8Array) =>
  globalThis
    .btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "")

/**
 * Builds the receiver over an `HttpClient` (for the key set) and the run-event bus.
 * @since 0.1.0
 * @category constructors
 */
export const makeReceiver = (
  options: ReceiverOptions,
  client: HttpClient.HttpClient,
  events: RunEvents.Service
): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const verifierSettings: VerifierSettings = {
      jwksUrl: options.jwksUrl,
      clockSkewSeconds: Math.ceil(Duration.toSeconds(options.clockSkew)),
      maxTokenAgeSeconds: 10 * 60,
      refetchInterval: options.refetchInterval,
      maxKeySetAge: Duration.hours(24),
      requestTimeout: options.requestTimeout
    }
    const verifier = yield* makeVerifier(client, verifierSettings)

    const receive = (incoming: Incoming): Effect.Effect<Outcome> =>
      Effect.gen(function* () {
        if (incoming.body.byteLength > options.maxBodyBytes) {
          return refuse(413, "too_large", `the body is larger than ${options.maxBodyBytes} bytes`)
        }
        const signature = incoming.headers[signatureHeader]
        if (signature === undefined || signature.trim().length === 0) {
          return refuse(401, "missing_signature", "the Zapier-Callback-Signature header is missing")
        }
        if (signature.length > maxSignatureLength) {
          return refuse(401, "invalid_signature", "the Zapier-Callback-Signature header is too long")
        }
        const token = routingTokenOf(incoming.url, options.tokenParameter)
        if (token === undefined) {
          return refuse(
            401,
            "missing_routing_token",
            `the callback URL has no single ${options.tokenParameter} parameter: it is not a URL this partner issued`
          )
        }
        const claims = yield* Effect.either(verifier.verify(Redacted.make(signature.trim())))
        if (Either.isLeft(claims)) return claims.left
        const text = Either.try(() => new TextDecoder("utf-8", { fatal: true }).decode(incoming.body))
        if (Either.isLeft(text)) return refuse(400, "malformed_body", "the body is not UTF-8 text")
        const body = decodeBody(text.right)
        if (Either.isLeft(body)) {
          return refuse(
            400,
            "malformed_body",
            "the body is not a run callback: JSON {data: {id, status, results?, errors?}} was expected"
          )
        }
        const runIdEither = Schema.decodeUnknownEither(ActionRunId)(body.right.data.id.trim())
        if (Either.isLeft(runIdEither)) return refuse(400, "malformed_body", "the body's data.id is empty")
        const runId = runIdEither.right
        const state = toRunState(runId, 200, body.right, undefined)
        if (state._tag === "RunPending") {
          return refuse(400, "not_terminal", "the body's status is not a terminal one (success or error)")
        }
        // INFERRED binding claims, checked only when present.
        const runClaim = claims.right.run_id
        if (runClaim !== undefined && String(runClaim) !== runId) {
          return refuse(401, "wrong_run", "the signature was issued for another run")
        }
        const bodyClaim = claims.right.body_sha256
        if (bodyClaim !== undefined) {
          const digest = yield* sha256(incoming.body)
          if (
            typeof bodyClaim !== "string" ||
            (bodyClaim.toLowerCase() !== hex(digest) && bodyClaim !== base64url(digest))
          ) {
            return refuse(401, "body_mismatch", "the body is not the one the signature was issued for")
          }
        }
        const routingToken = Redacted.make(token)
        const checked = yield* Effect.either(events.check(runId, routingToken))
        if (Either.isLeft(checked)) {
          return refuse(503, "bus_unavailable", "the run-event bus is unavailable; deliver the callback again", 1)
        }
        if (checked.right === "mismatch") {
          return refuse(401, "wrong_routing_token", "the callback URL's routing token was not issued for this run")
        }
        if (checked.right === "unknown") {
          return refuse(503, "unknown_run", "no run with a callback is known under this id (yet); deliver again", 1)
        }
        const receivedAt = yield* DateTime.now
        const published = yield* Effect.either(
          events.publish(RunEvents.RunEvent.make({ runId, state, routingToken, source: "callback", receivedAt }))
        )
        if (Either.isLeft(published)) {
          return refuse(503, "bus_unavailable", "the run-event bus is unavailable; deliver the callback again", 1)
        }
        return { _tag: "Delivered" as const, runId, duplicate: !published.right }
      })

    return Receiver.of({
      receive,
      maxBodyBytes: options.maxBodyBytes,
      tokenParameter: options.tokenParameter,
      keySetFetches: verifier.fetches
    })
  })

/** Reads the raw body, refusing it as soon as it passes the cap (a declared length over it is refused unread). */
const readBody = (request: HttpServerRequest.HttpServerRequest, max: number) => {
  const declared = Number(request.headers["content-length"])
  if (Number.isFinite(declared) && declared > max) return Effect.succeed(Option.none<Uint8Array>())
  return request.stream.pipe(
    Stream.runFoldEffect({ parts: [] as Array<Uint8Array>, size: 0 }, (acc, chunk) => {
      const size = acc.size + chunk.byteLength
      if (size > max) return Effect.fail("too_large" as const)
      acc.parts.push(chunk)
      return Effect.succeed({ parts: acc.parts, size })
    }),
    Effect.map(({ parts, size }) => {
      const bytes = new Uint8Array(size)
      let offset = 0
      for (const part of parts) {
        bytes.set(part, offset)
        offset += part.byteLength
      }
      return Option.some(bytes)
    }),
    Effect.catchAll((e) => (e === "too_large" ? Effect.succeed(Option.none<Uint8Array>()) : Effect.fail(e)))
  )
}

const answer = (outcome: Outcome): HttpServerResponse.HttpServerResponse => {
  const headers = { "cache-control": "no-store" }
  if (outcome._tag === "Delivered") {
    return HttpServerResponse.unsafeJson({ received: true, duplicate: outcome.duplicate }, { status: 200, headers })
  }
  return HttpServerResponse.unsafeJson(
    { error: outcome.code, message: outcome.message },
    {
      status: outcome.status,
      headers: outcome.retryAfter !== undefined ? { ...headers, "retry-after": String(outcome.retryAfter) } : headers
    }
  )
}

/**
 * The handler: an `@effect/platform` `HttpApp` to mount with `HttpRouter.post` at the path of the configured
 * callback URL. It needs the {@link Receiver} from the server's context, which `ZapierHttp.layer` provides.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer } from "@effect/platform"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { RunCallback, ZapierHttp } from "@effect-zapier/http"
 * import { Layer } from "effect"
 *
 * const ZapierLive = ZapierHttp.layerFromEnv.pipe(Layer.provide(NodeHttpClient.layerUndici))
 * const routes = HttpRouter.empty.pipe(HttpRouter.post("/zapier/runs", RunCallback.handler))
 * const server = HttpServer.serve(routes).pipe(Layer.provide(ZapierLive))
 * ```
 * @since 0.1.0
 * @category handlers
 */
export const handler: HttpApp.Default<never, Receiver> = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const receiver = yield* Receiver
  // The routing token (URL) and the signature (header) are secrets: keep them off the request's span.
  yield* scrubServerSpan({ headers: [signatureHeader], queryParameter: receiver.tokenParameter })
  return yield* handle(request, receiver)
})

const handle = (request: HttpServerRequest.HttpServerRequest, receiver: Service) =>
  Effect.gen(function* () {
    const outcome: Outcome = yield* Effect.gen(function* () {
      if (request.method !== "POST") return refuse(405, "method_not_allowed", "run callbacks are POST requests")
      const body = yield* readBody(request, receiver.maxBodyBytes).pipe(
        Effect.catchAll(() => Effect.succeed(Option.none<Uint8Array>()))
      )
      if (Option.isNone(body)) {
        return refuse(413, "too_large", `the body is larger than ${receiver.maxBodyBytes} bytes, or could not be read`)
      }
      return yield* receiver.receive({ url: request.url, headers: request.headers, body: body.value })
    })
    yield* Effect.annotateCurrentSpan({
      "zapier.callback_outcome":
        outcome._tag === "Delivered" ? (outcome.duplicate ? "duplicate" : "delivered") : outcome.code,
      ...(outcome._tag === "Delivered" ? { "zapier.run_id": outcome.runId } : {})
    })
    if (outcome._tag !== "Delivered") {
      yield* Effect.logDebug("Zapier run callback refused").pipe(
        Effect.annotateLogs({ status: outcome.status, reason: outcome.code })
      )
    }
    return answer(outcome)
  }).pipe(Effect.withSpan("RunCallback.handle"))
