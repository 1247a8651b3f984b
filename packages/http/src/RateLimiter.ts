/**
 * A client-side rate limiter that meters every request before it is sent, so a process (or, with Redis, a whole
 * fleet) stays inside Zapier's budget (about 60 requests/min per IP and 150/min per partner, and a 60 s cooldown
 * after a 429).
 *
 * The budget is a strict sliding window: in any interval of `window` plus a safety `margin`, at most `limit` slots
 * are granted, which is what a server counting the requests of the last `window` enforces, with room for the time
 * between taking a slot and the server counting the request (connection set-up, a busy event loop, another
 * process's clock). The margin is on by default, `max(1 s, 1 % of window)`: a 1-minute window is counted over 61 s.
 * Without it, a budget of exactly the server's limit trips that limit (and a 429 costs a whole cooldown). Each `take`
 * reserves the earliest slot that keeps that promise, in arrival order, so waiters are served first come, first
 * served (many pending polls share the budget fairly; none starves). `pause` moves every pending slot after the
 * pause, so one 429 holds back everyone sharing the budget.
 *
 * Stores: `layerMemory` (one process; it runs on the Effect `Clock`, so it works under `TestClock`) and
 * `RateLimiterRedis.layer` (several processes sharing one budget through Redis, on the Redis server's clock; needs `ioredis` ^5).
 * With Redis, a waiter reserves its slot at most one (margined) window ahead, so a process that dies (`kill -9`)
 * with waiters queued leaves at most one window of reserved slots unused.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@effect-zapier/http"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const limiter = yield* RateLimiter.RateLimiter
 *   yield* limiter.take() // waits for a free slot (fails with RateLimited only past `maxWait`)
 *   // ... send the request; on a 429:
 *   yield* limiter.pause("30 seconds") // everyone sharing the budget waits 30 s
 * }).pipe(Effect.provide(RateLimiter.layerMemory({ limit: 60, window: "1 minute" })))
 * ```
 * @since 0.1.0
 */
import type * as Errors from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Options } from "./internal/limiter.js"
import { countedMillis, exceeded, settings, toMillis } from "./internal/limiter.js"

/** @since 0.1.0 */
export {
  /**
   * The safety margin a limiter adds to its window by default: 1 s plus 1 % of the window, so a budget of 60 per
   * minute is counted over 61 s.
   *
   * @example
   * ```ts
   * import { RateLimiter } from "@effect-zapier/http"
   * import { Duration } from "effect"
   *
   * Duration.toMillis(RateLimiter.defaultMargin(Duration.minutes(1))) // 1000: counted over 61 s
   * ```
   * @since 0.1.0
   */
  defaultMargin,
  /**
   * The defaults: Zapier's published 60 requests per minute (counted over 61 s with the default margin), a 60 s
   * cooldown after a 429.
   * @since 0.1.0
   */
  defaults,
  /**
   * Options common to every store (`limit`, `window`, `margin`, `maxWait`, `defaultPause`, `key`); every field
   * has the default in `defaults`.
   * @since 0.1.0
   * @category options
   */
  type Options
} from "./internal/limiter.js"

/**
 * The limiter: one budget per key (most apps use only the default key).
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Waits until a slot of `key`'s budget (default: the limiter's `key` option) is free, and takes it. Waiters are
   * served in arrival order (with Redis: within each process; across processes, a waiter reserves its slot once it
   * is at most one counted window away). Fails only when the wait would exceed `maxWait` (then no slot is taken),
   * with `RateLimited` whose `retryAfter` is the wait that would have been needed. Interrupting a waiter gives its
   * slot back. In memory, a take with room costs one clock read and no span; a wait is traced as
   * `RateLimiter.take` with `rateLimiter.waitMillis`.
   */
  readonly take: (key?: string) => Effect.Effect<void, Errors.RateLimited>
  /**
   * Pauses `key`'s budget (default: the limiter's `key` option) for `duration` from now: call it with a 429's
   * `Retry-After` (`undefined` when the response had none: the `defaultPause`, 60 s). Pending and future takes
   * wait until the pause is over; a longer pause already in place is kept.
   */
  readonly pause: (duration: Duration.DurationInput | undefined, key?: string) => Effect.Effect<void>
}

/**
 * The limiter's tag.
 * @since 0.1.0
 * @category tags
 */
export class RateLimiter extends Context.Tag("@effect-zapier/http/RateLimiter")<RateLimiter, Service>() {}
// ---------------------------------------------------------------------------------------------------------------
// Memory store
// ---------------------------------------------------------------------------------------------------------------

/** A granted slot; `at` moves when a pause reschedules it. */
interface Slot {
  at: number
}

/** One key's budget: granted slots in ascending `at` (they are granted in order), and the end of the pause. */
interface Budget {
  readonly slots: Array<Slot>
  pausedUntil: number
}

/**
 * The earliest time a new slot can have: not before now, the pause, or the last granted slot (first come, first
 * served), and at least a window after the `limit`-th latest slot (so no window holds more than `limit` slots).
 */
const earliest = (budget: Budget, now: number, limit: number, windowMillis: number): number => {
  const slots = budget.slots
  let at = Math.max(now, budget.pausedUntil)
  if (slots.length > 0) at = Math.max(at, slots[slots.length - 1].at)
  if (slots.length >= limit) at = Math.max(at, slots[slots.length - limit].at + windowMillis)
  return at
}

const prune = (budget: Budget, now: number, windowMillis: number) => {
  let stale = 0
  while (stale < budget.slots.length && budget.slots[stale].at <= now - windowMillis) stale++
  if (stale > 0) budget.slots.splice(0, stale)
}

const release = (budget: Budget, slot: Slot) => {
  const index = budget.slots.indexOf(slot)
  if (index >= 0) budget.slots.splice(index, 1)
}

/**
 * An in-memory limiter for one process, on the Effect `Clock` (so `TestClock` drives it in tests).
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@effect-zapier/http"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const limiter = yield* RateLimiter.makeMemory({ limit: 10, window: "1 second" })
 *   yield* limiter.take()
 * })
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: Options): Effect.Effect<Service> =>
  Effect.map(settings(options), (s) => {
    const limit = s.limit
    const windowMillis = countedMillis(s)
    const maxWaitMillis = toMillis(s.maxWait)
    const budgets = new Map<string, Budget>()
    const budgetOf = (key: string): Budget => {
      let budget = budgets.get(key)
      if (budget === undefined) {
        budget = { slots: [], pausedUntil: 0 }
        budgets.set(key, budget)
      }
      return budget
    }
    // Forget idle budgets so that many keys do not accumulate.
    const forgetIfIdle = (key: string, budget: Budget, now: number) => {
      prune(budget, now, windowMillis)
      if (budget.slots.length === 0 && budget.pausedUntil <= now) budgets.delete(key)
    }

    /** The wait for a slot granted in the future, traced (a take with room costs no span). */
    const wait = Effect.fn("RateLimiter.take")(function* (k: string, budget: Budget, slot: Slot, start: number) {
      yield* Effect.annotateCurrentSpan("rateLimiter.waitMillis", slot.at - start)
      // A pause may move the slot while we sleep: sleep again until it is due.
      yield* Effect.gen(function* () {
        let now = start
        while (slot.at > now) {
          if (slot.at - start > maxWaitMillis) {
            release(budget, slot)
            return yield* exceeded(k, slot.at - now)
          }
          yield* Effect.sleep(Duration.millis(slot.at - now))
          now = yield* Clock.currentTimeMillis
        }
      }).pipe(
        Effect.onInterrupt(() =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              release(budget, slot)
              forgetIfIdle(k, budget, now)
            })
          )
        )
      )
    })

    // The fast path: one clock read and the bookkeeping; no span, fiber or wait when the window has room.
    const take = (key?: string): Effect.Effect<void, Errors.RateLimited> =>
      Effect.clockWith((clock) => {
        const k = key ?? s.key
        const start = clock.unsafeCurrentTimeMillis()
        const budget = budgetOf(k)
        prune(budget, start, windowMillis)
        const at = earliest(budget, start, limit, windowMillis)
        if (at - start > maxWaitMillis) return Effect.fail(exceeded(k, at - start))
        const slot: Slot = { at }
        budget.slots.push(slot)
        return at <= start ? Effect.void : wait(k, budget, slot, start)
      })

    const pause = Effect.fn("RateLimiter.pause")(function* (
      duration: Duration.DurationInput | undefined,
      key?: string
    ) {
      const k = key ?? s.key
      const millis = toMillis(duration === undefined ? s.defaultPause : Duration.decode(duration))
      const now = yield* Clock.currentTimeMillis
      const budget = budgetOf(k)
      yield* Effect.annotateCurrentSpan("rateLimiter.pauseMillis", millis)
      budget.pausedUntil = Math.max(budget.pausedUntil, now + millis)
      // Reschedule the pending slots, in their order, after the pause.
      prune(budget, now, windowMillis)
      const firstPending = budget.slots.findIndex((slot) => slot.at > now)
      if (firstPending < 0) return
      const pending = budget.slots.splice(firstPending)
      for (const slot of pending) {
        slot.at = earliest(budget, now, limit, windowMillis)
        budget.slots.push(slot)
      }
    })

    return RateLimiter.of({ take, pause })
  })

/**
 * The in-memory limiter as a layer: one budget per key for this process.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@effect-zapier/http"
 *
 * const Limiter = RateLimiter.layerMemory({ limit: 60, window: "1 minute", maxWait: "2 minutes" })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: Options): Layer.Layer<RateLimiter> =>
  Layer.effect(RateLimiter, makeMemory(options))
