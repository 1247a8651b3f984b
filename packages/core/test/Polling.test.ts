import { assert, describe, it } from "@effect/vitest"
import { Polling } from "@effect-zapier/core"
import { Chunk, Duration, Effect, Schedule } from "effect"

const delaysOf = (policy: Polling.PolicyShape, inputs: ReadonlyArray<Polling.PollInput>) =>
  Schedule.run(Schedule.delays(Polling.schedule(policy)), 0, inputs).pipe(
    Effect.map((delays) => Chunk.toReadonlyArray(delays).map(Duration.toMillis))
  )

describe("Polling.schedule", () => {
  it.effect("grows by the factor from the first delay and stops growing at the cap", () =>
    Effect.gen(function* () {
      const delays = yield* delaysOf(
        { ...Polling.defaults, jitter: 0 },
        Array.from({ length: 9 }, () => undefined)
      )
      assert.deepStrictEqual(delays, [500, 750, 1125, 1687.5, 2531.25, 3796.875, 5000, 5000, 5000])
    })
  )

  it.effect("keeps every jittered delay within ±20 % of the unjittered one", () =>
    Effect.gen(function* () {
      const exact = yield* delaysOf(
        { ...Polling.defaults, jitter: 0 },
        Array.from({ length: 40 }, () => undefined)
      )
      const jittered = yield* delaysOf(
        Polling.defaults,
        Array.from({ length: 40 }, () => undefined)
      )
      let differs = false
      jittered.forEach((d, i) => {
        assert.isAtLeast(d, exact[i]! * 0.8 - 1e-9)
        assert.isAtMost(d, exact[i]! * 1.2 + 1e-9)
        if (Math.abs(d - exact[i]!) > 1e-6) differs = true
      })
      assert.isTrue(differs, "jitter should change at least one of 40 delays")
    })
  )

  it.effect("stretches the next delay to a server hint that is longer, and ignores a shorter one", () =>
    Effect.gen(function* () {
      const delays = yield* delaysOf({ ...Polling.defaults, jitter: 0 }, [
        undefined,
        { _tag: "Retry", retryAfter: Duration.seconds(30) },
        { _tag: "Retry", retryAfter: Duration.millis(10) }
      ])
      assert.deepStrictEqual(delays, [500, 30_000, 1125])
    })
  )

  it("defaults: first poll after 500 ms, ×1.5, 5 s cap, ±20 % jitter, 180 s deadline", () => {
    assert.strictEqual(Duration.toMillis(Polling.defaults.initialDelay), 500)
    assert.strictEqual(Polling.defaults.factor, 1.5)
    assert.strictEqual(Duration.toMillis(Polling.defaults.maxDelay), 5000)
    assert.strictEqual(Polling.defaults.jitter, 0.2)
    assert.strictEqual(Duration.toSeconds(Polling.defaults.deadline), 180)
  })
})
