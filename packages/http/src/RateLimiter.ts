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
 * `layerRedis` (several processes sharing one budget through Redis, on the Redis server's clock; needs `ioredis` ^5).
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
import { createHash } from "node:crypto"
import * as Errors from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { RedisOptions as IORedisOptions, Redis } from "ioredis"

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
   * slot back.
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

/**
 * Options common to every store; every field has the default in `defaults`.
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** Slots per window; default 60. A positive integer. */
  readonly limit?: number | undefined
  /** The server's sliding window; default 60 seconds. Give the server's own figure: the margin is added to it. */
  readonly window?: Duration.DurationInput | undefined
  /**
   * Added to `window` when counting slots, for the time between taking a slot and the server counting the request;
   * default `max(1 second, 1 % of window)` (see `defaultMargin`). `0` counts exactly `window` (only for a limit
   * enforced in this process).
   */
  readonly margin?: Duration.DurationInput | undefined
  /** The longest `take` waits before failing with `RateLimited`; default 2 minutes (a full window and a cooldown). */
  readonly maxWait?: Duration.DurationInput | undefined
  /** The pause after a 429 without `Retry-After`; default 60 seconds (Zapier's cooldown). */
  readonly defaultPause?: Duration.DurationInput | undefined
  /** The budget `take()` and `pause()` use when called without a key; default `"zapier"`. */
  readonly key?: string | undefined
}

/**
 * The defaults: Zapier's published 60 requests per minute (counted over 61 s with the default margin), a 60 s
 * cooldown after a 429.
 * @since 0.1.0
 */
export const defaults = {
  limit: 60,
  window: Duration.minutes(1),
  maxWait: Duration.minutes(2),
  defaultPause: Duration.minutes(1),
  key: "zapier"
} as const

/**
 * The safety margin added to a `window` when none is given: `max(1 second, 1 % of window)`. One second covers the
 * time from taking a slot to the server counting the request (measured: up to ~250 ms across processes starting
 * at once, on loopback); the 1 % keeps long windows safe from clock-rate differences.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@effect-zapier/http"
 * import { Duration } from "effect"
 *
 * Duration.toMillis(RateLimiter.defaultMargin(Duration.minutes(1))) // 1000: counted over 61 s
 * Duration.toMillis(RateLimiter.defaultMargin(Duration.hours(1))) // 36000
 * ```
 * @since 0.1.0
 */
export const defaultMargin = (window: Duration.DurationInput): Duration.Duration =>
  Duration.max(Duration.seconds(1), Duration.times(Duration.decode(window), 0.01))

const PositiveDuration = Schema.DurationFromSelf.pipe(
  Schema.filter((d) => Duration.greaterThan(d, Duration.zero) || "must be longer than zero")
)
const NonNegativeDuration = Schema.DurationFromSelf.pipe(
  Schema.filter((d) => Duration.greaterThanOrEqualTo(d, Duration.zero) || "must not be negative")
)
const Settings = Schema.Struct({
  limit: Schema.Int.pipe(Schema.positive()),
  window: PositiveDuration,
  margin: NonNegativeDuration,
  maxWait: NonNegativeDuration,
  defaultPause: NonNegativeDuration,
  key: Schema.NonEmptyString
})
type Settings = typeof Settings.Type

const settings = (options: Options | undefined): Effect.Effect<Settings> =>
  Effect.suspend(() => {
    const o = options ?? {}
    const window = Duration.decode(o.window ?? defaults.window)
    return Schema.decodeUnknown(Settings)({
      limit: o.limit ?? defaults.limit,
      window,
      margin: o.margin !== undefined ? Duration.decode(o.margin) : defaultMargin(window),
      maxWait: Duration.decode(o.maxWait ?? defaults.maxWait),
      defaultPause: Duration.decode(o.defaultPause ?? defaults.defaultPause),
      key: o.key ?? defaults.key
    })
  }).pipe(
    Effect.catchTag("ParseError", (e) =>
      Effect.dieMessage(
        `Invalid RateLimiter options: ${ParseResult.TreeFormatter.formatErrorSync(e)}. ` +
          "Use a positive integer limit, a window longer than zero, a non-negative margin and non-negative waits."
      )
    )
  )

const toMillis = (d: Duration.Duration): number => (Duration.isFinite(d) ? Duration.toMillis(d) : Number.MAX_VALUE)

/** The window slots are counted over: the server's window plus the margin. */
const countedMillis = (s: Settings): number => toMillis(Duration.sum(s.window, s.margin))

const exceeded = (key: string, waitMillis: number) =>
  new Errors.RateLimited({ endpoint: `client-side budget "${key}"`, retryAfter: Duration.millis(waitMillis) })

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
 * const limiter = yield* RateLimiter.makeMemory({ limit: 10, window: "1 second" })
 * yield* limiter.take()
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

    const take = Effect.fn("RateLimiter.take")(function* (key?: string) {
      const k = key ?? s.key
      const start = yield* Clock.currentTimeMillis
      const budget = budgetOf(k)
      prune(budget, start, windowMillis)
      const at = earliest(budget, start, limit, windowMillis)
      if (at - start > maxWaitMillis) return yield* exceeded(k, at - start)
      const slot: Slot = { at }
      budget.slots.push(slot)
      if (at <= start) return
      yield* Effect.annotateCurrentSpan("rateLimiter.waitMillis", at - start)
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
 * const Limiter = RateLimiter.layerMemory({ limit: 60, window: "1 minute", maxWait: "2 minutes" })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: Options): Layer.Layer<RateLimiter> =>
  Layer.effect(RateLimiter, makeMemory(options))

// ---------------------------------------------------------------------------------------------------------------
// Redis store
// ---------------------------------------------------------------------------------------------------------------

/**
 * Options of the Redis store.
 * @since 0.1.0
 * @category options
 */
export interface RedisOptions extends Options {
  /**
   * Either a URL (`redis://user:password@host:6379/0`; keep it `Redacted` when it holds a password) and optional
   * ioredis options (a client is created and closed with the layer), or a client of your own (left open).
   */
  readonly redis:
    | { readonly url: string | Redacted.Redacted<string>; readonly options?: IORedisOptions | undefined }
    | { readonly client: Redis }
  /** Prefix of the Redis keys; every process sharing a budget must use the same; default `"effect-zapier:rate:"`. */
  readonly prefix?: string | undefined
  /**
   * The longest one Redis round trip may take (and the longest the layer waits for the first connection); default
   * 1 second. Past it, or while Redis is unreachable, takes and pauses use this process's in-memory budget (with a
   * logged warning) until Redis answers again.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

// The budget of one key: KEYS[1] a sorted set of slots (member: a zero-padded sequence number, score: the slot's
// time in ms on the Redis server's clock), KEYS[2] the pause (the end of the pause in ms, with PX), KEYS[3] the
// sequence. `earliest` is the same rule as the memory store's.
const prelude = `
local slots, pauseKey, seqKey = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function pausedUntil()
  return tonumber(redis.call('GET', pauseKey) or '0')
end
local function earliest(limit, window, paused)
  local at = now
  if paused > at then at = paused end
  local last = redis.call('ZRANGE', slots, -1, -1, 'WITHSCORES')
  if last[2] then
    local l = tonumber(last[2])
    if l > at then at = l end
  end
  local n = redis.call('ZCARD', slots)
  if n >= limit then
    local e = redis.call('ZRANGE', slots, n - limit, n - limit, 'WITHSCORES')
    local b = tonumber(e[2]) + window
    if b > at then at = b end
  end
  return at
end
local function keep(at, window)
  local ttl = math.floor(at - now + window)
  redis.call('PEXPIRE', slots, ttl)
  redis.call('PEXPIRE', seqKey, ttl)
end
`

// ARGV: limit, window ms, max wait ms, horizon ms. Returns { outcome, wait ms, member }: outcome 1 = reserved (the
// slot is `wait` ms from now), 0 = the slot is further than the max wait, 2 = the slot is further than the horizon:
// nothing is reserved, ask again in `wait` ms (when the slot it would follow has been used).
const reserveScript = `${prelude}
local limit, window, maxWait, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - window)
local at = earliest(limit, window, pausedUntil())
if at - now > maxWait then
  return { 0, at - now, '' }
end
if at - now > horizon then
  return { 2, at - now - horizon, '' }
end
local member = string.format('%016d', redis.call('INCR', seqKey))
redis.call('ZADD', slots, at, member)
keep(at, window)
return { 1, at - now, member }
`

// ARGV: member. Returns { found (1/0), wait ms }: how long the slot still is from now (it moves with a pause).
const checkScript = `${prelude}
local score = redis.call('ZSCORE', slots, ARGV[1])
if not score then
  return { 0, 0 }
end
return { 1, tonumber(score) - now }
`

// ARGV: pause ms, limit, window ms. Reschedules the pending slots, in their order, after the pause.
const pauseScript = `${prelude}
local pause, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local untilMs = now + pause
if pause <= 0 or pausedUntil() >= untilMs then
  return 0
end
redis.call('SET', pauseKey, untilMs, 'PX', pause)
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - window)
local pending = redis.call('ZRANGEBYSCORE', slots, '(' .. now, '+inf')
if #pending == 0 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', slots, '(' .. now, '+inf')
local at = now
for _, member in ipairs(pending) do
  at = earliest(limit, window, untilMs)
  redis.call('ZADD', slots, at, member)
end
keep(at, window)
return #pending
`

// ARGV: member. Gives a slot back.
const releaseScript = `redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`

interface Script {
  readonly source: string
  readonly sha: string
}
const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") })
const scripts = {
  reserve: script(reserveScript),
  check: script(checkScript),
  pause: script(pauseScript),
  release: script(releaseScript)
}

const Reserved = Schema.Tuple(Schema.Literal(0, 1, 2), Schema.Number, Schema.String)
const Checked = Schema.Tuple(Schema.Literal(0, 1), Schema.Number)

/** Why Redis could not be used (never the URL: it may hold a password). */
class StoreFailure extends Data.TaggedError("StoreFailure")<{ readonly reason: string }> {}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "unknown error"

/**
 * A limiter whose budget lives in Redis, shared by every process using the same `prefix` (and key). Needs the
 * optional peer dependency `ioredis` ^5 and Redis 5 or later. Times are the Redis server's, so the processes'
 * clocks need not agree.
 *
 * A waiter reserves its slot in Redis only once that slot is at most one counted window (`window` + `margin`)
 * away; until then it waits in this process, first come, first served, and asks again when the slot before it has
 * been used. So the reservations of a process that dies without cleaning up (`kill -9`, a lost host) cover at
 * most one window: the budget is whole again one window after the crash.
 *
 * While Redis is unreachable (or slower than `timeout`), each process falls back to an in-memory budget with the
 * same options and logs a warning; it goes back to Redis as soon as Redis answers.
 *
 * @example
 * ```ts
 * const limiter = yield* RateLimiter.makeRedis({
 *   redis: { url: Redacted.make("redis://127.0.0.1:6379") },
 *   limit: 150,
 *   window: "1 minute"
 * })
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const makeRedis = (options: RedisOptions): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function* () {
    const s = yield* settings(options)
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(1))
    const prefix = options.prefix ?? "effect-zapier:rate:"
    const limit = s.limit
    const windowMillis = countedMillis(s)
    const maxWaitMillis = toMillis(s.maxWait)
    const fallback = yield* makeMemory(options)
    // One reserving waiter per key at a time in this process (the others queue here, in arrival order), so that
    // waiters beyond the horizon do not all poll Redis.
    const gates = new Map<string, Effect.Semaphore>()
    const gateOf = (key: string): Effect.Semaphore => {
      let gate = gates.get(key)
      if (gate === undefined) {
        gate = Effect.unsafeMakeSemaphore(1)
        gates.set(key, gate)
      }
      return gate
    }
    const redis = yield* connect(options.redis, timeout)
    const degraded = yield* Ref.make(false)

    // Hash tags keep one budget's keys in one Redis Cluster slot.
    const keysOf = (key: string) => [`${prefix}{${key}}:slots`, `${prefix}{${key}}:pause`, `${prefix}{${key}}:seq`]

    const run = (which: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) =>
      Effect.tryPromise({
        try: async () => {
          try {
            return await redis.evalsha(which.sha, keys.length, ...keys, ...args)
          } catch (error) {
            if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
              return await redis.eval(which.source, keys.length, ...keys, ...args)
            }
            throw error
          }
        },
        catch: (cause) => new StoreFailure({ reason: describe(cause) })
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new StoreFailure({ reason: `no answer within ${Duration.format(timeout)}` })
        })
      )

    const call = <A, I>(
      schema: Schema.Schema<A, I>,
      which: Script,
      keys: ReadonlyArray<string>,
      args: ReadonlyArray<string | number>
    ): Effect.Effect<A, StoreFailure> =>
      Effect.suspend(() =>
        redis.status === "ready"
          ? run(which, keys, args)
          : Effect.fail(new StoreFailure({ reason: `the connection is ${redis.status}` }))
      ).pipe(
        Effect.flatMap((raw) =>
          Schema.decodeUnknown(schema)(raw).pipe(
            Effect.mapError(
              (e) =>
                new StoreFailure({
                  reason: `unexpected script result: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
                })
            )
          )
        ),
        Effect.tap(() =>
          Effect.whenEffect(
            Effect.logInfo("Redis rate-limit store is reachable again; the budget is shared again"),
            Ref.getAndSet(degraded, false)
          )
        ),
        Effect.tapError((e) =>
          Effect.whenEffect(
            Effect.logWarning(
              `Redis rate-limit store unavailable (${e.reason}); this process uses its own in-memory budget until Redis answers`
            ),
            Effect.map(Ref.getAndSet(degraded, true), (was) => !was)
          )
        )
      )

    const waitFor = (key: string, keys: ReadonlyArray<string>, member: string, firstWait: number, start: number) =>
      Effect.gen(function* () {
        let wait = firstWait
        while (wait > 0) {
          yield* Effect.sleep(Duration.millis(wait))
          // Redis unreachable: the slot was ours and its time has come, so go.
          const checked = yield* call(Checked, scripts.check, keys, [member]).pipe(
            Effect.orElseSucceed(() => [0, 0] as const)
          )
          wait = checked[0] === 1 ? checked[1] : 0
          const elapsed = (yield* Clock.currentTimeMillis) - start
          if (wait > 0 && elapsed + wait > maxWaitMillis) {
            yield* call(Schema.Unknown, scripts.release, keys, [member]).pipe(Effect.ignore)
            return yield* exceeded(key, wait)
          }
        }
      }).pipe(Effect.onInterrupt(() => call(Schema.Unknown, scripts.release, keys, [member]).pipe(Effect.ignore)))

    type Reservation =
      | { readonly _tag: "Reserved"; readonly wait: number; readonly member: string }
      | { readonly _tag: "Unavailable" }

    /**
     * Reserves a slot at most one counted window ahead, asking again (after the wait Redis names) while the earliest
     * slot is further than that; fails once the slot would be further than what is left of `maxWait`. Runs
     * uninterruptibly but for its sleeps (`restore`), so a slot reserved in Redis is never lost to an interruption
     * between the script and this fiber.
     */
    const reserve = (
      key: string,
      keys: ReadonlyArray<string>,
      start: number,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
    ): Effect.Effect<Reservation, Errors.RateLimited> =>
      Effect.gen(function* () {
        for (;;) {
          const left = maxWaitMillis - ((yield* Clock.currentTimeMillis) - start)
          const reserved = yield* call(Reserved, scripts.reserve, keys, [
            limit,
            windowMillis,
            Math.max(0, left),
            windowMillis
          ]).pipe(Effect.option)
          if (reserved._tag === "None") return { _tag: "Unavailable" } as const
          const [outcome, wait, member] = reserved.value
          if (outcome === 1) return { _tag: "Reserved", wait, member } as const
          if (outcome === 0) return yield* exceeded(key, maxWaitMillis - left + wait)
          yield* restore(Effect.sleep(Duration.millis(Math.max(1, wait))))
        }
      })

    /** Waits for this process's turn to reserve (counted against `maxWait`), then reserves. */
    const gated = (key: string, keys: ReadonlyArray<string>, start: number) => {
      const gate = gateOf(key)
      const turn =
        Number.isFinite(maxWaitMillis) && maxWaitMillis < 2 ** 31
          ? Effect.timeoutOption(gate.take(1), Duration.millis(maxWaitMillis))
          : Effect.asSome(gate.take(1))
      return Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(turn), (permit) =>
          Option.isNone(permit)
            ? exceeded(key, maxWaitMillis)
            : reserve(key, keys, start, restore).pipe(Effect.ensuring(gate.release(1)))
        )
      )
    }

    const take = Effect.fn("RateLimiter.take")(function* (key?: string) {
      const k = key ?? s.key
      const keys = keysOf(k)
      const start = yield* Clock.currentTimeMillis
      const reservation = yield* gated(k, keys, start)
      if (reservation._tag === "Unavailable") return yield* fallback.take(k)
      if (reservation.wait <= 0) return
      yield* Effect.annotateCurrentSpan("rateLimiter.waitMillis", reservation.wait)
      yield* waitFor(k, keys, reservation.member, reservation.wait, start)
    })

    const pause = Effect.fn("RateLimiter.pause")(function* (
      duration: Duration.DurationInput | undefined,
      key?: string
    ) {
      const k = key ?? s.key
      const millis = Math.round(toMillis(duration === undefined ? s.defaultPause : Duration.decode(duration)))
      yield* Effect.annotateCurrentSpan("rateLimiter.pauseMillis", millis)
      // The local budget pauses too, in case Redis goes away before the pause is over.
      yield* fallback.pause(Duration.millis(millis), k)
      yield* call(Schema.Number, scripts.pause, keysOf(k), [millis, limit, windowMillis]).pipe(Effect.ignore)
    })

    return RateLimiter.of({ take, pause })
  })

const connect = (target: RedisOptions["redis"], timeout: Duration.Duration): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.gen(function* () {
    const redis = "client" in target ? target.client : yield* open(target, timeout)
    yield* Effect.async<void>((resume) => {
      if (redis.status === "ready") return resume(Effect.void)
      const onReady = () => resume(Effect.void)
      redis.once("ready", onReady)
      return Effect.sync(() => redis.off("ready", onReady))
    }).pipe(
      Effect.timeout(timeout),
      Effect.catchTag("TimeoutException", () =>
        Effect.logWarning(
          `Redis rate-limit store not reachable within ${Duration.format(timeout)}; this process uses its own ` +
            "in-memory budget until Redis answers"
        )
      )
    )
    return redis
  })

/** A client of the layer's own, closed with its scope. */
const open = (
  target: { readonly url: string | Redacted.Redacted<string>; readonly options?: IORedisOptions | undefined },
  timeout: Duration.Duration
): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { Redis } = yield* Effect.tryPromise(() => import("ioredis")).pipe(
      Effect.orDieWith(
        () => new Error("RateLimiter.layerRedis needs the package ioredis ^5: add it to your dependencies.")
      )
    )
    const url = Redacted.isRedacted(target.url) ? Redacted.value(target.url) : target.url
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, ...target.options })
        // Errors surface as failed commands (and the warning); without a listener ioredis prints them.
        client.on("error", () => {})
        return client
      }),
      (client) =>
        client.status === "ready"
          ? Effect.tryPromise(() => client.quit()).pipe(
              Effect.timeout(timeout),
              Effect.orElse(() => Effect.sync(() => client.disconnect()))
            )
          : Effect.sync(() => client.disconnect())
    )
  })

/**
 * The Redis-backed limiter as a layer (see `makeRedis`).
 *
 * @example
 * ```ts
 * const Limiter = RateLimiter.layerRedis({
 *   redis: { url: Redacted.make(process.env.REDIS_URL ?? "redis://127.0.0.1:6379") },
 *   limit: 150,
 *   window: "1 minute"
 * })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions): Layer.Layer<RateLimiter> =>
  Layer.scoped(RateLimiter, makeRedis(options))
