import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { FakeZapier, FakeZapierServer } from "../src/index.js"

/** Builds the layer over `seed` and returns how it failed (or `undefined` when it was built). */
const refusal = <A, E>(layer: Layer.Layer<A, E>) =>
  Layer.build(layer).pipe(
    Effect.scoped,
    Effect.as(undefined),
    Effect.catchAll((e) => Effect.succeed(e))
  )

const refusalOf = (seed: FakeZapier.Seed) => refusal(FakeZapier.layer(seed))

/** A seed written in plain JavaScript (or read from JSON), which the types did not check. */
const fromJavaScript = (seed: Record<string, unknown>) => seed as FakeZapier.Seed

const invalid = (field: string, value: string, allowed: string) => new FakeZapier.InvalidSeed({ field, value, allowed })

const count = "a whole number of at least 1"
const positiveDuration = `a finite duration above zero (a Duration, millis, or a string such as "2 seconds")`
const duration = `a finite duration of zero or more (a Duration, millis, or a string such as "2 seconds")`

describe("FakeZapier seed (decoded when the layer is built)", () => {
  it.effect("a count that is NaN, negative, a fraction or Infinity is refused, naming the field and the value", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [FakeZapier.Seed, FakeZapier.InvalidSeed]> = [
        [{ retention: { maxRuns: Number.NaN } }, invalid("retention.maxRuns", "NaN", count)],
        [{ retention: { maxRuns: -1 } }, invalid("retention.maxRuns", "-1", count)],
        [{ retention: { maxActionIds: 2.5 } }, invalid("retention.maxActionIds", "2.5", count)],
        [{ retention: { maxRuns: Number.POSITIVE_INFINITY } }, invalid("retention.maxRuns", "Infinity", count)],
        [{ choicesPageSize: 0 }, invalid("choicesPageSize", "0", count)],
        [{ callbacks: { attempts: 1.5 } }, invalid("callbacks.attempts", "1.5", count)],
        [{ rateLimitPerMinute: -5 }, invalid("rateLimitPerMinute", "-5", "a whole number of at least 0")],
        [
          { ...FakeZapier.sampleSeed, faults: [{ times: 0, fault: FakeZapier.Fault.malformedBody }] },
          invalid("faults.0.times", "0", "a whole number of at least 1, or Infinity (every matching request)")
        ]
      ]
      for (const [seed, expected] of cases) assert.deepStrictEqual(yield* refusalOf(seed), expected)
    })
  )

  it.effect("a duration that is negative, NaN, unreadable, infinite or (where it must pass) zero is refused", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [FakeZapier.Seed, FakeZapier.InvalidSeed]> = [
        [{ retention: { runTtl: "-1 seconds" } }, invalid("retention.runTtl", '"-1 seconds"', duration)],
        [{ retention: { runTtl: Number.NaN } }, invalid("retention.runTtl", "NaN", duration)],
        [fromJavaScript({ accessTokenTtl: "an hour" }), invalid("accessTokenTtl", '"an hour"', positiveDuration)],
        [{ connectTokenTtl: Duration.infinity }, invalid("connectTokenTtl", "Duration(Infinity)", positiveDuration)],
        [{ rateLimitWindow: 0 }, invalid("rateLimitWindow", "0", positiveDuration)],
        [{ callbacks: { retryDelay: -200 } }, invalid("callbacks.retryDelay", "-200", duration)]
      ]
      for (const [seed, expected] of cases) assert.deepStrictEqual(yield* refusalOf(seed), expected)
    })
  )

  it.effect("the message says what was wrong and what the field takes", () =>
    Effect.gen(function* () {
      const error = yield* refusalOf({ retention: { maxRuns: Number.NaN } })
      assert.strictEqual(
        error?.message,
        "FakeZapier seed: retention.maxRuns is NaN; it takes a whole number of at least 1. Fix the seed given to FakeZapier.layer / FakeZapierServer.layer."
      )
    })
  )

  it.effect("a user's connection to an app the seed does not have is refused (was a defect)", () =>
    Effect.gen(function* () {
      const seed: FakeZapier.Seed = {
        ...FakeZapier.sampleSeed,
        users: [
          { user: { userId: "u", tenantId: "t" }, connections: [{ app: FakeZapier.sample.slack }, { app: "nope" }] }
        ]
      }
      assert.deepStrictEqual(
        yield* refusalOf(seed),
        invalid("users.0.connections.1.app", '"nope"', "the id of an app in seed.apps")
      )
    })
  )

  it.effect("valid seeds still build: whole counts, Infinity times, durations as strings, millis and Durations", () =>
    Effect.gen(function* () {
      const seeds: ReadonlyArray<FakeZapier.Seed> = [
        {},
        FakeZapier.sampleSeed,
        {
          ...FakeZapier.sampleSeed,
          accessTokenTtl: "10 minutes",
          connectTokenTtl: 60_000,
          choicesPageSize: 1,
          rateLimitPerMinute: 0,
          rateLimitWindow: Duration.seconds(2),
          faults: [{ skip: 0, times: Number.POSITIVE_INFINITY, fault: FakeZapier.Fault.delay("1 second") }],
          callbacks: { attempts: 1, retryDelay: 0, timeout: "1 second" },
          retention: { runTtl: 0, maxRuns: 1, maxActionIds: 10 }
        }
      ]
      for (const seed of seeds) assert.strictEqual(yield* refusalOf(seed), undefined)
    })
  )

  it.effect("FakeZapierServer.layer refuses the same, its options' rate limits included", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* refusal(FakeZapierServer.layer({ seed: FakeZapier.sampleSeed, rateLimitWindow: "-2 seconds" })),
        invalid("rateLimitWindow", '"-2 seconds"', positiveDuration)
      )
    })
  )
})
