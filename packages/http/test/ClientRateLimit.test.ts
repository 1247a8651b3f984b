/**
 * The client meters its API requests through the shared RateLimiter: a slot before every attempt, a 429 pausing
 * the whole budget, a limiter from the context shared by several clients, the token endpoint left out; on the
 * TestClock against a scripted Zapier.
 */

import { assert, describe, it } from "@effect/vitest"
import { ActionRuns, Connections, Domain, TokenExchange } from "@effect-zapier/core"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import fc from "fast-check"
import { RateLimiter, ZapierHttp } from "../src/index.js"
import {
  app,
  bearerOf,
  CLIENT_SECRET,
  driveClock,
  failureOf,
  fakeZapier,
  generateKeys,
  json,
  maxInAnyWindow,
  options,
  type Recorded,
  user
} from "./kit.js"

const keys = await generateKeys("ES256")
const NOW = Date.parse("2026-03-01T12:00:00Z")

const users = Array.from({ length: 10 }, (_, i) => Domain.EndUser.make({ userId: `user-${i}`, tenantId: "t" }))
const ok = () => json({ links: { next: null }, data: [] })
const list = (u: Domain.EndUser = user) => Effect.flatMap(Connections.Connections, (c) => c.list(u, app))
const listMany = (n: number) =>
  Effect.all(
    Array.from({ length: n }, (_, i) => list(users[i % users.length])),
    { concurrency: "unbounded" }
  )
const apiOf = (requests: ReadonlyArray<Recorded>) => requests.filter((r) => r.path.startsWith("/v2/"))
const tokenOf = (requests: ReadonlyArray<Recorded>) => requests.filter((r) => r.path === "/oauth/token")

describe("the client's rate limiter", () => {
  it.effect("on by default: 60 API requests per 61 s, the 61st waits for the window; tokens are not metered", () => {
    const zapier = fakeZapier(ok)
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const exit = yield* driveClock(listMany(61), Duration.seconds(1))
      assert.isTrue(Exit.isSuccess(exit))
      const api = apiOf(zapier.requests)
      assert.strictEqual(api.length, 61)
      const times = api.map((r) => r.at).sort((a, b) => a - b)
      assert.isAtMost(times[59]! - NOW, 5_000)
      assert.isAtLeast(times[60]! - times[0]!, 61_000)
      assert.strictEqual(maxInAnyWindow(times, 61_000), 60)
      // Ten users' exchanges went out at once: the token endpoint is not behind the API's budget.
      assert.strictEqual(tokenOf(zapier.requests).length, 10)
      assert.isAtMost(Math.max(...tokenOf(zapier.requests).map((r) => r.at)) - NOW, 5_000)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("rateLimit: false sends everything at once", () => {
    const zapier = fakeZapier(ok)
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      assert.isTrue(Exit.isSuccess(yield* driveClock(listMany(100), Duration.seconds(1))))
      const times = apiOf(zapier.requests).map((r) => r.at)
      assert.strictEqual(times.length, 100)
      assert.isAtMost(Math.max(...times) - NOW, 5_000)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys, { rateLimit: false })).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("a 429 pauses the whole budget for its Retry-After: other users wait too", () => {
    let throttled = false
    const zapier = fakeZapier(() => {
      if (throttled) return ok()
      throttled = true
      return json({ errors: [] }, 429, { "retry-after": "20" })
    })
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const tokens = yield* TokenExchange.TokenExchange
      yield* driveClock(Effect.all([tokens.accessToken(users[0]!), tokens.accessToken(users[1]!)]))
      // User 0 gets the 429; user 1 asks 5 s later: its request waits for the end of the pause, as does the retry.
      const exit = yield* driveClock(
        Effect.all([list(users[0]), Effect.zipRight(Effect.sleep("5 seconds"), list(users[1]))], { concurrency: 2 }),
        Duration.millis(500)
      )
      assert.isTrue(Exit.isSuccess(exit))
      const api = apiOf(zapier.requests)
      assert.strictEqual(api.length, 3)
      const [limited, ...rest] = api
      assert.strictEqual(bearerOf(limited!), "access-token-canary-1")
      for (const request of rest) assert.isAtLeast(request.at - limited!.at, 20_000)
    }).pipe(
      Effect.provide(
        ZapierHttp.layer(options(keys, { rateLimit: { limit: 100, window: "1 second" } })).pipe(
          Layer.provide(zapier.layer)
        )
      )
    )
  })

  it.effect("a 429 without Retry-After pauses Zapier's 60 s cooldown; a huge hint pauses at most maxRetryAfter", () => {
    let n = 0
    const zapier = fakeZapier(() => {
      n++
      if (n === 1) return json({ errors: [] }, 429)
      if (n === 3) return json({ errors: [] }, 429, { "retry-after": "3600" })
      return ok()
    })
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      // 1st request: 429 without a hint → retried after 60 s (2nd request).
      assert.isTrue(Exit.isSuccess(yield* driveClock(list(users[0]), Duration.seconds(1))))
      const [a, b] = apiOf(zapier.requests)
      assert.isAtLeast(b!.at - a!.at, 60_000)
      // 3rd request: a one-hour hint fails at once as RateLimited{1 h}...
      const huge = failureOf(yield* driveClock(list(users[1]), Duration.seconds(1)))
      assert.strictEqual(huge?._tag, "RateLimited")
      if (huge?._tag === "RateLimited") assert.isTrue(Duration.equals(huge.retryAfter, Duration.hours(1)))
      const c = apiOf(zapier.requests)[2]!
      // ...and holds the shared budget back for maxRetryAfter (60 s), not for an hour.
      assert.isTrue(Exit.isSuccess(yield* driveClock(list(users[2]), Duration.seconds(1))))
      const d = apiOf(zapier.requests)[3]!
      assert.isAtLeast(d.at - c.at, 60_000)
      assert.isAtMost(d.at - c.at, 61_000)
    }).pipe(
      Effect.provide(
        ZapierHttp.layer(options(keys, { rateLimit: { limit: 100, window: "1 second" } })).pipe(
          Layer.provide(zapier.layer)
        )
      )
    )
  })

  it.effect("past maxWait a request fails with RateLimited and nothing is sent; a create is not ambiguous", () => {
    const zapier = fakeZapier((request) =>
      request.method === "POST" ? json({ data: { type: "run", id: "arun_1" } }) : ok()
    )
    const run: ActionRuns.CreateRun = {
      action: Domain.ActionId.make("uag:a-1"),
      connection: Domain.ConnectionId.make("c1"),
      inputs: {}
    }
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      assert.isTrue(Exit.isSuccess(yield* driveClock(list())))
      const get = failureOf(yield* driveClock(list()))
      assert.strictEqual(get?._tag, "RateLimited")
      if (get?._tag === "RateLimited") {
        assert.include(get.endpoint, "client-side rate limit")
        assert.isTrue(Duration.greaterThan(get.retryAfter, Duration.seconds(10)))
      }
      const create = failureOf(yield* driveClock(Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, run))))
      assert.strictEqual(create?._tag, "RateLimited")
      // Neither the refused GET nor the create reached Zapier.
      assert.deepStrictEqual(
        apiOf(zapier.requests).map((r) => r.method),
        ["GET"]
      )
    }).pipe(
      Effect.provide(
        ZapierHttp.layer(options(keys, { rateLimit: { limit: 1, window: "1 minute", maxWait: "10 seconds" } })).pipe(
          Layer.provide(zapier.layer)
        )
      )
    )
  })

  it.effect("a RateLimiter in the context is shared by every client built over it (one budget, two clients)", () => {
    const a = fakeZapier(ok)
    const b = fakeZapier(ok)
    const shared = RateLimiter.layerMemory({ limit: 5, window: "10 seconds", maxWait: "1 minute" })
    const clientA = ZapierHttp.layer(options(keys)).pipe(Layer.provide(a.layer))
    const clientB = ZapierHttp.layer(options(keys)).pipe(Layer.provide(b.layer))
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const limiter = yield* RateLimiter.RateLimiter
      const run = (client: typeof clientA) =>
        listMany(6).pipe(Effect.provide(client), Effect.provideService(RateLimiter.RateLimiter, limiter))
      const exit = yield* driveClock(Effect.all([run(clientA), run(clientB)], { concurrency: 2 }), Duration.seconds(1))
      assert.isTrue(Exit.isSuccess(exit))
      const times = [...apiOf(a.requests), ...apiOf(b.requests)].map((r) => r.at)
      assert.strictEqual(times.length, 12)
      // Two budgets would let 10 through in the first window; one budget lets 5.
      assert.strictEqual(maxInAnyWindow(times, 10_000), 5)
      assert.isAtLeast(Math.max(...times) - NOW, 20_000)
    }).pipe(Effect.provide(shared))
  })

  it.effect("ZAPIER_RATE_LIMIT* configure it from the environment (off, or limit/window/maxWait)", () =>
    Effect.gen(function* () {
      const env = {
        ZAPIER_CLIENT_ID: "partner-client",
        ZAPIER_CLIENT_SECRET: CLIENT_SECRET,
        ZAPIER_SIGNING_KEY: keys.pem,
        ZAPIER_KEY_ID: "key-2026-03",
        ZAPIER_JWT_ISSUER: "https://partner.example"
      }
      const load = (extra: Record<string, string>) =>
        Effect.flatMap(ZapierHttp.config, (o) => Effect.succeed(o.rateLimit)).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...env, ...extra }))))
        )
      assert.isUndefined(yield* load({}))
      assert.isFalse(yield* load({ ZAPIER_RATE_LIMIT: "off" }))
      const custom = yield* load({ ZAPIER_RATE_LIMIT: "150", ZAPIER_RATE_LIMIT_WINDOW: "61 seconds" })
      assert.deepStrictEqual(custom, { limit: 150, window: Duration.seconds(61), maxWait: undefined })
      const bad = yield* Effect.exit(load({ ZAPIER_RATE_LIMIT: "lots" }))
      assert.isTrue(Exit.isFailure(bad))
      if (Exit.isFailure(bad)) assert.include(String(bad.cause), "ZAPIER_RATE_LIMIT must be a positive integer")
      // Invalid numbers in code are a ConfigError at build, naming the field.
      const zapier = fakeZapier(ok)
      const invalid = yield* Effect.exit(
        Layer.build(
          ZapierHttp.layer(options(keys, { rateLimit: { limit: 0 } })).pipe(Layer.provide(zapier.layer))
        ).pipe(Effect.scoped)
      )
      assert.isTrue(Exit.isFailure(invalid))
      if (Exit.isFailure(invalid)) assert.include(String(invalid.cause), "rateLimit.limit")
    })
  )
})

describe("Retry-After: only non-negative delta-seconds or an HTTP-date", () => {
  /**
   * One 429 carrying `retryAfter` (user 0), then success; user 1 asks 5 s later. Returns how long after the 429
   * the retry and user 1's request went out (the shared budget pauses for the hint, else the 60 s cooldown).
   */
  const afterA429 = (retryAfter: string) => {
    let throttled = false
    const zapier = fakeZapier(() => {
      if (throttled) return ok()
      throttled = true
      return json({ errors: [] }, 429, { "retry-after": retryAfter })
    })
    const program = Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const tokens = yield* TokenExchange.TokenExchange
      yield* driveClock(Effect.all([tokens.accessToken(users[0]!), tokens.accessToken(users[1]!)]))
      const exit = yield* driveClock(
        Effect.all([list(users[0]), Effect.zipRight(Effect.sleep("5 seconds"), list(users[1]))], { concurrency: 2 }),
        Duration.seconds(5)
      )
      assert.isTrue(Exit.isSuccess(exit), retryAfter)
      const [limited, ...rest] = apiOf(zapier.requests)
      assert.strictEqual(rest.length, 2, retryAfter)
      // Measured from the 429's arrival (a delta-seconds hint) or from NOW (an HTTP-date names an instant).
      return rest.map((r) => r.at - (/^\s*\d+\s*$/.test(retryAfter) ? limited!.at : NOW))
    }).pipe(
      Effect.provide(
        ZapierHttp.layer(options(keys, { rateLimit: { limit: 100, window: "1 second" } })).pipe(
          Layer.provide(zapier.layer)
        )
      )
    )
    return program
  }

  /** What a server (or anyone between it and us) could send that is not a valid Retry-After. */
  const garbage = [
    "-5",
    "-1",
    "-0.5",
    "1.5",
    "0.5",
    "+5",
    "1e3",
    "0x10",
    "NaN",
    "Infinity",
    "-Infinity",
    "5 seconds",
    "5, 10",
    "soon",
    "now",
    "-2026",
    "2026-03-01T12:00:08Z",
    "Sun, 01 Mar 2026 12:00:08",
    "Sun, 31 Feb 2026 12:00:08 GMT",
    "Sun, 01 Foo 2026 12:00:08 GMT",
    "Sun, 01 Mar 2026 25:00:08 GMT",
    "Sun, 1 Mar 2026 12:00:08 GMT",
    "1 March 2026",
    "Mar 1, 2026",
    "\t",
    "%35"
  ]

  it.effect(
    `${garbage.length} garbage values: the 60 s cooldown, and the shared budget pauses (nobody goes early)`,
    () =>
      Effect.gen(function* () {
        for (const value of garbage) {
          const gaps = yield* afterA429(value)
          for (const gap of gaps) assert.isAtLeast(gap, 60_000, `Retry-After: ${JSON.stringify(value)}`)
          for (const gap of gaps) assert.isAtMost(gap, 62_000, `Retry-After: ${JSON.stringify(value)}`)
        }
      })
  )

  it.effect("generated garbage (any text that is neither digits nor an HTTP-date): the 60 s cooldown", () =>
    Effect.gen(function* () {
      const samples = fc.sample(
        fc.oneof(
          fc.string(),
          fc.integer({ max: -1 }).map(String),
          fc
            .double({ noNaN: true })
            .filter((d) => !Number.isInteger(d) || d < 0)
            .map(String),
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
        ),
        { numRuns: 20, seed: 13 }
      )
      const values = samples.filter((v) => !/^\s*\d+\s*$/.test(v) && v.trim().length > 0)
      assert.isAbove(values.length, 12)
      for (const value of values) {
        for (const gap of yield* afterA429(value)) assert.isAtLeast(gap, 60_000, JSON.stringify(value))
      }
    })
  )

  it.effect("valid forms are honoured: delta-seconds, IMF-fixdate, RFC 850 and asctime dates; a past date is now", () =>
    Effect.gen(function* () {
      const valid: ReadonlyArray<readonly [string, number]> = [
        ["8", 8_000],
        [" 8 ", 8_000],
        ["0", 0],
        ["Sun, 01 Mar 2026 12:00:08 GMT", 8_000],
        ["Sunday, 01-Mar-26 12:00:08 GMT", 8_000],
        ["Sun Mar  1 12:00:08 2026", 8_000],
        ["Sat, 28 Feb 2026 12:00:00 GMT", 0]
      ]
      for (const [value, wait] of valid) {
        const [retry, other] = yield* afterA429(value)
        assert.isAtLeast(retry!, wait, value)
        assert.isAtMost(retry!, wait + 1_000, value)
        // User 1 asked at +5 s: it waits for the pause when there is one left.
        assert.isAtLeast(other!, Math.max(5_000, wait), value)
        assert.isAtMost(other!, Math.max(5_000, wait) + 1_000, value)
      }
    })
  )
})
