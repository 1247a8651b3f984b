/**
 * The Redis store of the rate limiter: several processes share one budget through Redis, on the Redis server's
 * clock (needs the optional peer `ioredis` ^5 and Redis 5 or later). A module of its own, so `node:crypto` and the
 * Redis code load only for those who use it; `RateLimiter.layerMemory` is the one-process store.
 *
 * @example
 * ```ts
 * import { RateLimiterRedis, ZapierHttp } from "@effect-zapier/http"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer, Redacted } from "effect"
 *
 * const options: ZapierHttp.Options = {
 *   clientId: "partner-client",
 *   clientSecret: Redacted.make(process.env.ZAPIER_CLIENT_SECRET ?? ""),
 *   signingKey: Redacted.make(process.env.ZAPIER_SIGNING_KEY ?? ""),
 *   keyId: "key-2026-03",
 *   issuer: "https://partner.example"
 * }
 * // One budget for the fleet: 150 requests/min per partner, shared through Redis.
 * const ZapierLive = ZapierHttp.layer(options).pipe(
 *   Layer.provide(RateLimiterRedis.layer({ redis: { url: Redacted.make("redis://127.0.0.1:6379") }, limit: 150 })),
 *   Layer.provide(NodeHttpClient.layerUndici)
 * )
 * ```
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import type * as Errors from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
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
import type { Options as CommonOptions } from "./internal/limiter.js"
import { countedMillis, exceeded, settings, toMillis } from "./internal/limiter.js"
import { makeMemory, RateLimiter, type Service } from "./RateLimiter.js"

/**
 * Options of the Redis store.
 * @since 0.1.0
 * @category options
 */
export interface Options extends CommonOptions {
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
 * import { RateLimiterRedis } from "@effect-zapier/http"
 * import { Effect, Redacted } from "effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const limiter = yield* RateLimiterRedis.make({
 *       redis: { url: Redacted.make("redis://127.0.0.1:6379") },
 *       limit: 150,
 *       window: "1 minute"
 *     })
 *     yield* limiter.take()
 *   })
 * )
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, never, Scope.Scope> =>
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

    /**
     * Waits for this process's turn to reserve (counted against `maxWait`), reserves, and waits for the slot.
     * Interruptible only while waiting (for the turn, between two asks, for the slot), and a reserved slot is
     * released on interruption, so no reservation outlives its waiter. `true` when Redis could not be used.
     */
    const reserveAndWait = (key: string, keys: ReadonlyArray<string>, start: number) => {
      const gate = gateOf(key)
      const turn =
        Number.isFinite(maxWaitMillis) && maxWaitMillis < 2 ** 31
          ? Effect.timeoutOption(gate.take(1), Duration.millis(maxWaitMillis))
          : Effect.asSome(gate.take(1))
      return Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(turn), (permit) =>
          Option.isNone(permit)
            ? exceeded(key, maxWaitMillis)
            : reserve(key, keys, start, restore).pipe(
                Effect.ensuring(gate.release(1)),
                Effect.flatMap((reservation) => {
                  if (reservation._tag === "Unavailable") return Effect.succeed(true)
                  if (reservation.wait <= 0) return Effect.succeed(false)
                  return Effect.annotateCurrentSpan("rateLimiter.waitMillis", reservation.wait).pipe(
                    Effect.zipRight(restore(waitFor(key, keys, reservation.member, reservation.wait, start))),
                    Effect.as(false)
                  )
                })
              )
        )
      )
    }

    const take = Effect.fn("RateLimiter.take")(function* (key?: string) {
      const k = key ?? s.key
      const start = yield* Clock.currentTimeMillis
      const unavailable = yield* reserveAndWait(k, keysOf(k), start)
      if (unavailable) return yield* fallback.take(k)
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

const connect = (target: Options["redis"], timeout: Duration.Duration): Effect.Effect<Redis, never, Scope.Scope> =>
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
      Effect.orDieWith(() => new Error("RateLimiterRedis needs the package ioredis ^5: add it to your dependencies."))
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
 * The Redis-backed limiter as a layer (see `make`).
 *
 * @example
 * ```ts
 * import { RateLimiterRedis } from "@effect-zapier/http"
 * import { Redacted } from "effect"
 *
 * const Limiter = RateLimiterRedis.layer({
 *   redis: { url: Redacted.make(process.env.REDIS_URL ?? "redis://127.0.0.1:6379") },
 *   limit: 150,
 *   window: "1 minute"
 * })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RateLimiter> => Layer.scoped(RateLimiter, make(options))
