import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, FiberRef, Option, TestClock } from "effect"
import * as Deadline from "../src/internal/deadline.js"

// The await's deadline: Effect.timeoutOption's contract, in one fiber on the live clock.
describe("await deadline (internal/deadline)", () => {
  it.live("an effect that ends in time gives its value, its failure as is", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Deadline.timeoutOption(Effect.succeed(1), Duration.minutes(1)), Option.some(1))
      const failed = yield* Effect.exit(Deadline.timeoutOption(Effect.fail("boom"), Duration.minutes(1)))
      assert.deepStrictEqual(failed, Exit.fail("boom"))
    })
  )

  it.live("past the deadline: None, and the effect is interrupted before it returns", () =>
    Effect.gen(function* () {
      const interrupted = yield* Deferred.make<void>()
      const result = yield* Deadline.timeoutOption(
        Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))),
        Duration.millis(1)
      )
      assert.deepStrictEqual(result, Option.none())
      assert.isTrue(yield* Deferred.isDone(interrupted))
    })
  )

  it.live("interrupting the caller interrupts the effect and waits for it to end", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const released = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Deadline.timeoutOption(
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(released, undefined))
          ),
          Duration.minutes(1)
        )
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(yield* Deferred.isDone(released))
    })
  )

  it.live("the effect runs with the caller's fiber refs and span", () =>
    Effect.gen(function* () {
      const ref = yield* FiberRef.make("default")
      const seen = yield* Deadline.timeoutOption(
        Effect.all({ value: FiberRef.get(ref), span: Effect.map(Effect.currentSpan, (s) => s.name) }),
        Duration.minutes(1)
      ).pipe(Effect.locally(ref, "caller's"), Effect.withSpan("EmbeddedActions.await"))
      assert.deepStrictEqual(seen, Option.some({ value: "caller's", span: "EmbeddedActions.await" }))
    }).pipe(Effect.scoped)
  )

  it.effect("under the TestClock the deadline is the TestClock's", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(Deadline.timeoutOption(Effect.never, Duration.seconds(180)))
      yield* TestClock.adjust(Duration.seconds(179))
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust(Duration.seconds(1))
      assert.deepStrictEqual(yield* Fiber.join(fiber), Option.none())
    })
  )
})
