/**
 * The TestClock scenarios' jobs (`polling`, `economy`): each case's runs cut into chunks, each chunk measured on
 * its own timeline (its own fake, `TestClock` and seeded `Random`), all side by side, so a figure depends on the
 * seed and the chunk size only, not on how the timelines interleave.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import type * as TestServices from "effect/TestServices"
import * as Seed from "./seed.js"

/** A case of a scenario: the durations of its runs. */
export interface Case {
  readonly runDurations: ReadonlyArray<number>
}

/**
 * Runs `self` in a fiber whose FiberRefs are not merged back (`Fiber.await`, not `join`): the test services'
 * `TestClock` must not become the caller's clock.
 */
const isolated = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.flatMap(Effect.fork(self), Fiber.await), (exit) => exit)

/**
 * Measures every case in chunks of at most `size` runs: `measure(c, runDurations)` on each chunk, in a fiber of
 * its own with the test services (`Seed.testContext`) and `Random.make(seed * 1000 + case * 100 + chunk)`, every
 * chunk at once. Answers each case's measurements, in the order of `cases` and of their chunks.
 */
export const chunked = <C extends Case, M, E, R>(
  cases: ReadonlyArray<C>,
  options: { readonly size: number; readonly seed: number },
  measure: (c: C, runDurations: ReadonlyArray<number>) => Effect.Effect<M, E, R>
): Effect.Effect<ReadonlyArray<ReadonlyArray<M>>, E, Exclude<R, TestServices.TestServices>> =>
  Effect.gen(function* () {
    const jobs = cases.flatMap((c, i) =>
      Array.from({ length: Math.ceil(c.runDurations.length / options.size) }, (_, k) => ({
        case: i,
        seed: options.seed * 1_000 + i * 100 + k,
        runDurations: c.runDurations.slice(k * options.size, (k + 1) * options.size)
      }))
    )
    const measured = yield* Effect.forEach(
      jobs,
      (job) =>
        isolated(
          measure(cases[job.case]!, job.runDurations).pipe(
            Effect.withRandom(Random.make(job.seed)),
            Effect.provide(Seed.testContext)
          )
        ),
      { concurrency: "unbounded" }
    )
    return cases.map((_, i) => measured.filter((_, j) => jobs[j]!.case === i))
  })
