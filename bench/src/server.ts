/**
 * The fake Zapier server of the HTTP scenarios, in a child process (started by `child.ts`), so that
 * `process.cpuUsage()` in the benchmark process counts the client's CPU only.
 *
 * Argument: the JSON {@link Config}. It answers over the IPC channel: first `{type: "ready", ...urls}`, then one
 * reply per request (`summary`, `reset`, `tokenDelay`, `clearFaults`). It exits when the parent disconnects.
 *
 * With `timeScale` > 1 the fake's clock runs that many times faster than real time from `clockOrigin` on (its
 * rate-limit window, its cooldown and its token lifetimes shrink alike), so a per-minute budget plays out in seconds.
 */
import { PerformanceObserver } from "node:perf_hooks"
import { FakeZapier, FakeZapierServer } from "@effect-zapier/testing"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as ScaledClock from "./clock.js"
import * as Protocol from "./protocol.js"
import * as Seed from "./seed.js"

/** Milliseconds this process has spent in garbage collection since it started. */
let gcMillis = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMillis += entry.duration
}).observe({ entryTypes: ["gc"] })

/** Mean ms from each run's create to its first read answered. */
const firstReadMillis = (ledger: FakeZapier.Ledger): number => {
  const created = new Map<string, number>()
  for (const r of ledger.runs) created.set(r.runId, r.at)
  let total = 0
  let n = 0
  for (const p of ledger.polls) {
    const at = created.get(p.runId)
    if (at === undefined) continue
    created.delete(p.runId)
    total += p.at - at
    n++
  }
  return n === 0 ? 0 : total / n
}

const summarize = (ledger: FakeZapier.Ledger): Protocol.Summary => {
  const cpu = process.cpuUsage()
  const statuses: Record<string, number> = {}
  for (const r of ledger.requests) statuses[r.status] = (statuses[r.status] ?? 0) + 1
  return {
    requests: ledger.requests.length,
    byEndpoint: FakeZapier.requestsByEndpoint(ledger),
    statuses,
    accessExchanges: ledger.exchanges.filter((e) => e.kind === "access").length,
    exchangeUsers: new Set(ledger.exchanges.map((e) => `${e.user.tenantId}/${e.user.userId}`)).size,
    runs: ledger.runs.length,
    polls: ledger.polls.length,
    firstReadMillis: firstReadMillis(ledger),
    cpuMicros: cpu.user + cpu.system,
    gcMillis
  }
}

const serve = (config: Protocol.ServerConfig) =>
  Effect.gen(function* () {
    const server = yield* FakeZapierServer.FakeZapierServer
    const zapier = yield* FakeZapier.FakeZapier
    const runtime = yield* Effect.runtime<never>()
    const answer = (request: Protocol.Request): Effect.Effect<Protocol.Reply, FakeZapier.InvalidControl> => {
      switch (request.op) {
        case "summary":
          return Effect.map(zapier.ledger, (ledger) => ({ id: request.id, summary: summarize(ledger) }))
        case "reset":
          return Effect.as(zapier.resetLedger, { id: request.id })
        case "tokenDelay":
          return Effect.as(
            zapier.injectFault({
              endpoint: FakeZapier.Endpoint.token,
              times: Number.POSITIVE_INFINITY,
              fault: FakeZapier.Fault.delay(Duration.millis(request.millis * config.timeScale))
            }),
            { id: request.id }
          )
        case "clearFaults":
          return Effect.as(zapier.clearFaults, { id: request.id })
      }
    }
    const onMessage = (message: unknown) =>
      Runtime.runFork(runtime)(
        Schema.decodeUnknown(Protocol.Request)(message).pipe(
          Effect.flatMap(answer),
          Effect.flatMap((reply) => Effect.sync(() => process.send?.(reply))),
          Effect.catchAll((e) => Effect.sync(() => process.send?.({ id: -1, error: String(e) })))
        )
      )
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("message", onMessage)),
      () => Effect.sync(() => process.off("message", onMessage))
    )
    yield* Effect.sync(() =>
      process.send?.({
        type: "ready",
        url: server.url,
        apiUrl: server.apiUrl,
        tokenUrl: server.tokenUrl,
        connectUrl: server.connectUrl
      })
    )
    yield* Effect.async<void>((resume) => {
      process.once("disconnect", () => resume(Effect.void))
    })
  })

const main = Effect.gen(function* () {
  const config = yield* Schema.decodeUnknown(Protocol.ServerConfigJson)(process.argv[2] ?? "")
  yield* serve(config).pipe(
    Effect.scoped,
    Effect.provide(
      FakeZapierServer.layer({
        seed: Seed.seed(config.users, config.keys),
        accessTokenTtl: Duration.seconds(config.accessTokenTtlSeconds),
        ...(config.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: config.rateLimitPerMinute } : {})
      })
    ),
    Effect.withClock(config.timeScale === 1 ? Clock.make() : ScaledClock.scaled(config.timeScale, config.clockOrigin))
  )
})

Effect.runPromiseExit(main).then((exit) => {
  if (exit._tag === "Failure") process.stderr.write(`bench server failed: ${Cause.pretty(exit.cause)}\n`)
  process.exit(exit._tag === "Failure" ? 1 : 0)
})
