/**
 * 4. The whole flow, and 5. the flow inside a rate budget.
 *
 * Every run is `EmbeddedActions.run` (the stored connection, verified within the caching policy's `connectionTtl`
 * so not listed again; a fresh action id; create; poll) of an action scripted `RunScript.succeed(0)`: the run is
 * finished when it is created, so its first poll finds it done. The default policy places that poll: the action's
 * first runs (the warm-up's) on the fixed schedule (500 ms ± 20 %), later ones where its runs were seen to end, which
 * for these comes down, window of runs after window, to a few times what a read adds to its planned time before
 * its answer (the timer's lateness, the round trip); the figure includes that learning, from the warm-up on.
 * `concurrency` workers each loop over runs for `millis`; the runs in flight then finish (flow) or are cut off
 * (budget). The fake's ledger counts the requests; `process.cpuUsage()` on each side gives the CPU per run of the
 * client (this process) and of the fake (its child process), which tells which of the two bounds the flow.
 *
 * Flow: token and connection warmed (one run per user first), the fake's rate limit off, the client's rate
 * limiting off. Budget: the fake enforces `limitPerMinute` on `/v2` requests with a 60 s cooldown after a 429, and
 * both the fake and the client run on a clock `timeScale` times faster than real time (same origin), so the
 * budget, the `Retry-After`, the polling schedule and the token lifetimes keep their shape while a minute passes
 * in 60 / timeScale seconds.
 */
import { PerformanceObserver } from "node:perf_hooks"
import { EmbeddedActions, TokenExchange } from "@effect-zapier/core"
import { RateLimiter, ZapierHttp } from "@effect-zapier/http"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Child from "./child.js"
import * as Clients from "./clients.js"
import * as ScaledClock from "./clock.js"
import type * as Protocol from "./protocol.js"
import * as Seed from "./seed.js"

export const runScript = "RunScript.succeed(0): finished when created, the first poll finds it done"

interface Workload {
  readonly concurrency: number
  readonly users: number
  readonly millis: number
}

interface Measured {
  readonly completed: number
  /** When each run completed, in real ms from the start. */
  readonly completions: ReadonlyArray<number>
  readonly failures: Readonly<Record<string, number>>
  /** Real seconds from the start to the last run counted. */
  readonly seconds: number
}

/** `concurrency` workers loop over `run` until `millis` have passed; in-flight runs finish (or are cut off). */
const workers = (workload: Workload, drain: boolean) =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    let completed = 0
    const completions: Array<number> = []
    const failures: Record<string, number> = {}
    const start = performance.now()
    const deadline = start + workload.millis
    // The end users are made once, as a partner's server has its user at hand: not counted in the client's CPU.
    const users = Array.from({ length: workload.users }, (_, i) => Seed.user(i))
    const worker = (w: number) =>
      Effect.gen(function* () {
        const user = users[w % workload.users]!
        while (performance.now() < deadline) {
          const outcome = yield* Effect.either(actions.run({ user, app: Seed.app, action: Seed.action, inputs: { w } }))
          if (performance.now() > deadline && !drain) return
          if (outcome._tag === "Right") {
            completed++
            completions.push(performance.now() - start)
          } else failures[outcome.left._tag] = (failures[outcome.left._tag] ?? 0) + 1
        }
      })
    const all = Effect.forEach(Array.from({ length: workload.concurrency }), (_, w) => worker(w), {
      concurrency: "unbounded",
      discard: true
    })
    yield* drain ? all : cutOff(all, workload)
    const seconds = drain ? (performance.now() - start) / 1000 : workload.millis / 1000
    return { completed, completions, failures, seconds } satisfies Measured
  })

/**
 * Runs `all` and interrupts it at the deadline (runs still in flight then are not counted). The deadline is real
 * time, whatever clock the workers run on.
 */
const cutOff = <A, E, R>(all: Effect.Effect<A, E, R>, workload: Workload) =>
  Effect.raceFirst(
    Effect.asVoid(all),
    Effect.async<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), workload.millis + 50)
      return Effect.sync(() => clearTimeout(timer))
    })
  )

/** One run per user: exchanges the tokens and stores the connections. */
const warm = (users: number) =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    yield* Effect.forEach(
      Array.from({ length: users }),
      (_, i) => actions.run({ user: Seed.user(i), app: Seed.app, action: Seed.action, inputs: { warm: true } }),
      { concurrency: "unbounded", discard: true }
    )
  })

/** This process's CPU and garbage-collection time from now until `stop`. */
const clientUsage = Effect.sync(() => {
  let gcMillis = 0
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMillis += entry.duration
  })
  observer.observe({ entryTypes: ["gc"] })
  const start = process.cpuUsage()
  return {
    stop: Effect.sync(() => {
      const cpu = process.cpuUsage(start)
      observer.disconnect()
      return { cpuMicros: cpu.user + cpu.system, gcMillis }
    })
  }
})

export interface FlowOptions extends Workload {}

/** One measurement of the flow. */
export interface FlowRow {
  readonly runsPerSec: number
  readonly requestsPerRun: number
  readonly runs: number
  readonly failures: Readonly<Record<string, number>>
  /** Requests per completed run, per endpoint. */
  readonly perRun: Readonly<Record<string, number>>
  /** Mean ms from a run's create to its first read answered, on the fake's clock: the polling plan's first delay. */
  readonly firstReadMs: number
  /**
   * CPU (user + system) per completed run, in µs, of the benchmark process (the client) and of the fake's child
   * process, over the measured runs: with two cores, the flow cannot go faster than 1 s ÷ the larger of the two.
   */
  readonly cpuPerRunMicros: { readonly client: number; readonly fake: number }
  /**
   * Each process's garbage-collection pauses (the `gc` performance entries' durations) ÷ its CPU over the measured
   * runs: roughly the share of its CPU that went to collecting.
   */
  readonly gcShare: { readonly client: number; readonly fake: number }
}

export interface FlowResult extends FlowRow {
  readonly concurrency: number
  readonly runScript: string
  /**
   * The same workload read with `runReads: "long-poll"` (a client of its own, warmed the same way, measured after
   * the polled one): its first read goes out at once and is held until the run ends, so nothing is learned.
   */
  readonly longPoll?: FlowRow | undefined
}

export const flow = (options: FlowOptions, keys: Clients.Keys) =>
  Effect.gen(function* () {
    const server = yield* Child.start({
      users: options.users,
      keys: Clients.publicKeys(keys),
      timeScale: 1,
      clockOrigin: 0,
      accessTokenTtlSeconds: 3600
    })
    const measure = Effect.gen(function* () {
      yield* warm(options.users)
      yield* server.reset
      const before = yield* server.summary
      const client = yield* clientUsage
      const measured = yield* workers(options, true)
      const used = yield* client.stop
      const summary = yield* server.summary
      const fakeCpu = summary.cpuMicros - before.cpuMicros
      const perRun = Object.fromEntries(
        Object.entries(summary.byEndpoint).map(([endpoint, n]) => [endpoint, n / measured.completed])
      )
      return {
        runsPerSec: measured.completed / measured.seconds,
        requestsPerRun: summary.requests / measured.completed,
        runs: measured.completed,
        failures: measured.failures,
        perRun,
        firstReadMs: summary.firstReadMillis,
        cpuPerRunMicros: { client: used.cpuMicros / measured.completed, fake: fakeCpu / measured.completed },
        gcShare: {
          client: (used.gcMillis * 1000) / used.cpuMicros,
          fake: ((summary.gcMillis - before.gcMillis) * 1000) / fakeCpu
        }
      } satisfies FlowRow
    })
    const polled = yield* measure.pipe(Effect.provide(Clients.embedded(server, keys.es256)))
    const longPoll = yield* measure.pipe(
      Effect.provide(Clients.embedded(server, keys.es256, { runReads: "long-poll" }))
    )
    return { concurrency: options.concurrency, runScript, ...polled, longPoll } satisfies FlowResult
  }).pipe(Effect.scoped)

/**
 * The client's rate limiting in the budget scenario: the library's default (`rateLimit` not set), which matches
 * Zapier's published 60 requests/min. The client runs on the same scaled clock as the fake, so these are the
 * production settings. (`undefined` would mean none: the 429s are then reported, not asserted.)
 */
export const clientRateLimiting = (limitPerMinute: number): Partial<ZapierHttp.Options> | undefined =>
  limitPerMinute === ZapierHttp.defaults.rateLimit.limit
    ? { rateLimit: undefined }
    : { rateLimit: { limit: limitPerMinute } }

const describeLimiter = (limiter: Partial<ZapierHttp.Options> | undefined): string => {
  if (limiter === undefined || limiter.rateLimit === false) return "none"
  const limit = limiter.rateLimit?.limit ?? ZapierHttp.defaults.rateLimit.limit
  const window = Duration.decode(limiter.rateLimit?.window ?? ZapierHttp.defaults.rateLimit.window)
  // Every limiter counts its window plus a safety margin (max(1 s, 1 %) by default).
  const margin = Duration.decode(limiter.rateLimit?.margin ?? RateLimiter.defaultMargin(window))
  return `${limiter.rateLimit === undefined ? "the default, " : ""}${limit} requests per ${Duration.format(window)} (counted over ${Duration.format(Duration.sum(window, margin))})`
}

export interface BudgetOptions {
  readonly concurrency: number
  readonly users: number
  readonly limitPerMinute: number
  readonly timeScale: number
  /** Whole minutes (of the scaled clock) over which the runs are counted. */
  readonly minutes: number
  /** The fewest requests a run needs (the flow's `requestsPerRun`): the budget's theoretical run rate is limit / it. */
  readonly requestsPerRun: number
}

export interface BudgetResult {
  readonly limitPerMinute: number
  /**
   * Runs completed per minute ÷ the theoretical maximum (limitPerMinute / requestsPerRun), in minutes of the scaled
   * clock; runs still in flight at the end are not counted.
   */
  readonly achievedFraction: number
  /** 429s the fake answered, warm-up included. */
  readonly rateLimited: number
  readonly runsPerMinute: number
  readonly theoreticalRunsPerMinute: number
  /** `/v2` requests the fake accepted per minute (the budget allows limitPerMinute). */
  readonly acceptedPerMinute: number
  readonly minutes: number
  readonly timeScale: number
  readonly concurrency: number
  readonly clientRateLimiting: string
  readonly failures: Readonly<Record<string, number>>
}

/** The requests the fake's rate limit counts (`/v2`; not the token endpoint). */
const v2Requests = (summary: Protocol.Summary) =>
  Object.entries(summary.byEndpoint)
    .filter(([endpoint]) => endpoint.includes(" /v2/"))
    .reduce((n, [, count]) => n + count, 0)

export const budget = (options: BudgetOptions, keys: Clients.Keys) =>
  Effect.gen(function* () {
    const origin = Date.now()
    const server = yield* Child.start({
      users: options.users,
      keys: Clients.publicKeys(keys),
      rateLimitPerMinute: options.limitPerMinute,
      timeScale: options.timeScale,
      clockOrigin: origin,
      accessTokenTtlSeconds: 86_400
    })
    const clock = ScaledClock.scaled(options.timeScale, origin)
    const limiter = clientRateLimiting(options.limitPerMinute)
    return yield* Effect.gen(function* () {
      // Warm up without spending the budget: tokens (not metered) and the stored connections (one list per user).
      const tokens = yield* TokenExchange.TokenExchange
      const actions = yield* EmbeddedActions.EmbeddedActions
      yield* Effect.forEach(Array.from({ length: options.users }), (_, i) =>
        Effect.zipRight(tokens.accessToken(Seed.user(i)), actions.ensureConnection(Seed.user(i), Seed.app))
      )
      const warmup = v2Requests(yield* server.summary)
      const measured = yield* workers({ ...options, millis: (options.minutes * 60_000) / options.timeScale }, false)
      const summary = yield* server.summary
      const runsPerMinute = measured.completed / options.minutes
      const theoreticalRunsPerMinute = options.limitPerMinute / options.requestsPerRun
      const rateLimited = summary.statuses["429"] ?? 0
      const v2 = v2Requests(summary)
      return {
        limitPerMinute: options.limitPerMinute,
        achievedFraction: runsPerMinute / theoreticalRunsPerMinute,
        rateLimited,
        runsPerMinute,
        theoreticalRunsPerMinute,
        acceptedPerMinute: (v2 - rateLimited - warmup) / options.minutes,
        minutes: options.minutes,
        timeScale: options.timeScale,
        concurrency: options.concurrency,
        clientRateLimiting: describeLimiter(limiter),
        failures: measured.failures
      } satisfies BudgetResult
    }).pipe(Effect.provide(Clients.embedded(server, keys.es256, limiter ?? {})), Effect.withClock(clock))
  }).pipe(Effect.scoped)
