/**
 * 8. Request economy: what one run costs out of Zapier's 60 requests/min, by way of reading its end.
 *
 * Runs finishing after 0.5, 2, 10, 60, 300 s and log-normal durations (median 2 s, σ 1), on `FakeZapier.layer`
 * and the `TestClock` (exact and reproducible from the seed). One client per job (one `EmbeddedActions`, one
 * fake): it runs its share of the runs **one after another**, as a partner's backend does all day, so what the
 * client learns (verified connections, input fields, each action's durations) carries from run to run. Every
 * request the fake's ledger records counts, except the token exchanges (not metered by Zapier's API limit).
 *
 * Modes:
 * - `defaults`: before the economy work: the connections listed and the input fields fetched before every run,
 *   the fixed polling schedule (`Caching.off`, `adaptive: false`);
 * - `caches`: the library's defaults now: connections verified within 10 min used without listing, input fields
 *   reused for 10 min, the adaptive plain-polling schedule;
 * - `long-poll`: `caches`, reading the run with the long-poll read (`runReads: "long-poll"`, `wait_seconds` 30):
 *   the fake holds each read until the run ends or 30 s pass (then 202 with `Retry-After: 1`), on the same clock,
 *   as its HTTP route does; the reads are in the ledger like every request, and in their own rate-limit bucket;
 * - `callbacks`: `caches` with run callbacks (`RunCallbacks`, memory bus): the create carries `callback_url`, and
 *   `await` waits for the callback, polling on the safety-net schedule (15 s, ×2, 60 s). The callback is put on the
 *   run-event bus when the run ends, as the receiver does once it has verified Zapier's signature (the receiver
 *   itself, signatures included, is measured over loopback HTTP on the live clock by the `callbackLag` scenario;
 *   here the fake is told not to POST anywhere);
 * - `zapier-sdk`: Zapier's SDK's request pattern: its create, then its `pollUntilComplete` schedule (50 ms, then
 *   125 ms → … → 60 s by elapsed time, + 0–50 % jitter), the action id cached for 60 s, no connection list, no
 *   input check, and its 180 s default timeout: a run still pending then is a run that did not complete.
 *
 * Per row: requests per run (every run started), runs per minute inside 60 requests/min (completed runs ÷ the
 * requests of that limit × 60; the long-poll reads are metered in a bucket of their own), detection lag of the
 * completed runs (mean, p95, max: when the caller learnt the end − when the run ended), runs, completed.
 * The library's runs get a 10-minute deadline (its `await` resumes after a `PollTimeout` without a new create).
 */
import {
  ActionCatalog,
  ActionRuns,
  Caching,
  ConnectionStore,
  Domain,
  EmbeddedActions,
  Polling,
  RunCallbacks,
  RunEvents
} from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"
import * as Jobs from "./jobs.js"
import { durations, lognormal, sdkInterval } from "./polling.js"
import * as Seed from "./seed.js"

export type Mode = "defaults" | "caches" | "long-poll" | "callbacks" | "zapier-sdk"
/** Every mode, in the order of the tables. */
export const allModes: ReadonlyArray<Mode> = ["defaults", "caches", "long-poll", "callbacks", "zapier-sdk"]
/** The modes this benchmark runs. */
export const modes: ReadonlyArray<Mode> = allModes

/** One row of `economy` in the results. */
export interface Row {
  readonly mode: Mode
  readonly durationMs: number | "lognormal"
  /** Requests of every kind Zapier counts (token exchanges excluded) per run started. */
  readonly requestsPerRun: number
  /**
   * Completed runs per 60 requests of the per-minute limit (60 requests/min): every request counted in
   * `requestsPerRun` except the long-poll reads, which Zapier meters in their own bucket.
   */
  readonly runsPerMinute: number
  /** Mean detection lag of the completed runs. */
  readonly lagMs: number
  /** The 95th percentile and the largest detection lag of the completed runs. */
  readonly lagP95Ms: number
  readonly lagMaxMs: number
  /** Runs started. */
  readonly samples: number
  /** Runs that completed (the SDK gives up at 180 s). */
  readonly completed: number
}

export interface Options {
  /** Runs per fixed duration and mode. */
  readonly samples: number
  /** Runs of the log-normal mix per mode. */
  readonly lognormalSamples: number
  /** Runs one client makes one after another (a job); jobs run side by side, each on its own fake and clock. */
  readonly runsPerClient: number
  readonly seed: number
}

/** The long-poll read's wait in this scenario (`wait_seconds`). */
export const longPollWait = Duration.seconds(30)

const deadline = Duration.minutes(10)
const sdkTimeout = 180_000
const sdkActionCacheMillis = 60_000

const isMetered = (endpoint: string) => endpoint !== FakeZapier.Endpoint.token

interface Measured {
  readonly requests: number
  /** The requests in the per-minute limit's bucket (all but the long-poll reads). */
  readonly limited: number
  readonly completed: number
  readonly lags: ReadonlyArray<number>
}

/** One run the library's way; returns its id once the caller knows the run ended. */
const libraryRun = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const result = yield* actions.run({
    user: Seed.user(0),
    app: Seed.app,
    action: Seed.action,
    inputs: {},
    timeout: deadline
  })
  return Option.some(result.runId)
})

/**
 * One run with a run callback: start (the create carries the callback URL), the callback put on the bus when the
 * run ends, `await` with `callback: true`.
 */
const callbackRun = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const events = yield* RunEvents.RunEvents
  const zapier = yield* FakeZapier.FakeZapier
  const user = Seed.user(0)
  const handle = yield* actions.start({ user, app: Seed.app, action: Seed.action, inputs: {} })
  const info = yield* zapier.run(handle.runId)
  yield* Effect.forkScoped(
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (info.finishesAt !== undefined && info.finishesAt > now)
        yield* Effect.sleep(Duration.millis(info.finishesAt - now))
      yield* events.publish(
        RunEvents.RunEvent.make({
          runId: handle.runId,
          state: Domain.RunSucceeded.make({ runId: handle.runId, results: [] }),
          source: "callback",
          receivedAt: yield* DateTime.now
        })
      )
    })
  )
  const result = yield* actions.await(user, handle.runId, { callback: true, timeout: deadline })
  return Option.some(result.runId)
}).pipe(Effect.scoped)

/** Zapier's SDK's `runAction`, as its request pattern: a cached action id, the create, its polling, its timeout. */
const sdkRunner = Effect.gen(function* () {
  const catalog = yield* ActionCatalog.ActionCatalog
  const runs = yield* ActionRuns.ActionRuns
  const user = Seed.user(0)
  let cached: { readonly action: Domain.Action; readonly at: number } | undefined
  return Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (cached === undefined || now - cached.at >= sdkActionCacheMillis) {
      cached = { action: yield* catalog.resolve(user, Seed.app, Seed.action, "WRITE"), at: now }
    }
    const runId = yield* runs.create(user, { action: cached.action.id, connection: Seed.connectionOf(0), inputs: {} })
    const start = yield* Clock.currentTimeMillis
    const poll = Effect.gen(function* () {
      yield* Effect.sleep(Duration.millis(50))
      while (true) {
        const state = yield* runs.get(user, runId)
        if (state._tag !== "RunPending") return runId
        const interval = sdkInterval((yield* Clock.currentTimeMillis) - start)
        yield* Effect.sleep(Duration.millis(interval + (yield* Random.next) * 0.5 * interval))
      }
    })
    return yield* Effect.timeoutOption(poll, Duration.millis(sdkTimeout))
  })
})

/** A client of `mode` runs `runDurations` one after another; the fake's ledger counts the requests. */
const job = (mode: Mode, runDurations: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    yield* zapier.scriptRuns(
      Seed.app,
      Seed.action,
      ...runDurations.map((ms) => FakeZapier.RunScript.succeed(Duration.millis(ms), []))
    )
    if (mode === "callbacks") yield* zapier.planCallbacks("drop")
    const one = mode === "zapier-sdk" ? yield* sdkRunner : mode === "callbacks" ? callbackRun : libraryRun
    const detected: Array<{ readonly runId: Domain.ActionRunId; readonly at: number }> = []
    const all = Effect.forEach(
      runDurations,
      () =>
        Effect.flatMap(one, (runId) =>
          Option.isSome(runId)
            ? Effect.map(Clock.currentTimeMillis, (at) => void detected.push({ runId: runId.value, at }))
            : Effect.void
        ),
      { discard: true }
    )
    const fiber = yield* Effect.fork(all)
    yield* TestClock.adjust(Duration.millis(runDurations.reduce((a, b) => a + b, 0) + runDurations.length * 600_000))
    yield* Fiber.join(fiber)
    const ledger = yield* zapier.ledger
    const lags: Array<number> = []
    for (const d of detected) {
      const info = yield* zapier.run(d.runId)
      lags.push(d.at - (info.finishesAt ?? Number.NaN))
    }
    return {
      requests: ledger.requests.filter((r) => isMetered(r.endpoint)).length,
      limited: ledger.requests.filter((r) => isMetered(r.endpoint) && r.endpoint !== FakeZapier.Endpoint.readRun)
        .length,
      completed: detected.length,
      lags
    } satisfies Measured
  })

/** The policies a mode runs under. */
const configured = <A, E, R>(mode: Mode, self: Effect.Effect<A, E, R>) =>
  mode === "defaults"
    ? self.pipe(
        Effect.provideService(Caching.Policy, Caching.off),
        Effect.provideService(Polling.Policy, { ...Polling.defaults, adaptive: false })
      )
    : self

/** The fake (and the program over it) a mode runs on. */
const fakeOf = (mode: Mode) =>
  mode === "callbacks"
    ? EmbeddedActions.layer.pipe(
        Layer.provideMerge(FakeZapier.layer(Seed.seed(1))),
        Layer.provideMerge(ConnectionStore.layerMemory),
        Layer.provideMerge(RunCallbacks.layer({ url: "https://partner.example/zapier/runs" })),
        Layer.provideMerge(RunEvents.layerMemory())
      )
    : mode === "long-poll"
      ? EmbeddedActions.layer.pipe(
          Layer.provideMerge(FakeZapier.layer(Seed.seed(1), { runReads: "long-poll", longPollWait: longPollWait })),
          Layer.provideMerge(ConnectionStore.layerMemory),
          Layer.provideMerge(RunEvents.layerMemory())
        )
      : Layer.merge(Seed.inMemory(1), RunEvents.layerMemory())

/** Every mode × every duration, and the log-normal mix. */
export const run = (options: Options) =>
  Effect.gen(function* () {
    const mix = lognormal(options.lognormalSamples, 2_000, 1, options.seed + 1)
    const cases = modes.flatMap((mode) => [
      ...durations.map((d) => ({
        mode,
        label: d as number | "lognormal",
        runDurations: Array.from({ length: options.samples }, () => d)
      })),
      { mode, label: "lognormal" as const, runDurations: mix }
    ])
    const measured = yield* Jobs.chunked(
      cases,
      { size: Math.max(1, options.runsPerClient), seed: options.seed },
      (c, runDurations) => configured(c.mode, job(c.mode, runDurations)).pipe(Effect.provide(fakeOf(c.mode)))
    )
    return cases.map((c, i): Row => {
      const mine = measured[i]!
      const requests = mine.reduce((n, m) => n + m.requests, 0)
      const limited = mine.reduce((n, m) => n + m.limited, 0)
      const completed = mine.reduce((n, m) => n + m.completed, 0)
      const lags = mine.flatMap((m) => m.lags).sort((a, b) => a - b)
      return {
        mode: c.mode,
        durationMs: c.label,
        requestsPerRun: requests / c.runDurations.length,
        runsPerMinute: limited === 0 ? 0 : (60 * completed) / limited,
        lagMs: lags.length === 0 ? Number.NaN : lags.reduce((a, b) => a + b, 0) / lags.length,
        lagP95Ms: lags.length === 0 ? Number.NaN : lags[Math.ceil(0.95 * lags.length) - 1]!,
        lagMaxMs: lags.length === 0 ? Number.NaN : lags[lags.length - 1]!,
        samples: c.runDurations.length,
        completed
      }
    })
  })
