/**
 * The http package's test kit, one module for every test of the package, by purpose:
 * - identities and secrets: the users, the partner key, the canary client secret, the sample seed;
 * - a scripted HttpClient that records every request (with the TestClock time it arrived) and a small scriptable
 *   Zapier on it (`fakeZapier`), for the unit tests of the live client;
 * - time: driving the TestClock until an effect is done, real sockets under the TestClock (`virtual`), a fast
 *   virtual clock for large simulations (`runVirtual`), window counting;
 * - failures and leaks: typed failures, every sink an error is seen through, canary checks;
 * - logs and spans captured;
 * - the fault stack of the reliability suite: the fake Zapier server behind a fault proxy, reached through an
 *   undici Agent whose connector can refuse, time out or fail DNS, with a client that counts and remembers secrets;
 * - the loopback stack of the integration tests: the fake server, the live client tapped for the secrets it sends,
 *   EmbeddedActions with fast polling, and every log line and error captured for the leak check;
 * - a browser that follows Connect links over HTTP.
 */

import type * as Net from "node:net"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ActionCatalog, ActionRuns, ConnectionStore, Domain, EmbeddedActions, Polling } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, FaultProxy, PartnerKey } from "@effect-zapier/testing"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
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
import * as Undici from "undici"
import { ZapierHttp } from "../src/index.js"

const { sample } = FakeZapier

// ---------------------------------------------------------------------------------------------------------------
// Identities and secrets
// ---------------------------------------------------------------------------------------------------------------

export const user = Domain.EndUser.make({ userId: "user-1", tenantId: "tenant-1" })
export const otherUser = Domain.EndUser.make({ userId: "user-2", tenantId: "tenant-1" })
export const app = Domain.AppId.make("81f613aa-c98a-4383-a5fc-195e68647217")

/** An end user of the sample tenant. */
export const userOf = (id: string | number): Domain.EndUser =>
  Domain.EndUser.make({ userId: `user-${id}`, tenantId: "acme" })

/** A client secret distinctive enough to be grepped for (a canary: it must never show in a log or an error). */
export const CLIENT_SECRET = "canary-client-secret-9d2e71b4c0a6"

/** The partner's key pair; the fake knows only its public half. */
export const partnerKey = await Effect.runPromise(PartnerKey.generate({ alg: "ES256", kid: "partner-key-2026" }))

/**
 * The sample catalog with the partner key registered; the partner's client secret is the sample's (so
 * `FakeZapierServer.clientOptions(server, partnerKey)` fits it).
 */
export const seed: FakeZapier.Seed = PartnerKey.register(FakeZapier.sampleSeed, partnerKey)

/** The secrets of the key itself: every line of the PEM's body, and the private JWK's `d`. */
const keySecrets: ReadonlyArray<string> = [
  ...Redacted.value(partnerKey.privateKeyPem)
    .split("\n")
    .filter((line) => line.length > 0 && !line.startsWith("-----")),
  JSON.parse(Redacted.value(partnerKey.privateJwk)).d as string
]

/** The partner key's PEM, in pieces that must never show. */
export const keyCanaries: ReadonlyArray<string> = (() => {
  const body = Redacted.value(partnerKey.privateKeyPem)
    .split("\n")
    .filter((l) => !l.startsWith("-----"))
    .join("")
  return [body.slice(0, 40), body.slice(40, 80), body.slice(-40)]
})()

/** The body of an outgoing request, as text. */
const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  if (body._tag === "Uint8Array") return new TextDecoder().decode(body.body)
  if (body._tag === "Raw" && typeof body.body === "string") return body.body
  return ""
}

/**
 * Collects the secrets of one outgoing request into `secrets`: the form's `client_secret` and `subject_token`
 * (a JWT's signature alone too), the bearer token, a connect `token=` parameter; the partner JWTs into `jwts`.
 */
const collectSecrets = (
  secrets: Set<string>,
  request: HttpClientRequest.HttpClientRequest,
  jwts?: Array<string>
): void => {
  const form = new URLSearchParams(bodyText(request))
  for (const field of ["client_secret", "subject_token"]) {
    const value = form.get(field)
    if (value === null || value.length === 0) continue
    secrets.add(value)
    const parts = value.split(".")
    if (parts.length === 3) secrets.add(parts[2]!)
  }
  const subject = form.get("subject_token")
  if (jwts !== undefined && subject !== null && subject.split(".").length === 3) jwts.push(subject)
  const bearer = request.headers.authorization?.replace(/^Bearer\s+/i, "")
  if (bearer !== undefined && bearer.length > 0) secrets.add(bearer)
  const connectToken = new URL(request.url).searchParams.get("token")
  if (connectToken !== null && connectToken.length > 0) secrets.add(connectToken)
}

// ---------------------------------------------------------------------------------------------------------------
// A scripted HttpClient and a small scriptable Zapier on it
// ---------------------------------------------------------------------------------------------------------------

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

/** What a script answers: a Response, a {@link Plain} answer, or a transport failure. */
export type Answer = Response | Plain | "refused" | "reset" | "hang"

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

/**
 * A complete answer given by its parts, served as a server serves a body it holds whole: with its
 * `Content-Length`. {@link scriptedClient} hands the client the same `HttpClientResponse` (`fromWeb`) over a
 * small source instead of a WHATWG `Response`, whose construction and body promise chain cost a large share of a
 * scripted request (the chaos property sends thousands per plan). A body that must arrive as a stream (chunked,
 * truncated) is still a `Response`.
 */
export class Plain {
  readonly _tag = "Plain"
  constructor(
    readonly status: number,
    readonly headers: Readonly<Record<string, string>>,
    readonly body: string
  ) {}
}

/** A JSON answer as a {@link Plain} (with its `Content-Length`). */
export const plainJson = (body: unknown, status = 200, headers: Record<string, string> = {}): Plain => {
  const text = JSON.stringify(body)
  return new Plain(
    status,
    { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers },
    text
  )
}

/** The part of a WHATWG `Response` that `HttpClientResponse.fromWeb` reads, over a {@link Plain} answer. */
class PlainSource {
  readonly status: number
  readonly headers: Headers
  constructor(private readonly plain: Plain) {
    this.status = plain.status
    this.headers = new Headers(plain.headers)
  }
  get body(): ReadableStream<Uint8Array> | null {
    if (this.plain.body.length === 0) return null
    const bytes = new TextEncoder().encode(this.plain.body)
    return new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes)
        controller.close()
      }
    })
  }
  text(): Promise<string> {
    return Promise.resolve(this.plain.body)
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(new TextEncoder().encode(this.plain.body).buffer as ArrayBuffer)
  }
  formData(): Promise<FormData> {
    return new Response(this.plain.body, { headers: this.headers }).formData()
  }
}

const toResponse = (request: HttpClientRequest.HttpClientRequest, answer: Response | Plain) =>
  answer instanceof Plain
    ? // fromWeb reads only what PlainSource has (status, headers, body, text, arrayBuffer, formData).
      HttpClientResponse.fromWeb(request, new PlainSource(answer) as unknown as Response)
    : HttpClientResponse.fromWeb(request, answer)

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
      return toResponse(request, answer)
    })
  )
  return { client, requests, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

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
// Time: the TestClock driven, real sockets under the TestClock, a fast virtual clock, window counting
// ---------------------------------------------------------------------------------------------------------------

/** The most timestamps found in any window `(t - window, t]`. */
export const maxInAnyWindow = (times: ReadonlyArray<number>, windowMillis: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let max = 0
  let first = 0
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[first]! <= sorted[i]! - windowMillis) first++
    max = Math.max(max, i - first + 1)
  }
  return max
}

/** One turn of the real event loop. */
export const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** A millisecond of real time. */
export const tick = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))

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
    for (let steps = 0; steps < maxSteps; ) {
      // Let real promises (WebCrypto signing) settle, then look.
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done) && Exit.isSuccess(done.value)) return done.value.value
      // A WebCrypto signature in flight is real work, however many turns a busy machine takes over it: the clock
      // waits for it (as in `virtual`) rather than run an attempt's timeout out from under it.
      if (pendingSigns.count > 0) {
        yield* tick
        continue
      }
      steps++
      yield* TestClock.adjust(step)
    }
    return yield* Fiber.join(fiber)
  })

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

/**
 * Real time only (`it.live`): re-reads `read` every 10 ms until `done` holds for what it returns, and returns that.
 * It waits for the state itself, however late a busy machine makes it; the guard (30 s by default) only catches a
 * hang, and then dies naming `what` was awaited and the last value read.
 */
export const waitUntil = <A, E, R>(
  read: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  what: string,
  guard: Duration.DurationInput = "30 seconds"
): Effect.Effect<A, E, R> => {
  let last: A | undefined
  const check: Effect.Effect<A, E, R> = Effect.flatMap(read, (a) => {
    last = a
    return done(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("10 millis"), check)
  })
  return check.pipe(
    Effect.timeoutOption(guard),
    Effect.flatMap(
      Option.match({
        onNone: () =>
          Effect.dieMessage(
            `waitUntil: ${what} did not happen within ${Duration.format(guard)} (last read: ${String(last)})`
          ),
        onSome: Effect.succeed
      })
    )
  )
}

/**
 * Runs `effect` with real sockets under the TestClock: gives the sockets real time while requests are in flight,
 * and when none is (or one has been stuck for `patience` ms: a hang, or a delay on the fake's clock) moves the
 * clock to the next sleep. Returns the Exit. Use a realistic attempt timeout (the default 30 s), so that a
 * delay on the fake's clock ends before the client's timeout, as it would.
 */
export const virtual = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly patience?: number; readonly maxSteps?: number } = {}
): Effect.Effect<Exit.Exit<A, E>, never, R | InFlight> =>
  Effect.gen(function* () {
    const inFlight = yield* InFlight
    const patience = options.patience ?? 500
    const fiber = yield* Effect.fork(Effect.exit(effect))
    let waited = 0
    let quiet = 0
    for (let step = 0; step < (options.maxSteps ?? 200_000); step++) {
      // Real time for the sockets and for real promises (WebCrypto signing) that no counter sees.
      const busy = inFlight.count + pendingSigns.count
      yield* quiet === 0 && busy === 0 ? turn : tick
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done) && Exit.isSuccess(done.value)) return done.value.value
      if (inFlight.count + pendingSigns.count > 0) {
        quiet = 0
        if (waited++ < patience) continue
      } else if (quiet++ < 3) {
        continue
      }
      waited = 0
      quiet = 0
      // The TestClock keeps the sleeps of interrupted fibers (e.g. finished timeouts): moving to one early is
      // harmless, as nothing else is pending.
      const sleeps = yield* TestClock.sleeps()
      const now = yield* Clock.currentTimeMillis
      const next = Chunk.filter(sleeps, (at) => at > now)
      if (Chunk.isEmpty(next)) continue
      yield* TestClock.adjust(Math.min(...next) - now)
    }
    return yield* Effect.die(new Error("virtual: the effect did not finish"))
  })

interface Timer {
  readonly at: number
  readonly resume: () => void
  cancelled: boolean
}

/**
 * Runs `effect` on a virtual clock starting at `start`: sleeps are timers that fire when the clock reaches them;
 * between two jumps the real event loop settles (real promises complete; a WebCrypto signature in flight, e.g. a
 * partner JWT's, is waited for). Unlike the
 * TestClock, which yields on the live clock for every wake-up, a jump wakes every timer due at once, so tens of
 * thousands of sleeps cost milliseconds. With `quantum` > 0, timers due within `quantum` ms of the next one wake
 * together (at their own times as far as `Clock` tells them, the clock reading the latest); keep it 0 where exact
 * timings are asserted.
 */
export const runVirtual = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: {
    readonly start?: number
    readonly quantum?: number
    readonly maxIdleTurns?: number
    /**
     * Requests in flight over real sockets: while there are some (or signatures in flight), the clock waits (up to
     * `patience` ms).
     */
    readonly inFlight?: { readonly count: number }
    readonly patience?: number
  } = {}
): Effect.Effect<{ readonly exit: Exit.Exit<A, E>; readonly now: number }, never, R> =>
  Effect.gen(function* () {
    let now = options.start ?? 0
    const timers: Array<Timer> = []
    const insert = (timer: Timer) => {
      // Sorted by time (stable for equal times): binary search for the insertion point.
      let lo = 0
      let hi = timers.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (timers[mid]!.at <= timer.at) lo = mid + 1
        else hi = mid
      }
      timers.splice(lo, 0, timer)
    }
    const clock: Clock.Clock = {
      [Clock.ClockTypeId]: Clock.ClockTypeId,
      unsafeCurrentTimeMillis: () => now,
      currentTimeMillis: Effect.sync(() => now),
      unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
      currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
      sleep: (duration) =>
        Effect.async<void>((resume) => {
          const millis = Duration.toMillis(duration)
          if (millis <= 0) return resume(Effect.void)
          // Whole milliseconds, as a real clock reads (jittered delays are fractional).
          const timer: Timer = { at: now + Math.ceil(millis), resume: () => resume(Effect.void), cancelled: false }
          insert(timer)
          return Effect.sync(() => {
            timer.cancelled = true
          })
        })
    }
    const fiber = yield* Effect.fork(Effect.exit(Effect.withClock(effect, clock)))
    const quantum = options.quantum ?? 0
    let idle = 0
    let waited = 0
    for (;;) {
      yield* turn
      yield* turn
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done) && Exit.isSuccess(done.value)) return { exit: done.value.value, now }
      // A WebCrypto signature in flight (a partner JWT) is real work that takes no virtual time: the clock waits
      // for it as for a request (on a busy machine two turns may not see it done, and the token request would
      // otherwise go out a timer batch later than its exchange started).
      const busy = (options.inFlight?.count ?? 0) + pendingSigns.count
      if (busy > 0 && waited++ < (options.patience ?? 1_000)) {
        yield* tick
        continue
      }
      waited = 0
      while (timers.length > 0 && timers[0]!.cancelled) timers.shift()
      if (timers.length === 0) {
        // Waiting on something real (a signature, a socket): give it real time.
        if (++idle > (options.maxIdleTurns ?? 20_000)) {
          return yield* Effect.die(new Error("runVirtual: nothing scheduled and the effect did not finish"))
        }
        yield* tick
        continue
      }
      idle = 0
      const until = timers[0]!.at + quantum
      const due: Array<Timer> = []
      while (timers.length > 0 && timers[0]!.at <= until) due.push(timers.shift()!)
      for (const timer of due) {
        if (timer.cancelled) continue
        now = Math.max(now, timer.at)
        timer.resume()
      }
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// Failures and leaks
// ---------------------------------------------------------------------------------------------------------------

/** The typed failure of an Exit, if it failed with one. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** Every text an error can be seen through: its string, message, JSON and the Cause's rendering. */
export const errorSinks = <A, E>(exit: Exit.Exit<A, E>): ReadonlyArray<string> => {
  if (Exit.isSuccess(exit)) return []
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  return [
    String(failure),
    failure instanceof Error ? failure.message : "",
    JSON.stringify(failure) ?? "",
    Cause.pretty(exit.cause)
  ]
}

/** The canaries found in `sinks` (an empty list when there is none). */
export const leaks = (sinks: ReadonlyArray<string>, canaries: ReadonlyArray<string>): ReadonlyArray<string> => {
  const text = sinks.join("\n")
  return canaries.filter((c) => c.length >= 8 && text.includes(c)).map((c) => `${c.slice(0, 10)}…`)
}

// ---------------------------------------------------------------------------------------------------------------
// Logs and spans
// ---------------------------------------------------------------------------------------------------------------

/** A logger that appends every log line (logfmt, with annotations and causes) at every level to `lines`. */
export const logLayer = (lines: Array<string>): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make((options) => {
        lines.push(Logger.logfmtLogger.log(options))
      })
    ),
    Logger.minimumLogLevel(LogLevel.All)
  )

/** Captures every log line (logfmt, with annotations and causes) at every level. */
export const captureLogs = () => {
  const lines: Array<string> = []
  return { lines, layer: logLayer(lines) }
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

// ---------------------------------------------------------------------------------------------------------------
// The fault stack: the fake server, a fault proxy in front of it, an undici Agent with the fault connector
// ---------------------------------------------------------------------------------------------------------------

/** What the connector does for one new connection. */
export type ConnectFault = "refused" | "connect-timeout" | "dns"

/**
 * The connector's plan and counters: `plan(host)` holds the faults of the next new connections to `host`
 * (`localhost` or `127.0.0.1`), in order; `attempts(host)` counts the connections tried.
 */
export interface Connector {
  readonly plan: (host: string, ...faults: ReadonlyArray<ConnectFault>) => void
  readonly attempts: (host: string) => number
  readonly connect: Undici.buildConnector.connector
}

const toLoopback = (_hostname: string, options: { readonly all?: boolean }, callback: (...args: never) => void) => {
  const cb = callback as unknown as (error: Error | null, address: unknown, family?: number) => void
  if (options.all) cb(null, [{ address: "127.0.0.1", family: 4 }])
  else cb(null, "127.0.0.1", 4)
}

/**
 * A connector on loopback: `localhost` is resolved by a custom `lookup` to 127.0.0.1 (so DNS can be failed
 * without a network), and a planned fault replaces the connection: `refused` connects to a closed port (a real
 * ECONNREFUSED), `connect-timeout` resolves too late for undici's connect timeout (a real
 * UND_ERR_CONNECT_TIMEOUT), `dns` fails the lookup (ENOTFOUND).
 */
export const makeConnector = (closedPort: number): Connector => {
  const plans = new Map<string, Array<ConnectFault>>()
  const counts = new Map<string, number>()
  const normal = Undici.buildConnector({ timeout: 2_000, lookup: toLoopback as unknown as Net.LookupFunction })
  // undici's connect timeouts tick on a ~0.5 s clock: a 50 ms one fires within about a second.
  const slow = Undici.buildConnector({
    timeout: 50,
    lookup: ((hostname: string, options: { readonly all?: boolean }, callback: (...args: never) => void) => {
      setTimeout(() => toLoopback(hostname, options, callback), 5_000).unref()
    }) as unknown as Net.LookupFunction
  })
  const failing = Undici.buildConnector({
    timeout: 2_000,
    lookup: ((hostname: string, _options: unknown, callback: (...args: never) => void) => {
      const cb = callback as unknown as (error: Error) => void
      cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", hostname }))
    }) as unknown as Net.LookupFunction
  })
  return {
    plan: (host, ...faults) => {
      plans.set(host, [...(plans.get(host) ?? []), ...faults])
    },
    attempts: (host) => counts.get(host) ?? 0,
    connect: (options, callback) => {
      counts.set(options.hostname, (counts.get(options.hostname) ?? 0) + 1)
      const fault = plans.get(options.hostname)?.shift()
      if (fault === "refused") return normal({ ...options, hostname: "127.0.0.1", port: String(closedPort) }, callback)
      if (fault === "connect-timeout") return slow({ ...options, hostname: "localhost" }, callback)
      if (fault === "dns") return failing({ ...options, hostname: "localhost" }, callback)
      return normal(options, callback)
    }
  }
}

/**
 * The undici Agent recommended for Zapier (and used by these tests): keep-alive below the server's idle timeout
 * (Node servers close idle sockets at 5 s; undici's default 4 s already is), connect timeout bounded; the
 * per-request header and body timeouts are left to the library's own `requestTimeout`.
 */
export const agentLayer = (options: Undici.Agent.Options = {}): Layer.Layer<NodeHttpClient.Dispatcher> =>
  Layer.scoped(
    NodeHttpClient.Dispatcher,
    Effect.acquireRelease(
      Effect.sync(() => new Undici.Agent({ keepAliveTimeout: 4_000, connectTimeout: 10_000, ...options })),
      (agent) => Effect.promise(() => agent.destroy())
    )
  )

/**
 * WebCrypto signatures in flight: real promises that no socket counter sees. The partner JWT is now signed at once
 * with `node:crypto` (nothing in flight), and with `crypto.subtle.sign` only for a key `node:crypto` cannot take;
 * the fake's webhook HMACs are signed here too. {@link virtual} waits for them as it waits for requests, so a busy machine's slow signing is never
 * mistaken for quiet (the clock moved on mid-exchange, and a 401 row counted a third exchange).
 */
export const pendingSigns = { count: 0 }
{
  const subtle = globalThis.crypto.subtle
  const sign = subtle.sign.bind(subtle)
  subtle.sign = ((...args: Parameters<SubtleCrypto["sign"]>) => {
    pendingSigns.count++
    return sign(...args).finally(() => {
      pendingSigns.count--
    })
  }) as SubtleCrypto["sign"]
}

/** The requests in flight through an {@link instrumented} client that counts. */
export class InFlight extends Context.Tag("test/InFlight")<InFlight, { count: number }>() {}

/** The secrets the client sent (bearer tokens, partner JWTs, the client secret), for the canary check. */
export class Sent extends Context.Tag("test/Sent")<Sent, Set<string>>() {}

/** The attempts the client made, per `METHOD /path` (every attempt, whether or not it reached the server). */
export class Attempts extends Context.Tag("test/Attempts")<Attempts, Map<string, number>>() {}

const noBody = new Set([101, 204, 205, 304])

/**
 * Wraps the HttpClient in context: remembers every secret sent (never the bodies' other values), and with
 * `count` counts the requests in flight and reads every body before answering, so that a request counts until
 * its last byte arrived.
 */
export const instrumented = (
  count: boolean,
  state: { count: number } = { count: 0 }
): Layer.Layer<HttpClient.HttpClient | InFlight | Sent | Attempts, never, HttpClient.HttpClient> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const inner = yield* HttpClient.HttpClient
      const sent = new Set<string>()
      const attempts = new Map<string, number>()
      const buffered = (request: HttpClientRequest.HttpClientRequest) =>
        Effect.flatMap(inner.execute(request), (response) =>
          Effect.map(response.arrayBuffer, (body) =>
            HttpClientResponse.fromWeb(
              request,
              new Response(noBody.has(response.status) ? null : body, {
                status: response.status,
                headers: response.headers
              })
            )
          )
        )
      const client = HttpClient.make((request, url) => {
        collectSecrets(sent, request)
        const key = `${request.method} ${url.pathname}`
        attempts.set(key, (attempts.get(key) ?? 0) + 1)
        if (!count) return inner.execute(request)
        return Effect.acquireUseRelease(
          Effect.sync(() => {
            state.count++
          }),
          () => buffered(request),
          () =>
            Effect.sync(() => {
              state.count--
            })
        )
      })
      return Context.make(HttpClient.HttpClient, client).pipe(
        Context.add(InFlight, state),
        Context.add(Sent, sent),
        Context.add(Attempts, attempts)
      )
    })
  )

/** The live options against `base` (tokens and API may go through different origins). */
export const liveOptions = (
  urls: { readonly api: string; readonly token: string },
  extra: Partial<ZapierHttp.Options> = {}
): ZapierHttp.Options => ({
  clientId: sample.clientId,
  clientSecret: Redacted.make(sample.clientSecret),
  signingKey: partnerKey.privateKeyPem,
  keyId: partnerKey.kid,
  algorithm: partnerKey.alg,
  issuer: sample.issuer,
  apiUrl: urls.api,
  tokenUrl: `${urls.token}/oauth/token`,
  connectUrl: urls.api,
  allowInsecureHttp: true,
  ...extra
})

/** A closed TCP port on loopback (listened on, then closed). */
export const closedPort = await new Promise<number>((resolve, reject) => {
  import("node:net").then((net) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
    server.on("error", reject)
  }, reject)
})

/** A fresh id of the sample's `uppercase` action (the formatter app needs no connection). */
export const uppercaseAction = (user: Domain.EndUser) =>
  Effect.flatMap(ActionCatalog.ActionCatalog, (catalog) => catalog.resolve(user, sample.formatter, sample.uppercase))

/** Creates one run of `uppercase` (a fresh id first). */
export const createUppercase = (user: Domain.EndUser, text = "hi") =>
  Effect.flatMap(uppercaseAction(user), (action) =>
    Effect.flatMap(ActionRuns.ActionRuns, (runs) =>
      runs.create(user, { action: action.id, connection: null, inputs: { text } })
    )
  )

/** What a test needs to steer the stack. */
export class FaultStack extends Context.Tag("test/FaultStack")<
  FaultStack,
  {
    readonly server: FakeZapierServer.Service
    readonly proxy: FaultProxy.Service
    readonly connector: Connector
    /** The hosts of the API and token URLs (the connector's plan is per host). */
    readonly apiHost: string
    readonly tokenHost: string
  }
>() {}

/** The HttpClient the stack uses: `NodeHttpClient` over undici, or `FetchHttpClient` (undici's fetch). */
export type ClientKind = "undici" | "fetch"

/** Options of {@link faultStack}. */
export interface FaultStackOptions {
  /**
   * The HttpClient (default `undici`). `fetch` is `FetchHttpClient` over undici's WHATWG `fetch` with the same
   * Agent (so the connector's faults apply): fetch's own semantics (redirects followed unless told otherwise,
   * `TypeError: fetch failed` wrapping the cause), which the library must handle as it handles undici's.
   */
  readonly client?: ClientKind | undefined
  /** Which requests go through the fault proxy (default: the API's). */
  readonly through?: "api" | "token" | "none" | undefined
  /** The API's host; the token endpoint uses the other one (default `127.0.0.1`, tokens on `localhost`). */
  readonly apiHost?: "127.0.0.1" | "localhost" | undefined
  readonly extra?: Partial<ZapierHttp.Options> | undefined
  readonly server?: FakeZapierServer.Options | undefined
  readonly agent?: Undici.Agent.Options | undefined
  /** Count the requests in flight (for {@link virtual}); bodies are then read whole before answering. */
  readonly counting?: boolean | undefined
  /** Where to count them (for {@link runVirtual}, which starts before the stack is built). */
  readonly inFlight?: { count: number } | undefined
}

/**
 * The live services over real loopback: `FakeZapierServer` (its model on the Clock in scope) behind a
 * `FaultProxy`, reached through an undici Agent whose connector can be told to fail.
 */
export const faultStack = (options: FaultStackOptions = {}) =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const server = yield* FakeZapierServer.FakeZapierServer
      const proxy = yield* Effect.orDie(FaultProxy.make({ upstream: server.url }))
      const connector = makeConnector(closedPort)
      const through = options.through ?? "api"
      const apiHost = options.apiHost ?? "127.0.0.1"
      const tokenHost = apiHost === "127.0.0.1" ? "localhost" : "127.0.0.1"
      const url = (host: string, proxied: boolean) => `http://${host}:${proxied ? proxy.port : server.port}`
      const dispatcher = agentLayer({ connect: connector.connect, ...options.agent })
      const client =
        options.client === "fetch"
          ? FetchHttpClient.layer.pipe(
              Layer.provide(
                Layer.effect(
                  FetchHttpClient.Fetch,
                  Effect.map(
                    NodeHttpClient.Dispatcher,
                    (agent) =>
                      ((input: string | URL, init?: RequestInit) =>
                        Undici.fetch(input, {
                          ...(init as Undici.RequestInit),
                          dispatcher: agent
                        })) as unknown as typeof globalThis.fetch
                  )
                )
              ),
              Layer.provide(dispatcher)
            )
          : NodeHttpClient.layerUndiciWithoutDispatcher.pipe(Layer.provide(dispatcher))
      const http = instrumented(options.counting === true || options.inFlight !== undefined, options.inFlight).pipe(
        Layer.provide(client)
      )
      const live = ZapierHttp.layer(
        liveOptions(
          { api: url(apiHost, through === "api"), token: url(tokenHost, through === "token") },
          {
            requestTimeout: "300 millis",
            retryBaseDelay: "5 millis",
            retryMaxDelay: "20 millis",
            ...options.extra
          }
        )
      ).pipe(Layer.provideMerge(http))
      return Layer.merge(live, Layer.succeed(FaultStack, { server, proxy, connector, apiHost, tokenHost }))
    })
  ).pipe(Layer.provideMerge(FakeZapierServer.layer({ seed, ...options.server })))

// ---------------------------------------------------------------------------------------------------------------
// The loopback stack: the fake server, the live client tapped for its secrets, EmbeddedActions, every log captured
// ---------------------------------------------------------------------------------------------------------------

/** What a test saw: log lines, errors, and the secrets the client sent (with the partner JWTs apart). */
export interface Capture {
  readonly lines: Array<string>
  readonly errors: Array<unknown>
  readonly secrets: Set<string>
  readonly jwts: Array<string>
}

/** The capture of the test running. */
export class Captured extends Context.Tag("test/loopback/Captured")<Captured, Capture>() {}

/** A fresh capture, the canary secret and the key's secrets known from the start. */
export const newCapture = (): Capture => ({
  lines: [],
  errors: [],
  secrets: new Set([CLIENT_SECRET, sample.clientSecret, ...keySecrets]),
  jwts: []
})

/** Every log line of a test, at every level, into its capture. */
export const logCapture = (capture: Capture): Layer.Layer<never> => logLayer(capture.lines)

/** Polling scaled down for real time: 100 ms, ×1.5, 300 ms cap. */
export const fastPolling: Polling.PolicyShape = {
  ...Polling.defaults,
  initialDelay: Duration.millis(100),
  maxDelay: Duration.millis(300)
}

/** Options of {@link loopbackStack}. */
export interface LoopbackOptions {
  readonly seed?: FakeZapier.Seed | undefined
  readonly server?: Omit<FakeZapierServer.Options, "seed"> | undefined
  readonly client?: Partial<ZapierHttp.Options> | undefined
}

/** What the loopback stack provides. */
export type LoopbackServices =
  | ZapierHttp.Services
  | EmbeddedActions.EmbeddedActions
  | ConnectionStore.ConnectionStore
  | HttpClient.HttpClient
  | FakeZapierServer.FakeZapierServer
  | FakeZapier.FakeZapier
  | Polling.Policy
  | Captured

/** The client's options for the running fake (the sample partner, the canary secret, http: on loopback). */
export const clientOptions = (server: FakeZapierServer.Service): ZapierHttp.Options => ({
  clientId: sample.clientId,
  clientSecret: Redacted.make(sample.clientSecret),
  signingKey: partnerKey.privateKeyPem,
  keyId: partnerKey.kid,
  algorithm: partnerKey.alg,
  issuer: sample.issuer,
  apiUrl: server.apiUrl,
  tokenUrl: server.tokenUrl,
  connectUrl: server.connectUrl,
  allowInsecureHttp: true
})

/**
 * FakeZapierServer on 127.0.0.1 → the live client over undici (tapped) → core's EmbeddedActions with the
 * in-memory ConnectionStore and fast polling. The server's clock is the one in scope when it is built.
 */
export const loopbackStack = (
  capture: Capture,
  options: LoopbackOptions = {}
): Layer.Layer<LoopbackServices, unknown> => {
  const Server = FakeZapierServer.layer({ seed: options.seed ?? seed, ...options.server })
  const Client = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) =>
      HttpClient.tapRequest(client, (request) =>
        Effect.sync(() => collectSecrets(capture.secrets, request, capture.jwts))
      )
    )
  ).pipe(Layer.provide(NodeHttpClient.layerUndici))
  const Zapier = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      ZapierHttp.layer({ ...clientOptions(server), ...options.client })
    )
  )
  return EmbeddedActions.layer.pipe(
    Layer.provideMerge(Zapier),
    Layer.provideMerge(ConnectionStore.layerMemory),
    Layer.provideMerge(Client),
    Layer.provideMerge(Server),
    Layer.provideMerge(Layer.succeed(Polling.Policy, fastPolling)),
    Layer.provideMerge(Layer.succeed(Captured, capture))
  )
}

/** Fails the test if any secret the client sent (or the key's) shows in a log line or an error a test saw. */
export const assertNoLeaks = (capture: Capture): void => {
  const sinks: Array<string> = [...capture.lines]
  for (const error of capture.errors) {
    sinks.push(
      error instanceof Error ? error.message : String(error),
      JSON.stringify(error),
      String(error),
      Cause.pretty(Cause.fail(error))
    )
  }
  for (const secret of capture.secrets) {
    for (const sink of sinks) {
      if (sink.includes(secret)) {
        throw new Error(`a secret (${secret.slice(0, 6)}…, ${secret.length} chars) leaked into: ${sink.slice(0, 300)}`)
      }
    }
  }
}

/**
 * Runs a test body against a fresh stack (fresh server, model, client, store) with every log line captured,
 * then checks that no secret leaked.
 */
export const withStack =
  (options: LoopbackOptions = {}) =>
  <A, E>(body: Effect.Effect<A, E, LoopbackServices>): Effect.Effect<A, E | unknown> => {
    const capture = newCapture()
    return body.pipe(
      Effect.provide(loopbackStack(capture, options)),
      Effect.provide(logCapture(capture)),
      Effect.tap(() => Effect.sync(() => assertNoLeaks(capture)))
    )
  }

/** The typed failure of `effect` (a test expects it to fail); recorded for the leak check. */
export const expectFailure = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<E, never, R | Captured> =>
  Effect.flip(effect).pipe(
    Effect.catchAllDefect((defect) => Effect.dieMessage(`expected a typed failure, got a defect: ${String(defect)}`)),
    Effect.orElse(() => Effect.dieMessage("expected a failure, but it succeeded")),
    Effect.tap((error) => Effect.map(Captured, (capture) => capture.errors.push(error)))
  ) as Effect.Effect<E, never, R | Captured>

// ---------------------------------------------------------------------------------------------------------------
// A browser following Connect links over HTTP
// ---------------------------------------------------------------------------------------------------------------

/** The link of the `ConnectionRequired` that `ensureConnection` must fail with. */
export const connectLink = (user: Domain.EndUser, app: Domain.AppId, redirectUri?: string) =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    const required = yield* expectFailure(actions.ensureConnection(user, app, redirectUri ? { redirectUri } : {}))
    if (required._tag !== "ConnectionRequired" || required.link === undefined) {
      return yield* Effect.dieMessage(`expected ConnectionRequired with a link, got ${required._tag}`)
    }
    return { required, link: required.link }
  })

/** One answer as a browser sees it (redirects are not followed). */
export interface BrowserAnswer {
  readonly status: number
  readonly location: string | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** A browser GET (optionally with the partner's session cookie). */
export const visit = (url: string, session?: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const request = HttpClientRequest.get(url).pipe(
      session !== undefined ? HttpClientRequest.setHeader("cookie", `session=${session}`) : (r) => r
    )
    const response = yield* client.execute(request)
    const body = yield* response.text
    return { status: response.status, location: response.headers.location, headers: response.headers, body }
  }).pipe(Effect.scoped, Effect.orDie)

/**
 * The end user in Connect UI, over HTTP: open the link, press Approve (or Deny), and return where Connect UI
 * sends the browser (the `Location` of its redirect to the link's `redirect_uri`).
 */
export const decideInConnectUi = (linkUrl: string, decision: "approve" | "deny" = "approve") =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const page = yield* visit(linkUrl)
    const session = /name="session" value="([^"]+)"/.exec(page.body)?.[1]
    if (session === undefined) {
      return yield* Effect.dieMessage(`Connect UI offered no approval form (HTTP ${page.status})`)
    }
    const form = HttpClientRequest.post(new URL(new URL(linkUrl).pathname, linkUrl).toString()).pipe(
      HttpClientRequest.bodyUrlParams({ session, decision })
    )
    const answer = yield* client.execute(form).pipe(Effect.scoped, Effect.orDie)
    const location = answer.headers.location
    if (location === undefined) return yield* Effect.dieMessage(`Connect UI did not redirect (HTTP ${answer.status})`)
    return location
  })

export const provideClient = <ROut, E>(
  layer: Layer.Layer<ROut, E, HttpClient.HttpClient>,
  client: Layer.Layer<HttpClient.HttpClient>
): Layer.Layer<ROut, E> => Layer.provide(layer, client)
