/**
 * `Effect.timeoutOption` in one fiber instead of two, for the deadline of `EmbeddedActions.await` (every run passes
 * here once). `Effect.timeoutOption` races the effect against a sleep: it forks both and merges the winner's fiber
 * refs back; here the effect runs in one fiber of its own, made with the caller's context, runtime flags and fiber
 * refs when the caller starts waiting, and a plain `setTimeout` ends the wait (scratch loop: ~25 µs of CPU per
 * call against ~65 µs, the awaited effect's own cost aside). `@effect-zapier/http`'s per-attempt timeout
 * (`internal/timeout.ts`) works the same way; core cannot import it and neither package exports its copy, so a
 * fix to one is due in the other too.
 *
 * The timer is a `setTimeout` only on Effect's live clock; under any other clock (a `TestClock`, an app's own) this
 * is `Effect.timeoutOption`, so time moves only when that clock says so.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"

/** The class of Effect's live clock, to tell it from a `TestClock` or any other. */
const liveClock = Object.getPrototypeOf(Clock.make()) as unknown

/** Timers longer than this are not `setTimeout`'s to keep (it would fire at once): `Effect.timeoutOption` then. */
const maxTimerMillis = 2_147_483_647

/**
 * `self`'s success in `Some`, or `None` when it has not ended within `duration` (it is interrupted then, and waited
 * for); its failure as is. Interrupting the caller interrupts `self` and waits for it to end, as
 * `Effect.timeoutOption` does. Fiber refs `self` changes stay in its own fiber (the await changes none the caller
 * reads afterwards).
 * @internal
 */
export const timeoutOption = <A, E>(
  self: Effect.Effect<A, E>,
  duration: Duration.Duration
): Effect.Effect<Option.Option<A>, E> =>
  Effect.clockWith((clock) => {
    const millis = Duration.toMillis(duration)
    if (Object.getPrototypeOf(clock) !== liveClock || !(millis <= maxTimerMillis)) {
      return Effect.timeoutOption(self, duration)
    }
    return Effect.withFiberRuntime<Option.Option<A>, E>((caller, status) =>
      Effect.async<Option.Option<A>, E>((resume) => {
        const runtime = Runtime.make({
          context: caller.currentContext,
          runtimeFlags: status.runtimeFlags,
          fiberRefs: caller.getFiberRefs()
        })
        const fiber = Runtime.runFork(runtime)(self)
        const timer = setTimeout(() => {
          resume(Effect.as(Fiber.interrupt(fiber), Option.none()))
        }, millis)
        fiber.addObserver((exit) => {
          clearTimeout(timer)
          resume(Exit.map(exit, Option.some))
        })
        // The caller interrupted: interrupt `self` and wait for it to end.
        return Effect.zipRight(
          Effect.sync(() => clearTimeout(timer)),
          Fiber.interrupt(fiber)
        )
      })
    )
  })
