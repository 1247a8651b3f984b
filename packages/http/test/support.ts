/**
 * Test support: a scripted HttpClient that records every request (with the TestClock time it arrived), a
 * scriptable in-test Zapier, a log/span capture, and a helper that drives the TestClock until an effect is done.
 */

import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Domain } from "@effect-zapier/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import * as Jose from "jose"
import type { ZapierHttp } from "../src/index.js"

export const user = Domain.EndUser.make({ userId: "user-1", tenantId: "tenant-1" })
export const otherUser = Domain.EndUser.make({ userId: "user-2", tenantId: "tenant-1" })
export const app = Domain.AppId.make("81f613aa-c98a-4383-a5fc-195e68647217")

export const CLIENT_SECRET = "canary-client-secret-7f3a9c1e5b"

/** One recorded request. */
export interface Recorded {
  readonly method: string
  readonly url: URL
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly form: URLSearchParams
  readonly json: unknown
  /** TestClock millis when the request arrived. */
  readonly at: number
}

/** What a script answers: a Response, or a transport failure. */
export type Answer = Response | "refused" | "reset" | "hang"

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  if (body._tag === "Uint8Array") return new TextDecoder().decode(body.body)
  if (body._tag === "Raw" && typeof body.body === "string") return body.body
  return ""
}

const record = (request: HttpClientRequest.HttpClientRequest, url: URL, at: number): Recorded => {
  const body = bodyText(request)
  let parsed: unknown
  try {
    parsed = body.length > 0 ? JSON.parse(body) : undefined
  } catch {
    parsed = undefined
  }
  return {
    method: request.method,
    url,
    path: url.pathname,
    headers: { ...request.headers },
    body,
    form: new URLSearchParams(body),
    json: parsed,
    at
  }
}

const transportError = (request: HttpClientRequest.HttpClientRequest, code: string) =>
  new HttpClientError.RequestError({
    request,
    reason: "Transport",
    cause: new TypeError("fetch failed", { cause: Object.assign(new Error(`connect ${code}`), { code }) })
  })

/** A scripted HttpClient: `script` answers every request; `requests` holds what was sent. */
export const scriptedClient = (script: (request: Recorded, index: number) => Answer | Effect.Effect<Answer>) => {
  const requests: Array<Recorded> = []
  const client = HttpClient.make((request, url) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      const recorded = record(request, url, at)
      const index = requests.length
      requests.push(recorded)
      const produced = script(recorded, index)
      const answer = Effect.isEffect(produced) ? yield* produced : produced
      if (answer === "refused") return yield* transportError(request, "ECONNREFUSED")
      if (answer === "reset") return yield* transportError(request, "ECONNRESET")
      if (answer === "hang") return yield* Effect.never
      return HttpClientResponse.fromWeb(request, answer)
    })
  )
  return { client, requests, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

// ---------------------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------------------

export interface Keys {
  readonly pem: string
  readonly jwk: string
  readonly publicKey: Jose.CryptoKey
}

export const generateKeys = (alg: "ES256" | "RS256" = "ES256"): Promise<Keys> =>
  Jose.generateKeyPair(alg, { extractable: true }).then(async ({ privateKey, publicKey }) => ({
    pem: await Jose.exportPKCS8(privateKey),
    jwk: JSON.stringify(await Jose.exportJWK(privateKey)),
    publicKey
  }))

export const options = (keys: Keys, extra: Partial<ZapierHttp.Options> = {}): ZapierHttp.Options => ({
  clientId: "partner-client",
  clientSecret: Redacted.make(CLIENT_SECRET),
  signingKey: Redacted.make(keys.pem),
  keyId: "key-2026-03",
  issuer: "https://partner.example",
  ...extra
})

// ---------------------------------------------------------------------------------------------------------------
// A small scriptable Zapier
// ---------------------------------------------------------------------------------------------------------------

export interface FakeState {
  exchanges: number
  connectExchanges: number
  tokens: Array<string>
  expiresIn: number | undefined
}

/**
 * Answers the token endpoint with `access-token-canary-<n>` (or a connect token for a connect exchange), and
 * delegates every other request to `api`.
 */
export const fakeZapier = (
  api: (request: Recorded, index: number, state: FakeState) => Answer | Effect.Effect<Answer>,
  init: Partial<FakeState> = {}
) => {
  const state: FakeState = { exchanges: 0, connectExchanges: 0, tokens: [], expiresIn: 3600, ...init }
  const scripted = scriptedClient((request, index) => {
    if (request.path.replace(/\/$/, "") === "/oauth/token") {
      const connect = request.form.get("requested_token_type") === "urn:ietf:params:oauth:token-type:connect-token"
      if (connect) {
        state.connectExchanges++
        return json({ access_token: `connect-token-canary-${state.connectExchanges}`, expires_in: 360 })
      }
      state.exchanges++
      const token = `access-token-canary-${state.exchanges}`
      state.tokens.push(token)
      return json({
        access_token: token,
        token_type: "Bearer",
        ...(state.expiresIn !== undefined ? { expires_in: state.expiresIn } : {})
      })
    }
    return api(request, index, state)
  })
  return { ...scripted, state }
}

export const bearerOf = (request: Recorded): string | undefined =>
  request.headers.authorization?.replace(/^Bearer /, "")

// ---------------------------------------------------------------------------------------------------------------
// Clock driving, logs, spans
// ---------------------------------------------------------------------------------------------------------------

/**
 * Runs `effect` in a fiber and advances the TestClock by `step` until it is done; returns its Exit.
 */
export const driveClock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  step: Duration.DurationInput = Duration.millis(100),
  maxSteps = 10_000
): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.gen(function* () {
    // The fiber never fails (its outcome is its value), so the runtime logs no "unhandled error" for it.
    const fiber = yield* Effect.fork(Effect.exit(effect))
    for (let i = 0; i < maxSteps; i++) {
      // Let real promises (WebCrypto signing) settle, then look.
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done) && Exit.isSuccess(done.value)) return done.value.value
      yield* TestClock.adjust(step)
    }
    return yield* Fiber.join(fiber)
  })

/** The typed failure of an Exit, if it failed with one. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/**
 * Lets the real event loop turn until `condition` holds: background work that awaits a real promise (WebCrypto
 * signing) does not advance with the TestClock. It waits for the event itself; the real-time guard (20 s by
 * default) only catches a hang, so a busy machine (the signing promise late by many event-loop turns) cannot fail it.
 */
export const eventually = (condition: () => boolean, guardMillis = 20_000): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const deadline = Date.now() + guardMillis
    let turns = 0
    while (Date.now() < deadline) {
      if (condition()) return true
      // Turn the loop at once for the first few checks (the usual case), then yield to timers too.
      turns++
      yield* Effect.promise(
        () => new Promise<void>((resolve) => (turns < 1_000 ? setImmediate(resolve) : setTimeout(resolve, 1)))
      )
    }
    return condition()
  })

/** Captures every log line (logfmt, with annotations and causes) at every level. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make<unknown, void>((opts) => {
    lines.push(Logger.logfmtLogger.log(opts))
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
  return { lines, layer }
}

/** A recorded span. */
export interface RecordedSpan {
  readonly name: string
  readonly attributes: Map<string, unknown>
  status: "running" | "ended"
}

/** A tracer that records every span's name and attributes. */
export const captureSpans = () => {
  const spans: Array<RecordedSpan> = []
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const recorded: RecordedSpan = { name, attributes: new Map(), status: "running" }
      spans.push(recorded)
      const spanId = `span-${++ids}`
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId,
        traceId: "trace-1",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end: () => {
          recorded.status = "ended"
        },
        attribute: (key, value) => {
          recorded.attributes.set(key, value)
        },
        event: () => {},
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, layer: Layer.setTracer(tracer) }
}

export const provideClient = <ROut, E>(
  layer: Layer.Layer<ROut, E, HttpClient.HttpClient>,
  client: Layer.Layer<HttpClient.HttpClient>
): Layer.Layer<ROut, E> => Layer.provide(layer, client)

export { Context }
