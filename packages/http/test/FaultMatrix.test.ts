/**
 * The fault matrix of docs/targets.md, row by row, for each kind of request (token exchange, GET, create-run POST), over real
 * loopback: the live client → an undici Agent (whose connector can refuse, time out or fail DNS) → a FaultProxy
 * (latency, hang, resets, truncation, slow bodies, refusal) → FakeZapierServer (application faults). Counts come
 * from the fake's ledger. TCP rows run on the real clock with a 300 ms attempt timeout where the fault needs one to
 * end it (hangs and slow bodies) and 10 s elsewhere; application rows run the
 * same sockets under the TestClock (`virtual`), so a 60 s cooldown costs nothing. Every row also checks that no
 * secret the client sent shows in the error, its JSON, `Cause.pretty`, a log line or a span attribute (G14).
 */

import { monitorEventLoopDelay } from "node:perf_hooks"
import { assert, describe, it } from "@effect/vitest"
import {
  ActionRuns,
  ConnectionStore,
  Connections,
  type Domain,
  EmbeddedActions,
  Polling,
  TokenExchange
} from "@effect-zapier/core"
import { FakeZapier, FaultProxy } from "@effect-zapier/testing"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import {
  Attempts,
  type ClientKind,
  type ConnectFault,
  captureLogs,
  captureSpans,
  createUppercase,
  errorSinks,
  keyCanaries,
  leaks,
  Sent,
  FaultStack as Stack,
  type FaultStackOptions as StackOptions,
  faultStack as stack,
  uppercaseAction,
  userOf,
  virtual
} from "./kit.js"

const { Endpoint, Fault, sample } = FakeZapier
const NOW = Date.parse("2026-03-01T12:00:00Z")

type Kind = "token" | "get" | "create"
const kinds: ReadonlyArray<Kind> = ["token", "get", "create"]

/** Every row runs over both HttpClients a partner may pick. */
const clients: ReadonlyArray<ClientKind> = ["undici", "fetch"]

const endpointOf = (kind: Kind) =>
  kind === "token" ? Endpoint.token : kind === "get" ? Endpoint.authentications : Endpoint.createRun

/** The requests of `kind` by `user` that reached the fake (processed or answered with a fault). */
const requestsOf = (kind: Kind, ledger: FakeZapier.Ledger, user: Domain.EndUser) =>
  ledger.requests.filter((r) => r.endpoint === endpointOf(kind) && r.user?.key === user.key)

const runsOf = (ledger: FakeZapier.Ledger, user: Domain.EndUser) => FakeZapier.runsOf(ledger, user).length

const ledger = Effect.flatMap(FakeZapier.FakeZapier, (z) => z.ledger)

/**
 * Gets ready for one request of `kind` (a token for API requests; a fresh action id for a create) and returns
 * it; with `pipelining: 0` every request opens its own connection, so the request is the next connection's.
 */
const prepare = (kind: Kind, user: Domain.EndUser) =>
  Effect.gen(function* () {
    const tokens = yield* TokenExchange.TokenExchange
    if (kind === "token") return tokens.accessToken(user).pipe(Effect.asVoid)
    yield* tokens.accessToken(user)
    if (kind === "get") {
      const connections = yield* Connections.Connections
      return connections.list(user, sample.slack).pipe(Effect.asVoid)
    }
    const action = yield* uppercaseAction(user)
    return createWith(user, action.id)
  })

const createWith = (user: Domain.EndUser, action: Domain.ActionId) =>
  Effect.flatMap(ActionRuns.ActionRuns, (runs) =>
    runs.create(user, { action, connection: null, inputs: { text: "hi" } })
  ).pipe(Effect.asVoid)

/** The stack options of a row: the request of `kind` through the proxy, one connection per request. */
const rowStack = (kind: Kind, extra: StackOptions = {}): StackOptions => ({
  through: kind === "token" ? "token" : "api",
  ...extra,
  agent: { pipelining: 0, ...extra.agent }
})

type StackServices = Layer.Layer.Success<ReturnType<typeof stack>>

/**
 * Runs a row: builds the stack, captures logs and spans, runs `body`, then checks the canaries over every sink
 * (the exits the row returns, every log line, every span name and attribute).
 */
const row = <E>(
  client: ClientKind,
  options: StackOptions,
  body: (logs: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Exit.Exit<unknown, unknown>>, E, StackServices>
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const logs = captureLogs()
    const spans = captureSpans()
    yield* Effect.gen(function* () {
      const exits = yield* body(logs.lines)
      const sent = yield* Sent
      const sinks = [
        ...exits.flatMap(errorSinks),
        ...logs.lines,
        ...spans.spans.flatMap((s) => [s.name, ...[...s.attributes].map(([k, v]) => `${k}=${String(v)}`)])
      ]
      const canaries = [...sent, ...keyCanaries, sample.clientSecret]
      assert.isAbove(sent.size, 0, "the secrets sent were recorded")
      assert.deepStrictEqual(leaks(sinks, canaries), [])
    }).pipe(
      Effect.provide(stack({ ...options, client })),
      Effect.provide(logs.layer),
      Effect.provide(spans.layer),
      Effect.orDie
    )
  })

const failureTag = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  return typeof failure === "object" && failure !== null && "_tag" in failure ? String(failure._tag) : "defect"
}

/**
 * Runs `effect`: its exit, how long it took, and how late this process's event loop ran timers meanwhile (`late`,
 * ms: on a busy machine a timeout cannot fire before the loop gets to it, so upper bounds add it).
 */
const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const loop = monitorEventLoopDelay({ resolution: 10 })
    loop.enable()
    const start = Date.now()
    const exit = yield* Effect.exit(effect)
    const millis = Date.now() - start
    loop.disable()
    return { exit, millis, late: loop.max / 1e6 }
  })

const hostOf = (kind: Kind, st: Stack["Type"]) => (kind === "token" ? st.tokenHost : st.apiHost)

/** The ordinal of the next connection through the proxy. */
const nextConnection = Effect.flatMap(Stack, (st) => Effect.map(st.proxy.stats, (s) => s.connections + 1))

const pathOf = (kind: Kind) =>
  kind === "token" ? "POST /oauth/token" : kind === "get" ? "GET /v2/authentications" : "POST /v2/action-runs/"

/** The client's attempts of `kind` so far (every attempt, sent or not). */
const attemptsOf = (kind: Kind) => Effect.map(Attempts, (a) => a.get(pathOf(kind)) ?? 0)

/** Runs `act` and returns its exit, how long it took and how many attempts it made. */
const attempt = <A, E, R>(kind: Kind, act: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const before = yield* attemptsOf(kind)
    const { exit, millis, late } = yield* elapsed(act)
    return { exit, millis, late, attempts: (yield* attemptsOf(kind)) - before }
  })

const sameKind = (kind: Kind, l: FakeZapier.Ledger, user: Domain.EndUser, expected: number) =>
  assert.strictEqual(requestsOf(kind, l, user).length, expected, `${kind} requests in the ledger`)

// ---------------------------------------------------------------------------------------------------------------
// TCP rows (real time)
// ---------------------------------------------------------------------------------------------------------------

/**
 * The attempt timeout of rows whose fault ends on its own (refused, DNS, resets, the server down, a truncated body,
 * which the proxy ends by closing the socket): the good attempt that follows the fault must not time out, and at
 * 300 ms a busy machine's event loop, stalled that long during a good attempt, would add a second fault (one more
 * attempt than the row counts).
 */
const notTimedOut = { requestTimeout: "10 seconds" } as const

describe.each(clients)("fault matrix, TCP faults (real loopback, 300 ms attempt timeout) over %s", (client) => {
  for (const kind of kinds) {
    describe(kind, () => {
      for (const fault of ["refused", "connect-timeout", "dns"] satisfies ReadonlyArray<ConnectFault>) {
        it.live(`${fault} once: provably not sent, retried, one ${kind} in the ledger`, () =>
          row(
            client,
            rowStack(kind, {
              ...(fault === "dns" && kind !== "token" ? { apiHost: "localhost" } : {}),
              // undici's connect timeout fires within about a second (its timers tick every ~0.5 s).
              extra: fault === "connect-timeout" ? { requestTimeout: "3 seconds" } : notTimedOut
            }),
            () =>
              Effect.gen(function* () {
                const st = yield* Stack
                const user = userOf(`${kind}-${fault}`)
                const act = yield* prepare(kind, user)
                const host = hostOf(kind, st)
                const before = st.connector.attempts(host)
                st.connector.plan(host, fault)
                const { exit, attempts } = yield* attempt(kind, act)
                assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
                assert.strictEqual(st.connector.attempts(host) - before, 2)
                assert.strictEqual(attempts, 2)
                const l = yield* ledger
                sameKind(kind, l, user, 1)
                if (kind === "create") assert.strictEqual(runsOf(l, user), 1)
                return [exit]
              })
          )
        )
      }

      it.live("server down (every connection refused): ZapierUnavailable, never ambiguous, nothing reached it", () =>
        row(client, rowStack(kind, { extra: notTimedOut }), () =>
          Effect.gen(function* () {
            const st = yield* Stack
            const user = userOf(`${kind}-down`)
            const act = yield* prepare(kind, user)
            yield* st.proxy.setFault(FaultProxy.refuse)
            const { exit, attempts } = yield* attempt(kind, act)
            yield* st.proxy.clear
            assert.strictEqual(failureTag(exit), "ZapierUnavailable")
            // Every attempt was provably unsent, so even the create used all three.
            assert.strictEqual(attempts, 3)
            const l = yield* ledger
            sameKind(kind, l, user, 0)
            return [exit]
          })
        )
      )

      it.live("latency 100 ± 50 ms (below the timeout): no retry, the answer only comes later", () =>
        row(client, rowStack(kind, { extra: { requestTimeout: "2 seconds" } }), () =>
          Effect.gen(function* () {
            const st = yield* Stack
            const user = userOf(`${kind}-latency`)
            const act = yield* prepare(kind, user)
            const target = yield* nextConnection
            yield* st.proxy.setFault(FaultProxy.latency({ response: { delay: "100 millis", jitter: "50 millis" } }), {
              connection: target
            })
            const { exit, millis, attempts } = yield* attempt(kind, act)
            assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
            assert.isAtLeast(millis, 45)
            assert.strictEqual(attempts, 1)
            sameKind(kind, yield* ledger, user, 1)
            return [exit]
          })
        )
      )

      if (kind === "create") {
        it.live("hang after the server processed it: attempt timeout → RunOutcomeUnknown, no retry, 1 run", () =>
          row(client, rowStack(kind), () =>
            Effect.gen(function* () {
              const st = yield* Stack
              const user = userOf("create-hang")
              const act = yield* prepare(kind, user)
              const target = yield* nextConnection
              yield* st.proxy.setFault(FaultProxy.hang({ forwardRequest: true }), { connection: target })
              const { exit, millis, late, attempts } = yield* attempt(kind, act)
              assert.strictEqual(failureTag(exit), "RunOutcomeUnknown")
              // G13: within the attempt timeout and a margin (plus however late the event loop was meanwhile).
              assert.isAtLeast(millis, 295)
              assert.isBelow(millis, 300 + 200 + late)
              assert.strictEqual(attempts, 1)
              const l = yield* ledger
              sameKind(kind, l, user, 1)
              assert.strictEqual(runsOf(l, user), 1)
              return [exit]
            })
          )
        )
        it.live("hang before the server saw it: still RunOutcomeUnknown (the client cannot know), 0 runs", () =>
          row(client, rowStack(kind), () =>
            Effect.gen(function* () {
              const st = yield* Stack
              const user = userOf("create-hang-unsent")
              const act = yield* prepare(kind, user)
              const target = yield* nextConnection
              yield* st.proxy.setFault(FaultProxy.hang(), { connection: target })
              const { exit, attempts } = yield* attempt(kind, act)
              assert.strictEqual(failureTag(exit), "RunOutcomeUnknown")
              assert.strictEqual(attempts, 1)
              const l = yield* ledger
              sameKind(kind, l, user, 0)
              assert.strictEqual(runsOf(l, user), 0)
              return [exit]
            })
          )
        )
      } else {
        it.live("hang: the attempt times out (300 ms) and is retried on a new connection", () =>
          row(client, rowStack(kind), () =>
            Effect.gen(function* () {
              const st = yield* Stack
              const user = userOf(`${kind}-hang`)
              const act = yield* prepare(kind, user)
              const target = yield* nextConnection
              yield* st.proxy.setFault(FaultProxy.hang(), { connection: target })
              const { exit, millis, late, attempts } = yield* attempt(kind, act)
              assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
              assert.isAtLeast(millis, 295)
              assert.isBelow(millis, 300 + 250 + late)
              assert.strictEqual(attempts, 2)
              sameKind(kind, yield* ledger, user, 1)
              return [exit]
            })
          )
        )
      }

      it.live(
        kind === "create"
          ? "reset before the request is read: ambiguous to the client → RunOutcomeUnknown, no retry, 0 runs"
          : "reset before the request is read: retried",
        () =>
          row(client, rowStack(kind, { extra: notTimedOut }), () =>
            Effect.gen(function* () {
              const st = yield* Stack
              const user = userOf(`${kind}-reset-before`)
              const act = yield* prepare(kind, user)
              const target = yield* nextConnection
              yield* st.proxy.setFault(FaultProxy.resetBeforeRequest, { connection: target })
              const { exit, attempts } = yield* attempt(kind, act)
              const l = yield* ledger
              if (kind === "create") {
                assert.strictEqual(failureTag(exit), "RunOutcomeUnknown")
                assert.strictEqual(attempts, 1)
                sameKind(kind, l, user, 0)
                assert.strictEqual(runsOf(l, user), 0)
              } else {
                assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
                assert.strictEqual(attempts, 2)
                sameKind(kind, l, user, 1)
              }
              return [exit]
            })
          )
      )

      for (const [name, fault] of [
        ["reset after the server commits", () => Effect.succeed(FaultProxy.resetAfterRequest)],
        [
          "truncated body (Content-Length above the bytes sent)",
          // The size of the same answer, less 5 bytes: the headers arrive, the body does not (the socket closes).
          (size: number, probeAttempts: number) => {
            // Retried, the probe counts more than one answer: truncated to that, the whole answer would pass.
            assert.strictEqual(probeAttempts, 1, "the probe's attempts (its size is one answer's)")
            return Effect.succeed(FaultProxy.truncate(size - 5))
          }
        ],
        [
          // 1 KB/s against a 30 s timeout, scaled to the 300 ms one.
          "slow body (200 B/s): the body outlasts the attempt timeout",
          () => Effect.succeed(FaultProxy.slowBody(200))
        ]
      ] as const) {
        it.live(kind === "create" ? `${name}: RunOutcomeUnknown, no retry, exactly 1 run` : `${name}: retried`, () =>
          // A reset or a truncated body ends on its own; a slow body only through the attempt timeout (300 ms).
          row(client, rowStack(kind, name.startsWith("slow") ? {} : { extra: notTimedOut }), () =>
            Effect.gen(function* () {
              const st = yield* Stack
              // The same request once, untouched, for the size of its answer.
              const probe = userOf(`${kind}-probe`)
              const probeAct = yield* prepare(kind, probe)
              const sizeBefore = (yield* st.proxy.stats).bytesToClient
              const probeBefore = yield* attemptsOf(kind)
              yield* probeAct
              const size = (yield* st.proxy.stats).bytesToClient - sizeBefore
              const probeAttempts = (yield* attemptsOf(kind)) - probeBefore
              const user = userOf(`${kind}-${name.split(" ")[0]}`)
              const act = yield* prepare(kind, user)
              const target = yield* nextConnection
              yield* st.proxy.setFault(yield* fault(size, probeAttempts), { connection: target })
              const { exit, attempts } = yield* attempt(kind, act)
              const l = yield* ledger
              if (kind === "create") {
                assert.strictEqual(failureTag(exit), "RunOutcomeUnknown")
                assert.strictEqual(attempts, 1)
                sameKind(kind, l, user, 1)
                assert.strictEqual(runsOf(l, user), 1)
              } else {
                assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
                assert.strictEqual(attempts, 2)
                // The first attempt was processed too (an extra token or read is harmless).
                sameKind(kind, l, user, 2)
              }
              return [exit]
            })
          )
        )
      }
    })
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Application rows (the fake server's faults; the TestClock moves while no request is in flight)
// ---------------------------------------------------------------------------------------------------------------

const appStack = (extra: StackOptions = {}): StackOptions => ({
  through: "none",
  counting: true,
  ...extra,
  extra: { requestTimeout: "30 seconds", ...extra.extra }
})

/** The `at` (model clock) of `user`'s requests of `kind`. */
const timesOf = (kind: Kind, l: FakeZapier.Ledger, user: Domain.EndUser) => requestsOf(kind, l, user).map((r) => r.at)

const inject = (rule: FakeZapier.FaultRule) => Effect.flatMap(FakeZapier.FakeZapier, (z) => z.injectFault(rule))

describe.each(clients)(
  "fault matrix, application faults (FakeZapierServer over loopback, TestClock) over %s",
  (client) => {
    for (const kind of kinds) {
      describe(kind, () => {
        it.effect("500 / 502 / 504 bursts of k = 1..5", () =>
          row(client, appStack(), () =>
            Effect.gen(function* () {
              yield* TestClock.setTime(NOW)
              const exits: Array<Exit.Exit<unknown, unknown>> = []
              for (let k = 1; k <= 5; k++) {
                const user = userOf(`${kind}-burst-${k}`)
                const act = yield* prepare(kind, user)
                for (let i = 0; i < k; i++) {
                  yield* inject({
                    endpoint: endpointOf(kind),
                    user,
                    skip: i,
                    // On create the run is made first: the ambiguous case.
                    fault: Fault.status([500, 502, 504][i % 3]!, { afterCommit: kind === "create" })
                  })
                }
                const exit = yield* virtual(act)
                exits.push(exit)
                const l = yield* ledger
                if (kind === "create") {
                  assert.strictEqual(failureTag(exit), "RunOutcomeUnknown", `k=${k}`)
                  sameKind(kind, l, user, 1)
                  assert.strictEqual(runsOf(l, user), 1)
                } else if (k < 3) {
                  assert.isTrue(Exit.isSuccess(exit), `k=${k}: ${failureTag(exit)}`)
                  sameKind(kind, l, user, k + 1)
                } else {
                  assert.strictEqual(failureTag(exit), "ZapierUnavailable", `k=${k}`)
                  sameKind(kind, l, user, 3)
                }
              }
              return exits
            })
          )
        )

        it.effect(
          kind === "create"
            ? "503 with Retry-After, not processed: ambiguous to the client (undocumented) → RunOutcomeUnknown"
            : "503 with Retry-After, not processed: retried after the hint",
          () =>
            row(client, appStack(), () =>
              Effect.gen(function* () {
                yield* TestClock.setTime(NOW)
                const user = userOf(`${kind}-503`)
                const act = yield* prepare(kind, user)
                yield* inject({
                  endpoint: endpointOf(kind),
                  user,
                  fault: Fault.status(503, { retryAfter: "7 seconds" })
                })
                const exit = yield* virtual(act)
                const l = yield* ledger
                if (kind === "create") {
                  assert.strictEqual(failureTag(exit), "RunOutcomeUnknown")
                  sameKind(kind, l, user, 1)
                  assert.strictEqual(runsOf(l, user), 0)
                } else {
                  assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
                  const [first, second] = timesOf(kind, l, user)
                  assert.isAtLeast(second! - first!, 7_000)
                }
                return [exit]
              })
            )
        )

        for (const [name, fault, hint] of [
          ["delta seconds", Fault.status(429, { retryAfter: "5 seconds" }), 5_000],
          ["an HTTP-date", Fault.status(429, { retryAfter: "8 seconds", retryAfterFormat: "http-date" }), 8_000],
          ["missing (Zapier's 60 s cooldown)", Fault.status(429), 60_000]
        ] as const) {
          it.effect(
            `429 with Retry-After as ${name}: ${kind === "token" ? "retried after it" : "the shared budget pauses, then retried"}`,
            () =>
              row(client, appStack(), () =>
                Effect.gen(function* () {
                  yield* TestClock.setTime(NOW)
                  const user = userOf(`${kind}-429`)
                  const other = userOf(`${kind}-429-other`)
                  const act = yield* prepare(kind, user)
                  const otherAct = yield* prepare("get", other)
                  yield* inject({ endpoint: endpointOf(kind), user, fault })
                  // Another user's GET, 1 s after the 429.
                  const exits = yield* virtual(
                    Effect.all([Effect.exit(act), Effect.exit(Effect.zipRight(Effect.sleep("1 second"), otherAct))], {
                      concurrency: 2
                    })
                  )
                  assert.isTrue(Exit.isSuccess(exits))
                  const [exit, otherExit] = Exit.isSuccess(exits) ? exits.value : []
                  assert.isTrue(exit !== undefined && Exit.isSuccess(exit), `${exit && failureTag(exit)}`)
                  assert.isTrue(otherExit !== undefined && Exit.isSuccess(otherExit))
                  const l = yield* ledger
                  const [limited, retried] = timesOf(kind, l, user)
                  assert.isAtLeast(retried! - limited!, hint)
                  const otherAt = timesOf("get", l, other)[0]!
                  if (kind === "token") {
                    // The token endpoint is not behind the API's budget.
                    assert.isBelow(otherAt - limited!, hint)
                  } else {
                    assert.isAtLeast(otherAt - limited!, hint)
                  }
                  if (kind === "create") assert.strictEqual(runsOf(l, user), 1)
                  return [exit!, otherExit!]
                })
              )
          )
        }

        it.effect("429 with a huge Retry-After: fails fast with RateLimited {retryAfter}", () =>
          row(client, appStack(), () =>
            Effect.gen(function* () {
              const user = userOf(`${kind}-429-huge`)
              const act = yield* prepare(kind, user)
              yield* inject({ endpoint: endpointOf(kind), user, fault: Fault.status(429, { retryAfter: "1 hour" }) })
              const exit = yield* virtual(act)
              const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
              assert.strictEqual(error?._tag, "RateLimited")
              if (error?._tag === "RateLimited") assert.isTrue(Duration.equals(error.retryAfter, Duration.hours(1)))
              const l = yield* ledger
              sameKind(kind, l, user, 1)
              if (kind === "create") assert.strictEqual(runsOf(l, user), 0)
              return [exit]
            })
          )
        )

        for (const status of [302, 307]) {
          it.effect(
            `${status} to another origin: never followed (${kind === "token" ? "TokenExchangeFailed" : kind === "get" ? "InvalidResponse" : "RunOutcomeUnknown, 0 runs"}), nothing sent there`,
            () =>
              row(client, appStack(), () =>
                Effect.gen(function* () {
                  const st = yield* Stack
                  const user = userOf(`${kind}-${status}`)
                  const act = yield* prepare(kind, user)
                  // The same fake server under another origin (the other host name): followed, it would answer.
                  const host = kind === "token" ? st.apiHost : st.tokenHost
                  const elsewhere = new URL(pathOf(kind).split(" ")[1]!, `http://${host}:${st.server.port}`)
                  yield* inject({
                    endpoint: endpointOf(kind),
                    user,
                    fault: Fault.respond("", { status, headers: { location: elsewhere.href }, afterCommit: false })
                  })
                  const before = (yield* ledger).requests.length
                  const exit = yield* virtual(act)
                  const error = Exit.isFailure(exit)
                    ? Option.getOrUndefined(Cause.failureOption(exit.cause))
                    : undefined
                  const l = yield* ledger
                  // One request, the redirected one: nothing (no token, no secret) went to the Location.
                  assert.strictEqual(l.requests.length - before, 1)
                  if (kind === "token") {
                    assert.strictEqual(error?._tag, "TokenExchangeFailed")
                    if (error?._tag === "TokenExchangeFailed") assert.strictEqual(error.error, "redirect")
                  } else if (kind === "get") {
                    assert.strictEqual(error?._tag, "InvalidResponse")
                    if (error?._tag === "InvalidResponse") assert.strictEqual(error.status, status)
                  } else {
                    // Whether a run exists behind a redirect cannot be known: never replayed.
                    assert.strictEqual(error?._tag, "RunOutcomeUnknown")
                    assert.strictEqual(runsOf(l, user), 0)
                  }
                  return [exit]
                })
              )
          )
        }

        it.effect(
          kind === "token"
            ? "malformed JSON, an HTML page, an empty 200: retried once, then InvalidResponse"
            : kind === "get"
              ? "malformed JSON, an HTML page, an empty 200: retried once, then InvalidResponse"
              : "malformed JSON, an HTML page, an empty 200: RunOutcomeUnknown, no retry, 1 run",
          () =>
            row(client, appStack(), () =>
              Effect.gen(function* () {
                const exits: Array<Exit.Exit<unknown, unknown>> = []
                for (const [name, fault] of [
                  ["malformed", Fault.malformedBody],
                  [
                    "html",
                    Fault.respond("<!doctype html><html><body>Oops</body></html>", { contentType: "text/html" })
                  ],
                  ["empty", Fault.respond("")]
                ] as const) {
                  const user = userOf(`${kind}-body-${name}`)
                  const act = yield* prepare(kind, user)
                  yield* inject({ endpoint: endpointOf(kind), user, times: Number.POSITIVE_INFINITY, fault })
                  const exit = yield* virtual(act)
                  exits.push(exit)
                  const l = yield* ledger
                  if (kind === "create") {
                    assert.strictEqual(failureTag(exit), "RunOutcomeUnknown", name)
                    sameKind(kind, l, user, 1)
                    assert.strictEqual(runsOf(l, user), 1)
                  } else {
                    assert.strictEqual(failureTag(exit), "InvalidResponse", name)
                    sameKind(kind, l, user, 2)
                  }
                }
                return exits
              })
            )
        )

        if (kind !== "token") {
          it.effect("401 (token revoked): one refresh and one retry", () =>
            row(client, appStack(), () =>
              Effect.gen(function* () {
                const zapier = yield* FakeZapier.FakeZapier
                const user = userOf(`${kind}-401`)
                const act = yield* prepare(kind, user)
                yield* zapier.revokeTokens(user)
                const exit = yield* virtual(act)
                assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
                const l = yield* ledger
                // (The 401 is not attributed to a user: the fake did not accept the token.)
                const statuses = l.requests.filter((r) => r.endpoint === endpointOf(kind)).map((r) => r.status)
                assert.deepStrictEqual(statuses.slice(-2), [401, 200])
                assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 2)
                if (kind === "create") assert.strictEqual(runsOf(l, user), 1)
                return [exit]
              })
            )
          )
        }
      })
    }

    it.effect("token: 400 invalid_grant (claims the fake refuses): TokenExchangeFailed at once, no retry", () =>
      row(client, appStack({ extra: { issuer: "https://not-the-registered-issuer.example" } }), () =>
        Effect.gen(function* () {
          const user = userOf("token-invalid-grant")
          const act = yield* prepare("token", user)
          const exit = yield* virtual(act)
          const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
          assert.strictEqual(error?._tag, "TokenExchangeFailed")
          if (error?._tag === "TokenExchangeFailed") {
            assert.strictEqual(error.error, "invalid_grant")
            assert.include(error.description ?? "", "iss")
          }
          // (Refused before the fake knew the user: count every token request.)
          assert.strictEqual((yield* ledger).requests.filter((r) => r.endpoint === Endpoint.token).length, 1)
          return [exit]
        })
      )
    )

    for (const [skew, reason] of [
      [5 * 60_000, '"nbf" claim'],
      [-6 * 60_000, "expired"]
    ] as const) {
      it.effect(
        `token: the partner's clock ${skew > 0 ? "5 min ahead" : "6 min behind"}: a clear TokenExchangeFailed`,
        () =>
          row(client, appStack(), () =>
            Effect.gen(function* () {
              yield* TestClock.setTime(NOW)
              const user = userOf(`token-skew-${skew}`)
              const act = yield* prepare("token", user)
              const clock = yield* Effect.clock
              const exit = yield* virtual(Effect.withClock(act, skewed(clock, skew)))
              const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
              assert.strictEqual(error?._tag, "TokenExchangeFailed")
              if (error?._tag === "TokenExchangeFailed") {
                assert.strictEqual(error.error, "invalid_grant")
                assert.include(error.description ?? "", reason)
              }
              assert.strictEqual((yield* ledger).requests.filter((r) => r.endpoint === Endpoint.token).length, 1)
              return [exit]
            })
          )
      )
    }

    it.effect("token: a redirect from the token endpoint is never followed over the wire (G14)", () =>
      row(client, appStack(), () =>
        Effect.gen(function* () {
          const st = yield* Stack
          const user = userOf("token-redirect")
          const act = yield* prepare("token", user)
          yield* inject({
            endpoint: Endpoint.token,
            user,
            fault: Fault.respond("", {
              status: 307,
              headers: { location: `${st.server.url}/oauth/token?followed=1` },
              afterCommit: false
            })
          })
          const exit = yield* virtual(act)
          const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
          assert.strictEqual(error?._tag, "TokenExchangeFailed")
          if (error?._tag === "TokenExchangeFailed") assert.strictEqual(error.error, "redirect")
          // One token request: the client secret never went to the Location.
          assert.strictEqual((yield* ledger).requests.filter((r) => r.endpoint === Endpoint.token).length, 1)
          return [exit]
        })
      )
    )

    it.effect("GET run: schema drift (an unknown status, extra fields) is pending, logged once", () =>
      row(client, appStack(), (logs) =>
        Effect.gen(function* () {
          const user = userOf("drift")
          yield* prepare("token", user)
          const runId = yield* createUppercase(user)
          const drifted = JSON.stringify({
            data: { type: "run", status: "paused", results: [], errors: [], eta_seconds: 5, shard: "b" },
            meta: { extra: true }
          })
          yield* inject({ endpoint: Endpoint.getRun, user, times: 2, fault: Fault.respond(drifted) })
          const runs = yield* ActionRuns.ActionRuns
          const first = yield* runs.get(user, runId)
          const second = yield* runs.get(user, runId)
          for (const state of [first, second]) {
            assert.strictEqual(state._tag, "RunPending")
            if (state._tag === "RunPending") assert.strictEqual(state.status, "paused")
          }
          assert.strictEqual(logs.filter((l) => l.includes("does not know")).length, 1)
          return []
        })
      )
    )

    const embedded = EmbeddedActions.layer.pipe(Layer.provide(ConnectionStore.layerMemory))

    it.effect("404 just after create: retried for up to 5 s (eventual consistency), then the result", () =>
      row(client, appStack(), () =>
        Effect.gen(function* () {
          yield* TestClock.setTime(NOW)
          const user = userOf("404-then-found")
          yield* prepare("token", user)
          const runId = yield* createUppercase(user)
          yield* inject({ endpoint: Endpoint.getRun, user, times: 2, fault: Fault.status(404) })
          const exit = yield* virtual(Effect.flatMap(EmbeddedActions.EmbeddedActions, (ea) => ea.await(user, runId)))
          assert.isTrue(Exit.isSuccess(exit), `${failureTag(exit)}`)
          const polls = (yield* ledger).requests.filter((r) => r.endpoint === Endpoint.getRun)
          assert.deepStrictEqual(
            polls.slice(0, 2).map((r) => r.status),
            [404, 404]
          )
          return [exit]
        }).pipe(Effect.provide(embedded))
      )
    )

    it.effect("404 that lasts: NotFound once the 5 s grace is over", () =>
      row(client, appStack(), () =>
        Effect.gen(function* () {
          yield* TestClock.setTime(NOW)
          const user = userOf("404-forever")
          yield* prepare("token", user)
          const runId = yield* createUppercase(user)
          const created = yield* Clock.currentTimeMillis
          yield* inject({ endpoint: Endpoint.getRun, user, times: Number.POSITIVE_INFINITY, fault: Fault.status(404) })
          const exit = yield* virtual(Effect.flatMap(EmbeddedActions.EmbeddedActions, (ea) => ea.await(user, runId)))
          assert.strictEqual(failureTag(exit), "NotFound")
          const polls = (yield* ledger).requests.filter((r) => r.endpoint === Endpoint.getRun)
          assert.isAtLeast(polls.at(-1)!.at - created, Duration.toMillis(Polling.defaults.notFoundGrace))
          assert.isAtMost(polls.length, 8)
          return [exit]
        }).pipe(Effect.provide(embedded))
      )
    )

    it.effect("a run stuck pending: PollTimeout {lastStatus} at the overall deadline, GETs within the schedule", () =>
      row(client, appStack(), () =>
        Effect.gen(function* () {
          yield* TestClock.setTime(NOW)
          const zapier = yield* FakeZapier.FakeZapier
          yield* zapier.scriptRuns(sample.formatter, sample.uppercase, FakeZapier.RunScript.pending)
          const user = userOf("stuck")
          yield* prepare("token", user)
          const runId = yield* createUppercase(user)
          const start = yield* Clock.currentTimeMillis
          const exit = yield* virtual(
            Effect.flatMap(EmbeddedActions.EmbeddedActions, (ea) => ea.await(user, runId, { timeout: "30 seconds" }))
          )
          const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
          assert.strictEqual(error?._tag, "PollTimeout")
          if (error?._tag === "PollTimeout") assert.strictEqual(error.lastStatus, "waiting")
          assert.strictEqual((yield* Clock.currentTimeMillis) - start, 30_000)
          // 0.5 s ×1.5 capped at 5 s finds ~10 polls in 30 s; ±20 % jitter.
          const polls = (yield* ledger).requests.filter((r) => r.endpoint === Endpoint.getRun).length
          assert.isAtLeast(polls, 7)
          assert.isAtMost(polls, 13)
          return [exit]
        }).pipe(Effect.provide(embedded))
      )
    )

    it.effect("a caller interrupted mid-exchange: the other waiters get the token, the cache is not poisoned", () =>
      row(client, appStack(), () =>
        Effect.gen(function* () {
          const user = userOf("interrupted-exchange")
          yield* inject({ endpoint: Endpoint.token, user, fault: Fault.delay("2 seconds") })
          const tokens = yield* TokenExchange.TokenExchange
          const exit = yield* virtual(
            Effect.gen(function* () {
              const a = yield* Effect.fork(tokens.accessToken(user))
              const b = yield* Effect.fork(tokens.accessToken(user))
              yield* Effect.sleep("500 millis")
              yield* Fiber.interrupt(a)
              const token = yield* Fiber.join(b)
              const again = yield* tokens.accessToken(user)
              return token === again
            })
          )
          assert.isTrue(Exit.isSuccess(exit) && exit.value)
          assert.strictEqual(FakeZapier.exchangesOf(yield* ledger, user, "access").length, 1)
          return [exit]
        })
      )
    )
  }
)

/** A clock `offset` ms off `clock` (sleeps unchanged). */
const skewed = (clock: Clock.Clock, offset: number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis() + offset,
  currentTimeMillis: Effect.map(clock.currentTimeMillis, (t) => t + offset),
  unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos() + BigInt(offset) * 1_000_000n,
  currentTimeNanos: Effect.map(clock.currentTimeNanos, (t) => t + BigInt(offset) * 1_000_000n),
  sleep: (d) => clock.sleep(d)
})
