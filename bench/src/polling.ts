/**
 * 1. Polling efficiency, on Effect's `TestClock` (so every figure is exact and reproducible from the seed).
 *
 * Runs finish after 0.5, 2, 10, 60 and 300 s, and after log-normal durations (median 2 s, σ = 1). Each is awaited
 * by three pollers over `FakeZapier.layer`'s `ActionRuns.get`, and the fake's ledger counts the status GETs:
 * - `effect-zapier`: the library's own `EmbeddedActions.await` with the default `Polling.Policy`
 *   (500 ms, ×1.5, 5 s cap, ±20 % jitter);
 * - `zapier-sdk`: Zapier's SDK `pollUntilComplete`, re-implemented from its published figures (Zapier's White Label documentation):
 *   first wait 50 ms, then an interval chosen by elapsed time plus 0–50 % jitter;
 * - `fixed-1s`: a GET every second.
 * Detection lag = the moment the poller returns − the moment the run finished.
 */
import { ActionRuns, type Domain, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"
import * as Jobs from "./jobs.js"
import * as Seed from "./seed.js"

export type Policy = "effect-zapier" | "zapier-sdk" | "fixed-1s"
export const policies: ReadonlyArray<Policy> = ["effect-zapier", "zapier-sdk", "fixed-1s"]
export const durations: ReadonlyArray<number> = [500, 2_000, 10_000, 60_000, 300_000]

export interface Row {
  readonly policy: Policy
  readonly durationMs: number | "lognormal"
  /** Mean status GETs per run. */
  readonly gets: number
  /** Mean detection lag. */
  readonly lagMs: number
  readonly getsMax: number
  readonly lagMaxMs: number
  readonly samples: number
}

/**
 * The SDK's interval for the next wait, by time elapsed since polling began: <125 ms → 125 ms, <375 ms → 250 ms,
 * <875 ms → 500 ms, <10 s → 1 s, <30 s → 2.5 s, <60 s → 5 s, <180 s → 10 s, beyond → 60 s.
 */
export const sdkInterval = (elapsedMs: number): number =>
  elapsedMs < 125
    ? 125
    : elapsedMs < 375
      ? 250
      : elapsedMs < 875
        ? 500
        : elapsedMs < 10_000
          ? 1_000
          : elapsedMs < 30_000
            ? 2_500
            : elapsedMs < 60_000
              ? 5_000
              : elapsedMs < 180_000
                ? 10_000
                : 60_000

/** A small seeded PRNG (mulberry32), so the log-normal durations are the same on every run. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` log-normal durations in ms with the given median and σ (Box–Muller), rounded to the millisecond. */
export const lognormal = (n: number, medianMs: number, sigma: number, seed: number): ReadonlyArray<number> => {
  const next = prng(seed)
  return Array.from({ length: n }, () => {
    const u1 = Math.max(next(), Number.EPSILON)
    const u2 = next()
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
    return Math.max(1, Math.round(medianMs * Math.exp(sigma * z)))
  })
}

export interface Options {
  /** Runs per fixed duration and policy. */
  readonly samples: number
  /** Runs of the log-normal mix per policy. */
  readonly lognormalSamples: number
  readonly seed: number
}

/** The three pollers; each returns when the run has ended. */
const pollers = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const runs = yield* ActionRuns.ActionRuns
  const user = Seed.user(0)
  const done = (runId: Domain.ActionRunId) => Effect.map(runs.get(user, runId), (s) => s._tag !== "RunPending")
  const sdk = (runId: Domain.ActionRunId) =>
    Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      yield* Effect.sleep(Duration.millis(50))
      while (!(yield* done(runId))) {
        const interval = sdkInterval((yield* Clock.currentTimeMillis) - start)
        yield* Effect.sleep(Duration.millis(interval + (yield* Random.next) * 0.5 * interval))
      }
    })
  const fixed = (runId: Domain.ActionRunId) =>
    Effect.gen(function* () {
      do yield* Effect.sleep(Duration.seconds(1))
      while (!(yield* done(runId)))
    })
  const library = (runId: Domain.ActionRunId) =>
    Effect.asVoid(actions.await(user, runId, { timeout: Duration.minutes(30) }))
  return (policy: Policy) => (policy === "effect-zapier" ? library : policy === "zapier-sdk" ? sdk : fixed)
})

/** Creates one run per duration (in order), awaits them all with `policy` on the TestClock, reads the ledger. */
const measure = (policy: Policy, runDurations: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const actions = yield* EmbeddedActions.EmbeddedActions
    const poller = (yield* pollers)(policy)
    yield* zapier.scriptRuns(
      Seed.app,
      Seed.action,
      ...runDurations.map((ms) => FakeZapier.RunScript.succeed(Duration.millis(ms), []))
    )
    const handles = yield* Effect.forEach(runDurations, () =>
      actions.start({
        user: Seed.user(0),
        app: Seed.app,
        action: Seed.action,
        inputs: {},
        connection: Seed.connectionOf(0)
      })
    )
    const fibers = yield* Effect.forEach(handles, (h) =>
      Effect.fork(poller(h.runId).pipe(Effect.zipRight(Clock.currentTimeMillis)))
    )
    yield* TestClock.adjust(Duration.millis(Math.max(...runDurations) + 300_000))
    const detected = yield* Effect.forEach(fibers, Fiber.join)
    const ledger = yield* zapier.ledger
    const gets: Array<number> = []
    const lags: Array<number> = []
    for (const [i, h] of handles.entries()) {
      const info = yield* zapier.run(h.runId)
      gets.push(FakeZapier.pollsOf(ledger, h.runId).length)
      lags.push(detected[i]! - (info.finishesAt ?? Number.NaN))
    }
    return { gets, lags }
  })

/** Samples per TestClock timeline: timelines run side by side, which hides the TestClock's real-timer yields. */
const chunkSize = 10

/**
 * Every policy × every duration, and the log-normal mix. Each chunk of runs gets its own fake, `TestClock` and
 * seeded `Random`, so the figures do not depend on how the timelines interleave.
 */
export const run = (options: Options) =>
  Effect.gen(function* () {
    const mix = lognormal(options.lognormalSamples, 2_000, 1, options.seed)
    const cases = policies.flatMap((policy) => [
      ...durations.map((d) => ({
        policy,
        label: d as number | "lognormal",
        runDurations: Array.from({ length: options.samples }, () => d)
      })),
      { policy, label: "lognormal" as const, runDurations: mix }
    ])
    const measured = yield* Jobs.chunked(cases, { size: chunkSize, seed: options.seed }, (c, runDurations) =>
      measure(c.policy, runDurations).pipe(Effect.provide(Seed.inMemory(1)))
    )
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
    return cases.map((c, i): Row => {
      const mine = measured[i]!
      const gets = mine.flatMap((m) => m.gets)
      const lags = mine.flatMap((m) => m.lags)
      return {
        policy: c.policy,
        durationMs: c.label,
        gets: mean(gets),
        lagMs: mean(lags),
        getsMax: Math.max(...gets),
        lagMaxMs: Math.max(...lags),
        samples: gets.length
      }
    })
  })
