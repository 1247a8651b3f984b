/**
 * Test harness of the reliability suite (fault matrix, chaos, properties): window counting; the live stack (the
 * fake Zapier server behind a fault proxy, an undici Agent whose connector can refuse, time out or fail DNS);
 * a driver that runs real sockets under the TestClock; and the canary check over every sink.
 */

import type * as Net from "node:net"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ActionCatalog, ActionRuns, Domain } from "@effect-zapier/core"
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
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Undici from "undici"
import { ZapierHttp } from "../src/index.js"

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

// ---------------------------------------------------------------------------------------------------------------
// Connection faults: an undici Agent whose connector refuses, times out or fails DNS on demand
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

// ---------------------------------------------------------------------------------------------------------------
// Counting client: requests in flight (with their whole body), for the virtual-time driver
// ---------------------------------------------------------------------------------------------------------------

/** The requests in flight through an {@link instrumented} client that counts. */
export class InFlight extends Context.Tag("test/InFlight")<InFlight, { count: number }>() {}

/** The secrets the client sent (bearer tokens, partner JWTs, the client secret), for the canary check. */
export class Sent extends Context.Tag("test/Sent")<Sent, Set<string>>() {}

/** The attempts the client made, per `METHOD /path` (every attempt, whether or not it reached the server). */
export class Attempts extends Context.Tag("test/Attempts")<Attempts, Map<string, number>>() {}

const noBody = new Set([101, 204, 205, 304])

const bodyText = (body: HttpClientRequest.HttpClientRequest["body"]): string =>
  body._tag === "Uint8Array"
    ? new TextDecoder().decode(body.body)
    : body._tag === "Raw" && typeof body.body === "string"
      ? body.body
      : ""

const remember = (sent: Set<string>, request: HttpClientRequest.HttpClientRequest) => {
  const bearer = request.headers.authorization?.replace(/^Bearer /, "")
  if (bearer !== undefined) sent.add(bearer)
  const form = new URLSearchParams(bodyText(request.body))
  for (const field of ["client_secret", "subject_token"]) {
    const value = form.get(field)
    if (value === null) continue
    sent.add(value)
    // A JWT's signature alone is a canary too.
    const parts = value.split(".")
    if (parts.length === 3) sent.add(parts[2]!)
  }
}

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
        remember(sent, request)
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
      yield* quiet === 0 && inFlight.count === 0 ? turn : tick
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done) && Exit.isSuccess(done.value)) return done.value.value
      if (inFlight.count > 0) {
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

// ---------------------------------------------------------------------------------------------------------------
// The live stack
// ---------------------------------------------------------------------------------------------------------------

export const partnerKey = await Effect.runPromise(PartnerKey.generate())
export const seed = PartnerKey.register(FakeZapier.sampleSeed, partnerKey)

/** The live options against `base` (tokens and API may go through different origins). */
export const liveOptions = (
  urls: { readonly api: string; readonly token: string },
  extra: Partial<ZapierHttp.Options> = {}
): ZapierHttp.Options => ({
  clientId: FakeZapier.sample.clientId,
  clientSecret: Redacted.make(FakeZapier.sample.clientSecret),
  signingKey: partnerKey.privateKeyPem,
  keyId: partnerKey.kid,
  algorithm: partnerKey.alg,
  issuer: FakeZapier.sample.issuer,
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

/** An end user of the sample tenant. */
export const userOf = (id: string | number): Domain.EndUser =>
  Domain.EndUser.make({ userId: `user-${id}`, tenantId: "acme" })

/** A fresh id of the sample's `uppercase` action (the formatter app needs no connection). */
export const uppercaseAction = (user: Domain.EndUser) =>
  Effect.flatMap(ActionCatalog.ActionCatalog, (catalog) =>
    catalog.resolve(user, FakeZapier.sample.formatter, FakeZapier.sample.uppercase)
  )

/** Creates one run of `uppercase` (a fresh id first). */
export const createUppercase = (user: Domain.EndUser, text = "hi") =>
  Effect.flatMap(uppercaseAction(user), (action) =>
    Effect.flatMap(ActionRuns.ActionRuns, (runs) =>
      runs.create(user, { action: action.id, connection: null, inputs: { text } })
    )
  )

// ---------------------------------------------------------------------------------------------------------------
// The stack: the fake server, a fault proxy in front of it, an undici Agent with the fault connector
// ---------------------------------------------------------------------------------------------------------------

/** What a test needs to steer the stack. */
export class Stack extends Context.Tag("test/Stack")<
  Stack,
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

/** Options of {@link stack}. */
export interface StackOptions {
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
export const stack = (options: StackOptions = {}) =>
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
      return Layer.merge(live, Layer.succeed(Stack, { server, proxy, connector, apiHost, tokenHost }))
    })
  ).pipe(Layer.provideMerge(FakeZapierServer.layer({ seed, ...options.server })))

// ---------------------------------------------------------------------------------------------------------------
// Canaries
// ---------------------------------------------------------------------------------------------------------------

/** The partner key's PEM, in pieces that must never show. */
export const keyCanaries: ReadonlyArray<string> = (() => {
  const body = Redacted.value(partnerKey.privateKeyPem)
    .split("\n")
    .filter((l) => !l.startsWith("-----"))
    .join("")
  return [body.slice(0, 40), body.slice(40, 80), body.slice(-40)]
})()

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
// A fast virtual clock for large simulations
// ---------------------------------------------------------------------------------------------------------------

interface Timer {
  readonly at: number
  readonly resume: () => void
  cancelled: boolean
}

/**
 * Runs `effect` on a virtual clock starting at `start`: sleeps are timers that fire when the clock reaches them;
 * between two jumps the real event loop settles (so real promises, e.g. JWT signing, complete). Unlike the
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
    /** Requests in flight over real sockets: while there are some, the clock waits (up to `patience` ms). */
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
      if (options.inFlight !== undefined && options.inFlight.count > 0 && waited++ < (options.patience ?? 1_000)) {
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
