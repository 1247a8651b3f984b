/**
 * A timeout for one attempt that costs one fiber instead of `Effect.timeout`'s race of two (which forks the
 * effect and a sleep, and merges the winner's fiber refs back): the attempt runs in one fiber of its own and the
 * caller waits on either its exit or a timer. Every attempt of every request passes here, so its cost shows in
 * `pnpm bench`'s overhead scenario (library CPU per `ActionRuns.get`, beside the bare Effect HttpClient).
 *
 * The attempt's fiber is started from inside the caller's wait (`Effect.async`), with the caller's fiber refs,
 * runtime flags and context (plus what `withContext` adds), and runs at once until its first asynchronous step:
 * the interruption handler is in place before the fiber exists, so no `uninterruptibleMask`/`onInterrupt` is
 * needed around a fork, the context is given to the fiber when it is made (no fiber-ref update in it), and it is
 * not first queued on the scheduler.
 *
 * The timer is a plain `setTimeout` only when the fiber's clock is Effect's live clock; under any other clock (a
 * `TestClock`, an app's own) this is `Effect.timeoutFail`, so time still moves only when that clock says so.
 *
 * `@effect-zapier/core`'s `internal/deadline.ts` (the deadline of `EmbeddedActions.await`) is this scheme with
 * `Effect.timeoutOption`'s contract. Core cannot import this package and neither package exports its copy, so the
 * two are kept apart: a fix to one is due in the other too.
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"

/** The class of Effect's live clock, to tell it from a `TestClock` or any other. */
const liveClock = Object.getPrototypeOf(Clock.make()) as unknown

/** Timers longer than this are not `setTimeout`'s to keep (it would fire at once): `Effect.timeoutFail` then. */
const maxTimerMillis = 2_147_483_647

/**
 * `self`, interrupted and failed with `onTimeout()` when it has not ended within `duration`. Interrupting the
 * caller interrupts `self` and waits for it to end, as `Effect.timeout` does; fiber refs `self` changes stay in
 * its own fiber (an attempt changes none the caller reads).
 *
 * `withContext`, when given, is the context `self` runs with, made from the caller's: on the live clock it is the
 * context the attempt's own fiber is made with (it ends with the attempt, so nothing needs restoring), otherwise
 * `self` is provided it. Either way the caller's context is unchanged.
 * @internal
 */
export const timeoutFail = <A, E, E2>(
  self: Effect.Effect<A, E>,
  duration: Duration.Duration,
  onTimeout: () => E2,
  withContext?: (context: Context.Context<never>) => Context.Context<never>
): Effect.Effect<A, E | E2> =>
  Effect.clockWith((clock) => {
    const millis = Duration.toMillis(duration)
    if (Object.getPrototypeOf(clock) !== liveClock || !(millis <= maxTimerMillis)) {
      return Effect.timeoutFail(
        withContext === undefined
          ? self
          : Effect.contextWithEffect((context) => Effect.provide(self, withContext(context))),
        { duration, onTimeout }
      )
    }
    return Effect.withFiberRuntime<A, E | E2>((caller, status) => {
      const context = withContext === undefined ? caller.currentContext : withContext(caller.currentContext)
      return Effect.async<A, E | E2>((resume) => {
        const runtime = Runtime.make({ context, runtimeFlags: status.runtimeFlags, fiberRefs: caller.getFiberRefs() })
        const fiber = Runtime.runFork(runtime)(self)
        const timer = setTimeout(() => {
          resume(Effect.zipRight(Fiber.interrupt(fiber), Effect.fail(onTimeout())))
        }, millis)
        fiber.addObserver((exit) => {
          clearTimeout(timer)
          resume(exit)
        })
        // The caller interrupted: interrupt the attempt and wait for it to end.
        return Effect.zipRight(
          Effect.sync(() => clearTimeout(timer)),
          Fiber.interrupt(fiber)
        )
      })
    })
  })
