import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { Redis } from "ioredis"
import { RateLimiter, RateLimiterRedis } from "../src/index.js"
import { waitUntil } from "./kit.js"
import { redisAvailability, redisUrl } from "./redis.js"

/** The most slots found in any window `(t - window, t]`. */
const maxInAnyWindow = (times: ReadonlyArray<number>, windowMillis: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let max = 0
  let first = 0
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[first] <= sorted[i] - windowMillis) first++
    max = Math.max(max, i - first + 1)
  }
  return max
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** Takes a slot and records when it was granted. */
const timedTake = (limiter: RateLimiter.Service, times: Array<number>, key?: string) =>
  limiter.take(key).pipe(
    Effect.zipRight(Clock.currentTimeMillis),
    Effect.tap((t) => Effect.sync(() => times.push(t)))
  )

describe("RateLimiter (memory, TestClock)", () => {
  it.effect("a burst is served limit by limit, one window apart", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({ limit: 5, window: "10 seconds", margin: 0, maxWait: "1 hour" })
      const times: Array<number> = []
      const fibers = yield* Effect.forEach(range(23), () => Effect.fork(timedTake(limiter, times)))
      yield* TestClock.adjust("39 seconds")
      assert.strictEqual(times.length, 20)
      yield* TestClock.adjust("1 second")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(
        [...times].sort((a, b) => a - b),
        range(23).map((i) => Math.floor(i / 5) * 10_000)
      )
      assert.strictEqual(maxInAnyWindow(times, 10_000), 5)
    })
  )

  it.effect("staggered arrivals: no window ever holds more than the limit, and nobody waits needlessly", () =>
    Effect.gen(function* () {
      const limit = 10
      const windowMillis = 10_000
      const limiter = yield* RateLimiter.makeMemory({
        limit,
        window: Duration.millis(windowMillis),
        margin: 0,
        maxWait: "1 hour"
      })
      // A deterministic pseudo-random arrival pattern: bursts and gaps over 5 minutes.
      let seed = 42
      const random = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
        return seed / 2_147_483_648
      }
      const arrivals = range(200)
        .map(() => Math.floor(random() * 300_000))
        .sort((a, b) => a - b)
      const granted: Array<{ readonly arrived: number; readonly at: number }> = []
      const fibers: Array<Fiber.RuntimeFiber<number, unknown>> = []
      for (const arrival of arrivals) {
        const now = yield* Clock.currentTimeMillis
        if (arrival > now) yield* TestClock.adjust(Duration.millis(arrival - now))
        fibers.push(
          yield* Effect.fork(
            limiter.take().pipe(
              Effect.zipRight(Clock.currentTimeMillis),
              Effect.tap((at) => Effect.sync(() => granted.push({ arrived: arrival, at })))
            )
          )
        )
      }
      yield* TestClock.adjust("1 hour")
      yield* Fiber.joinAll(fibers)
      assert.strictEqual(granted.length, 200)
      const times = granted.map((g) => g.at)
      assert.isAtMost(maxInAnyWindow(times, windowMillis), limit)
      // Work conserving: whoever waited did so because the window ending at its slot was full.
      for (const g of granted) {
        if (g.at > g.arrived) {
          const inClosedWindow = times.filter((t) => t >= g.at - windowMillis && t <= g.at).length
          assert.isAtLeast(inClosedWindow, limit + 1, `a slot at ${g.at} (arrived ${g.arrived}) waited needlessly`)
        }
      }
      // Some did have to wait (the pattern is dense enough to hit the limit).
      assert.isTrue(granted.some((g) => g.at > g.arrived))
    })
  )

  it.effect("waiters are served first come, first served", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({ limit: 1, window: "1 second", margin: 0, maxWait: "1 hour" })
      const order: Array<readonly [number, number]> = []
      const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (const i of range(10)) {
        fibers.push(
          yield* Effect.fork(
            limiter.take().pipe(
              Effect.zipRight(Clock.currentTimeMillis),
              Effect.flatMap((t) => Effect.sync(() => void order.push([i, t])))
            )
          )
        )
        yield* Effect.yieldNow()
      }
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(
        order,
        range(10).map((i) => [i, i * 1000] as const)
      )
    })
  )

  it.effect("100 pollers on 10 requests/s: none starves, each gets its share (G9)", () =>
    Effect.gen(function* () {
      const pollers = 100
      const perSecond = 10
      const limiter = yield* RateLimiter.makeMemory({
        limit: perSecond,
        window: "1 second",
        margin: 0,
        maxWait: "1 hour"
      })
      const polls = range(pollers).map(() => [] as Array<number>)
      const all: Array<number> = []
      const poller = (i: number) =>
        Effect.forever(
          limiter.take().pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.tap((t) =>
              Effect.sync(() => {
                polls[i].push(t)
                all.push(t)
              })
            )
          )
        )
      const fibers = yield* Effect.forEach(range(pollers), (i) => Effect.fork(poller(i)))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.interruptAll(fibers)
      // 60 s at 10/s, the first window included: every slot of the budget used, none beyond it.
      assert.strictEqual(all.length, 60 * perSecond + perSecond)
      assert.strictEqual(maxInAnyWindow(all, 1000), perSecond)
      const bound = (pollers / perSecond) * 1000 // N / budget
      for (const times of polls) {
        assert.isAtLeast(times.length, 6)
        assert.isAtMost(times.length, 7)
        for (let j = 1; j < times.length; j++) assert.isAtMost(times[j] - times[j - 1], bound)
      }
    })
  )

  it.effect("a pause holds back everyone sharing the budget, pending waiters included, for its duration", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({ limit: 3, window: "10 seconds", margin: 0, maxWait: "1 hour" })
      const times: Array<number> = []
      yield* Effect.forEach(range(3), () => timedTake(limiter, times))
      assert.deepStrictEqual(times, [0, 0, 0])
      const pending = yield* Effect.fork(timedTake(limiter, times)) // would be due at 10 s
      yield* TestClock.adjust("1 second")
      yield* limiter.pause("20 seconds") // a 429 with Retry-After: 20
      const later = yield* Effect.forEach(range(3), () => Effect.fork(timedTake(limiter, times)))
      // another budget is not paused
      const other: Array<number> = []
      yield* timedTake(limiter, other, "other")
      assert.deepStrictEqual(other, [1000])
      yield* TestClock.adjust("19999 millis")
      assert.strictEqual(times.length, 3, "nobody got through during the pause")
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(times.slice(3), [21_000, 21_000, 21_000])
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.joinAll([pending, ...later])
      assert.deepStrictEqual(times.slice(3), [21_000, 21_000, 21_000, 31_000])
      // a shorter pause does not shorten the one in place; a missing Retry-After pauses for the default 60 s
      yield* limiter.pause(undefined)
      yield* limiter.pause("1 second")
      const afterDefault = yield* Effect.fork(timedTake(limiter, times))
      yield* TestClock.adjust("59999 millis")
      assert.strictEqual(times.length, 7)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(afterDefault)
      assert.strictEqual(times[7], 31_000 + 60_000)
    })
  )

  it.effect("a wait beyond maxWait fails at once with RateLimited and takes no slot", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({
        limit: 1,
        window: "10 seconds",
        margin: 0,
        maxWait: "15 seconds"
      })
      const times: Array<number> = []
      yield* timedTake(limiter, times)
      const second = yield* Effect.fork(timedTake(limiter, times)) // 10 s: within maxWait
      yield* Effect.yieldNow()
      const third = yield* Effect.flip(limiter.take())
      assert.strictEqual(third._tag, "RateLimited")
      assert.strictEqual(Duration.toMillis(third.retryAfter), 20_000)
      assert.include(third.message, "retry after")
      assert.strictEqual(yield* Clock.currentTimeMillis, 0)
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(second)
      // The failed take reserved nothing: the next slot is 20 s, not 30 s.
      const fourth = yield* Effect.fork(timedTake(limiter, times))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fourth)
      assert.deepStrictEqual(times, [0, 10_000, 20_000])
    })
  )

  it.effect("a pause that pushes a waiter past maxWait fails it with RateLimited", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({
        limit: 1,
        window: "10 seconds",
        margin: 0,
        maxWait: "15 seconds"
      })
      yield* limiter.take()
      const waiter = yield* Effect.fork(limiter.take())
      yield* Effect.yieldNow()
      yield* limiter.pause("30 seconds")
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      assert.strictEqual(error?._tag, "Some")
      if (error?._tag === "Some") {
        assert.strictEqual(error.value._tag, "RateLimited")
        assert.strictEqual(Duration.toMillis(error.value.retryAfter), 20_000)
      }
    })
  )

  it.effect("interrupting a waiter gives its slot back", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({ limit: 1, window: "10 seconds", margin: 0, maxWait: "1 hour" })
      const times: Array<number> = []
      yield* timedTake(limiter, times)
      const abandoned = yield* Effect.fork(timedTake(limiter, times))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(abandoned)
      const next = yield* Effect.fork(timedTake(limiter, times))
      yield* TestClock.adjust("9 seconds")
      yield* Fiber.join(next)
      assert.deepStrictEqual(times, [0, 10_000])
    })
  )

  it.effect("keys have separate budgets", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory({ limit: 2, window: "1 minute", margin: 0, key: "partner" })
      const times: Array<number> = []
      yield* timedTake(limiter, times)
      yield* timedTake(limiter, times, "partner")
      yield* timedTake(limiter, times, "ip")
      yield* timedTake(limiter, times, "ip")
      const third = yield* Effect.fork(timedTake(limiter, times, "partner"))
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(times.length, 4)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(third)
      assert.deepStrictEqual(times, [0, 0, 0, 0, 60_000])
    })
  )

  it.effect("the defaults are Zapier's 60 requests per minute, counted over 61 s (the default margin)", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.makeMemory()
      const times: Array<number> = []
      const fibers = yield* Effect.forEach(range(61), () => Effect.fork(timedTake(limiter, times)))
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual(times.length, 60)
      yield* TestClock.adjust("1 second")
      yield* Fiber.joinAll(fibers)
      assert.strictEqual(times[60], 61_000)
    })
  )

  it.effect("every limiter adds a safety margin to the window by default: max(1 s, 1 %), configurable", () =>
    Effect.gen(function* () {
      assert.strictEqual(Duration.toMillis(RateLimiter.defaultMargin("10 seconds")), 1_000)
      assert.strictEqual(Duration.toMillis(RateLimiter.defaultMargin("1 minute")), 1_000)
      assert.strictEqual(Duration.toMillis(RateLimiter.defaultMargin("1 hour")), 36_000)
      const granted = (options: RateLimiter.Options) =>
        Effect.gen(function* () {
          const limiter = yield* RateLimiter.makeMemory(options)
          const times: Array<number> = []
          const start = yield* Clock.currentTimeMillis
          const fibers = yield* Effect.forEach(range(11), () => Effect.fork(timedTake(limiter, times)))
          yield* TestClock.adjust("30 seconds")
          yield* Fiber.joinAll(fibers)
          return times.map((t) => t - start).sort((a, b) => a - b)
        })
      // The server's 10 per 10 s: the 11th slot comes a margin after the window.
      assert.strictEqual((yield* granted({ limit: 10, window: "10 seconds" }))[10], 11_000)
      assert.strictEqual((yield* granted({ limit: 10, window: "10 seconds", margin: "2500 millis" }))[10], 12_500)
      assert.strictEqual((yield* granted({ limit: 10, window: "10 seconds", margin: 0 }))[10], 10_000)
    })
  )

  it.effect("invalid options are a defect that says what is wrong", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(RateLimiter.makeMemory({ limit: 0 }))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const pretty = Cause.pretty(exit.cause)
        assert.include(pretty, "Invalid RateLimiter options")
        assert.include(pretty, "limit")
      }
      const window = yield* Effect.exit(RateLimiter.makeMemory({ window: 0 }))
      assert.isTrue(Exit.isFailure(window) && Cause.pretty(window.cause).includes("window"))
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------------------------

const { unavailable: redisUnavailable, skip: skipRedis } = await redisAvailability("the Redis rate limiter tests")

/** A key prefix of its own for one test, so runs (and tests) never share a budget. */
const uniquePrefix = () => `effect-zapier-test:${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}:`

/** A plain client to look at the keys. */
const inspector = Effect.acquireRelease(
  Effect.sync(() => new Redis(redisUrl)),
  (client) => Effect.promise(() => client.quit())
)

describe.skipIf(skipRedis)("RateLimiter (Redis, real time)", () => {
  it("Redis is reachable", () => {
    assert.isUndefined(redisUnavailable)
  })

  it.scopedLive("two limiters with their own Redis clients (two processes) stay within one budget", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const options = {
        redis: { url: Redacted.make(redisUrl) },
        prefix,
        limit: 10,
        window: "1 second",
        margin: 0,
        maxWait: "10 seconds"
      } as const
      const a = yield* RateLimiterRedis.make(options)
      const b = yield* RateLimiterRedis.make(options)
      const redis = yield* inspector
      // The slot times Redis granted (its own clock), read right after each take: a take's own slot stays in the set
      // for a whole window, so the union of the snapshots holds every slot. These, not the times the fibers resumed
      // (late on a busy machine), are what the shared budget promises.
      const granted = new Map<string, number>()
      const snapshot = Effect.promise(() => redis.zrange(`${prefix}{zapier}:slots`, 0, -1, "WITHSCORES")).pipe(
        Effect.tap((flat) =>
          Effect.sync(() => {
            for (let i = 0; i + 1 < flat.length; i += 2) granted.set(flat[i]!, Number(flat[i + 1]))
          })
        )
      )
      yield* Effect.forEach(range(30), (i) => (i % 2 === 0 ? a : b).take().pipe(Effect.zipRight(snapshot)), {
        concurrency: "unbounded"
      })
      assert.strictEqual(granted.size, 30, "every take reserved exactly one slot in the shared set")
      const first = Math.min(...granted.values())
      const times = [...granted.values()].map((t) => t - first)
      // One budget's worth in the first window (two separate budgets would grant 20; the takes may reach Redis
      // spread out on a busy machine, so the whole window is counted, not only its start)...
      assert.strictEqual(times.filter((t) => t < 1000).length, 10)
      // ...30 takes at 10 per second need two more windows...
      assert.isAtLeast(Math.max(...times), 2000)
      assert.isAtMost(Math.max(...times), 4000)
      // ...and no window of the shared budget ever holds more than its limit.
      assert.isAtMost(maxInAnyWindow(times, 1000), 10)
    })
  )

  it.scopedLive("a pause through one limiter holds back the other, pending slots included", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const options = {
        redis: { url: Redacted.make(redisUrl) },
        prefix,
        limit: 1,
        window: "1 second",
        margin: 0,
        maxWait: "10 seconds"
      } as const
      const a = yield* RateLimiterRedis.make(options)
      const b = yield* RateLimiterRedis.make(options)
      const redis = yield* inspector
      const start = yield* Clock.currentTimeMillis
      yield* a.take()
      const pending = yield* Effect.fork(
        b.take().pipe(
          Effect.zipRight(Clock.currentTimeMillis),
          Effect.map((t) => t - start)
        )
      )
      // Waits until b's slot is reserved in Redis (the set holds both slots), then pauses at once: the slot is due
      // a window (1 s) after a's, so a busy machine has that long to get the pause in before it is served.
      yield* waitUntil(
        Effect.promise(() => redis.zcard(`${prefix}{zapier}:slots`)),
        (n) => n >= 2,
        "b's slot reserved"
      )
      yield* a.pause("1500 millis")
      const ttl = yield* Effect.promise(() => redis.pttl(`${prefix}{zapier}:pause`))
      assert.isAbove(ttl, 0)
      assert.isAtMost(ttl, 1500)
      const fresh = yield* b.take().pipe(
        Effect.zipRight(Clock.currentTimeMillis),
        Effect.map((t) => t - start)
      )
      const moved = yield* Fiber.join(pending)
      // The pending slot (due at ~1 s) moved after the pause (≥ 1.5 s from the start); the fresh take queued behind
      // it, a window later (≥ 2.5 s). The times are read when the fibers resume, which a busy machine makes late but
      // never early, so these bounds (50 ms for the two clocks' rounding) hold however loaded it is.
      assert.isAtLeast(moved, 1450)
      assert.isAtLeast(fresh, 2450)
      assert.isAtLeast(fresh, moved)
    })
  )

  it.scopedLive("waiters reserve at most one window ahead in Redis, and are served in arrival order", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const limiter = yield* RateLimiterRedis.make({
        redis: { url: Redacted.make(redisUrl) },
        prefix,
        limit: 2,
        window: "300 millis",
        margin: 0,
        maxWait: "10 seconds"
      })
      const order: Array<number> = []
      const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (const i of range(10)) {
        fibers.push(
          yield* Effect.fork(
            Effect.zipRight(
              limiter.take(),
              Effect.sync(() => void order.push(i))
            )
          )
        )
        yield* Effect.sleep("2 millis")
      }
      // While 10 waiters are queued for 5 windows, Redis holds slots at most one window ahead (a process that dies
      // now leaves at most that much unused).
      const redis = yield* inspector
      let furthest = 0
      for (const _ of range(12)) {
        // TIME and ZRANGE in one MULTI, so no slot is reserved between them (two round trips apart on a busy
        // machine, a slot reserved in between would look further ahead than it is).
        const replies = yield* Effect.promise(() =>
          redis.multi().time().zrange(`${prefix}{zapier}:slots`, -1, -1, "WITHSCORES").exec()
        )
        const [seconds, micros] = (replies?.[0]?.[1] ?? ["0", "0"]) as [string, string]
        const last = (replies?.[1]?.[1] ?? []) as Array<string>
        const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
        if (last[1] !== undefined) furthest = Math.max(furthest, Number(last[1]) - now)
        yield* Effect.sleep("100 millis")
      }
      yield* Fiber.joinAll(fibers)
      assert.isAbove(furthest, 0)
      assert.isAtMost(furthest, 350)
      // Two slots per window: waiters 2k and 2k + 1 share a window (which of the two finishes first is a race).
      assert.deepStrictEqual(
        range(5).map((k) => [...order.slice(2 * k, 2 * k + 2)].sort((a, b) => a - b)),
        range(5).map((k) => [2 * k, 2 * k + 1])
      )
    })
  )

  it.scopedLive("a wait beyond maxWait fails with RateLimited across processes", () =>
    Effect.gen(function* () {
      const options = {
        redis: { url: Redacted.make(redisUrl) },
        prefix: uniquePrefix(),
        limit: 2,
        // A long window, so the third take still finds both slots taken however late a busy machine makes it.
        window: "10 seconds",
        margin: 0,
        maxWait: "200 millis"
      } as const
      const a = yield* RateLimiterRedis.make(options)
      const b = yield* RateLimiterRedis.make(options)
      yield* a.take()
      yield* b.take()
      const error = yield* Effect.flip(a.take())
      assert.strictEqual(error._tag, "RateLimited")
      assert.isAbove(Duration.toMillis(error.retryAfter), 5_000)
      assert.isAtMost(Duration.toMillis(error.retryAfter), 10_000)
    })
  )

  it.scopedLive("keys expire once the window is over", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const limiter = yield* RateLimiterRedis.make({
        redis: { url: Redacted.make(redisUrl) },
        prefix,
        // Long enough that the keys are still there when looked at on a busy machine.
        limit: 5,
        window: "2 seconds",
        margin: 0
      })
      const redis = yield* inspector
      yield* limiter.take()
      yield* limiter.pause("1 second")
      const keys = yield* Effect.promise(() => redis.keys(`${prefix}*`))
      assert.sameMembers(keys, [`${prefix}{zapier}:slots`, `${prefix}{zapier}:seq`, `${prefix}{zapier}:pause`])
      // Every key carries its expiry (Redis removes it on its own clock, whatever this process does meanwhile),
      // none beyond the window...
      for (const key of keys) {
        const ttl = yield* Effect.promise(() => redis.pttl(key))
        assert.isAbove(ttl, 0, key)
        assert.isAtMost(ttl, 2_000, key)
      }
      // ...and they are gone once it is over (the guard only catches keys that never expire).
      yield* waitUntil(
        Effect.promise(() => redis.keys(`${prefix}*`)),
        (left) => left.length === 0,
        "the keys expired"
      )
    })
  )

  it.scopedLive("a client of your own is used as is and left open", () =>
    Effect.gen(function* () {
      const client = yield* inspector
      yield* Effect.scoped(
        Effect.gen(function* () {
          const limiter = yield* RateLimiterRedis.make({ redis: { client }, prefix: uniquePrefix(), limit: 1 })
          yield* limiter.take()
          const error = yield* Effect.flip(
            RateLimiterRedis.make({ redis: { client }, prefix: uniquePrefix(), limit: 1, maxWait: 0 }).pipe(
              Effect.flatMap((l) => Effect.zipRight(l.take(), l.take()))
            )
          )
          assert.strictEqual(error._tag, "RateLimited")
        })
      )
      assert.strictEqual(client.status, "ready")
    })
  )
})

describe("RateLimiter (Redis unreachable)", () => {
  it.scopedLive("falls back to this process's in-memory budget, warns, and never logs the URL", () =>
    Effect.gen(function* () {
      // A port nobody listens on.
      const port = yield* Effect.async<number>((resume) => {
        const server = Net.createServer()
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const free = typeof address === "object" && address !== null ? address.port : 0
          server.close(() => resume(Effect.succeed(free)))
        })
      })
      const logs: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ message }) => {
          logs.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
      )
      const times = yield* Effect.gen(function* () {
        const limiter = yield* RateLimiterRedis.make({
          redis: { url: Redacted.make(`redis://:s3cret-canary@127.0.0.1:${port}`) },
          prefix: uniquePrefix(),
          limit: 2,
          window: "1 second",
          margin: 0,
          timeout: "200 millis"
        })
        const start = yield* Clock.currentTimeMillis
        return yield* Effect.forEach(range(3), () =>
          limiter.take().pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.map((t) => t - start)
          )
        )
      }).pipe(Effect.provide(capture))
      // The second take goes at once (within the budget of 2): measured from the first, not from before it, so a
      // slow first take (Redis refused, the warning logged) on a busy machine is not counted; held for the window,
      // it would come about 1 s after the first. The third waits for the window.
      assert.isBelow(times[1] - times[0], 500)
      assert.isAtLeast(times[2], 950)
      assert.isTrue(logs.some((line) => line.includes("Redis rate-limit store not reachable")))
      assert.isTrue(logs.some((line) => line.includes("in-memory budget")))
      assert.isFalse(logs.some((line) => line.includes("s3cret-canary") || line.includes("redis://")))
    })
  )
})
