/**
 * Retry semantics per kind of request, server hints, timeouts, the 401 refresh-and-retry, and the retry budget,
 * all on the TestClock against a scripted HttpClient.
 */

import { assert, describe, it } from "@effect/vitest"
import { ActionRuns, Connections, Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { ZapierHttp } from "../src/index.js"
import {
  type Answer,
  app,
  bearerOf,
  driveClock,
  failureOf,
  fakeZapier,
  generateKeys,
  json,
  options,
  type Recorded,
  user
} from "./kit.js"

const keys = await generateKeys("ES256")
const NOW = Date.parse("2026-03-01T12:00:00Z")

const run: ActionRuns.CreateRun = {
  action: Domain.ActionId.make("uag:send_message-1"),
  connection: Domain.ConnectionId.make("c1"),
  inputs: { text: "hi" }
}
const ok = () => json({ links: { next: null }, data: [] })
const created = () => json({ data: { type: "run", id: "arun_1" } })

/** A fake whose API answers come from `answers` in order (the last one repeats). */
const sequence = (answers: ReadonlyArray<() => Answer>, extra: Partial<ZapierHttp.Options> = {}) => {
  let n = 0
  const zapier = fakeZapier(() => answers[Math.min(n++, answers.length - 1)]!())
  const layer = ZapierHttp.layer(options(keys, extra)).pipe(Layer.provide(zapier.layer))
  const apiRequests = (): Array<Recorded> => zapier.requests.filter((r) => r.path.startsWith("/v2/"))
  return { zapier, layer, apiRequests }
}

const list = Effect.flatMap(Connections.Connections, (c) => c.list(user, app))
const create = Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, run))

describe("safe requests (GET)", () => {
  it.effect("429 with Retry-After in seconds: the retry does not come before the hint", () => {
    const fake = sequence([() => json({ errors: [] }, 429, { "retry-after": "5" }), ok])
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const exit = yield* driveClock(list, Duration.millis(250))
      assert.isTrue(Exit.isSuccess(exit))
      const [first, second] = fake.apiRequests()
      assert.strictEqual(fake.apiRequests().length, 2)
      assert.isAtLeast(second!.at - first!.at, 5_000)
      assert.isBelow(second!.at - first!.at, 5_000 + 250 + 1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("429 with Retry-After as an HTTP-date is honoured", () => {
    const fake = sequence([() => json({ errors: [] }, 429, { "retry-after": new Date(NOW + 8_000).toUTCString() }), ok])
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const exit = yield* driveClock(list, Duration.millis(250))
      assert.isTrue(Exit.isSuccess(exit))
      const [first, second] = fake.apiRequests()
      // (The first request may leave a little after NOW: the JWT is signed with a real WebCrypto promise.)
      assert.isAtLeast(first!.at, NOW)
      assert.isAtLeast(second!.at, NOW + 8_000)
      assert.isBelow(second!.at, NOW + 8_000 + 251)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("X-RateLimit-Reset (epoch seconds) is honoured when there is no Retry-After", () => {
    const fake = sequence([() => json({ errors: [] }, 429, { "x-ratelimit-reset": String(NOW / 1000 + 4) }), ok])
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      assert.isTrue(Exit.isSuccess(yield* driveClock(list, Duration.millis(250))))
      const [first, second] = fake.apiRequests()
      assert.isAtLeast(second!.at - first!.at, 4_000)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("429 without a hint waits Zapier's 60 s cooldown", () => {
    const fake = sequence([() => json({ errors: [] }, 429), ok])
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      assert.isTrue(Exit.isSuccess(yield* driveClock(list, Duration.seconds(1))))
      const [first, second] = fake.apiRequests()
      assert.isAtLeast(second!.at - first!.at, 60_000)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a hint above the 60 s cap fails fast as RateLimited {retryAfter}", () => {
    const fake = sequence([() => json({ errors: [] }, 429, { "retry-after": "120" }), ok])
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const exit = yield* driveClock(list, Duration.seconds(1))
      const error = failureOf(exit)
      assert.strictEqual(error?._tag, "RateLimited")
      if (error?._tag === "RateLimited") {
        assert.isTrue(Duration.equals(error.retryAfter, Duration.seconds(120)))
        assert.strictEqual(error.endpoint, "GET /v2/authentications")
      }
      assert.strictEqual(fake.apiRequests().length, 1)
      // Failed at once instead of waiting the 120 s hint: at most a couple of the driver's 1 s steps passed between
      // the request (which leaves after a real WebCrypto signing promise) and the failure.
      const failedAt = yield* TestClock.currentTimeMillis
      assert.isAtMost(failedAt - fake.apiRequests()[0]!.at, 2_000)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a persistent 429 ends as RateLimited after the attempts, carrying the last hint", () => {
    const fake = sequence([() => json({ errors: [] }, 429, { "retry-after": "2" })])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list, Duration.millis(500)))
      assert.strictEqual(error?._tag, "RateLimited")
      if (error?._tag === "RateLimited") assert.isTrue(Duration.equals(error.retryAfter, Duration.seconds(2)))
      assert.strictEqual(fake.apiRequests().length, 3)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("5xx is retried with full-jitter backoff within the cap, then ZapierUnavailable", () => {
    const fake = sequence([() => json({ errors: [{ status: 503, code: "error", title: "Unavailable" }] }, 503)])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list, Duration.millis(10)))
      assert.strictEqual(error?._tag, "ZapierUnavailable")
      if (error?._tag === "ZapierUnavailable") assert.strictEqual(error.status, 503)
      const times = fake.apiRequests().map((r) => r.at)
      assert.strictEqual(times.length, 3)
      // Delay before retry n lies in [0, min(20 s, 200 ms · 2^(n-1))] (+ one clock step).
      assert.isAtMost(times[1]! - times[0]!, 200 + 10)
      assert.isAtMost(times[2]! - times[1]!, 400 + 10)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a transport failure (reset) on a GET is retried", () => {
    const fake = sequence([() => "reset", () => "refused", ok])
    return Effect.gen(function* () {
      assert.isTrue(Exit.isSuccess(yield* driveClock(list)))
      assert.strictEqual(fake.apiRequests().length, 3)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("every attempt has a timeout: a hung GET is retried, then ZapierUnavailable", () => {
    const fake = sequence([() => "hang"], { requestTimeout: Duration.seconds(10) })
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const error = failureOf(yield* driveClock(list, Duration.seconds(1)))
      assert.strictEqual(error?._tag, "ZapierUnavailable")
      if (error?._tag === "ZapierUnavailable") assert.include(error.reason, "10s")
      const times = fake.apiRequests().map((r) => r.at)
      assert.strictEqual(times.length, 3)
      assert.isAtLeast(times[1]! - times[0]!, 10_000)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("malformed JSON on a 200 is retried once, then InvalidResponse (without quoting the body)", () => {
    const fake = sequence([() => new Response("<html>secret-ish page</html>", { status: 200 })])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list))
      assert.strictEqual(error?._tag, "InvalidResponse")
      if (error?._tag === "InvalidResponse") {
        assert.strictEqual(error.reason, "the body is not valid JSON")
        assert.notInclude(error.message, "secret-ish")
      }
      assert.strictEqual(fake.apiRequests().length, 2)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("an empty 200 body is InvalidResponse", () => {
    const fake = sequence([() => new Response(null, { status: 200 })])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list))
      assert.strictEqual(error?._tag, "InvalidResponse")
      if (error?._tag === "InvalidResponse") assert.strictEqual(error.reason, "the body is empty")
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a body over the cap is not read: InvalidResponse, never a crash", () => {
    const big = JSON.stringify({ data: [], padding: "x".repeat(5_000) })
    const fake = sequence([() => new Response(big, { status: 200 })], { maxResponseBytes: 1_000 })
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list))
      assert.strictEqual(error?._tag, "InvalidResponse")
      if (error?._tag === "InvalidResponse") assert.include(error.reason, "larger than 1000 bytes")
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("Zapier's error envelope maps to the typed errors", () =>
    Effect.gen(function* () {
      const cases: Array<[number, string]> = [
        [400, "BadRequest"],
        [403, "Unauthorized"],
        [404, "NotFound"],
        [409, "BadRequest"],
        [501, "ZapierUnavailable"]
      ]
      for (const [status, tag] of cases) {
        const fake = sequence([
          () => json({ errors: [{ status, code: "c", title: "T", detail: "D", source: null, meta: null }] }, status)
        ])
        const error = failureOf(yield* driveClock(list.pipe(Effect.provide(fake.layer))))
        assert.strictEqual(error?._tag, tag, String(status))
        // None of these is worth a retry (501 is not transient).
        assert.strictEqual(fake.apiRequests().length, 1, String(status))
      }
    })
  )
})

describe("the create-run POST never duplicates a run", () => {
  it.effect("a 500 is not retried: one request, RunOutcomeUnknown", () => {
    const fake = sequence([
      () => json({ errors: [{ status: 500, code: "error", title: "APIException" }] }, 500),
      created
    ])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(create))
      assert.strictEqual(error?._tag, "RunOutcomeUnknown")
      if (error?._tag === "RunOutcomeUnknown") {
        assert.strictEqual(error.status, 500)
        assert.strictEqual(error.connection, "c1")
        assert.strictEqual(error.endpoint, "POST /v2/action-runs/")
      }
      assert.strictEqual(fake.apiRequests().length, 1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("503 and 504 are ambiguous too", () =>
    Effect.gen(function* () {
      for (const status of [502, 503, 504, 408]) {
        const fake = sequence([() => json({ errors: [] }, status, { "retry-after": "1" }), created])
        const error = failureOf(yield* driveClock(create.pipe(Effect.provide(fake.layer))))
        assert.strictEqual(error?._tag, "RunOutcomeUnknown", String(status))
        assert.strictEqual(fake.apiRequests().length, 1, String(status))
      }
    })
  )

  it.effect("a 429 was refused unprocessed: retried after the hint", () => {
    const fake = sequence([() => json({ errors: [] }, 429, { "retry-after": "3" }), created])
    return Effect.gen(function* () {
      const exit = yield* driveClock(create, Duration.millis(500))
      assert.isTrue(Exit.isSuccess(exit))
      const [first, second] = fake.apiRequests()
      assert.strictEqual(fake.apiRequests().length, 2)
      assert.isAtLeast(second!.at - first!.at, 3_000)
      assert.deepStrictEqual(second!.json, first!.json)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("connection refused (provably not sent) is retried", () => {
    const fake = sequence([() => "refused", () => "refused", created])
    return Effect.gen(function* () {
      const exit = yield* driveClock(create)
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(fake.apiRequests().length, 3)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("connection refused on every attempt is ZapierUnavailable (no run exists)", () => {
    const fake = sequence([() => "refused"])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(create))
      assert.strictEqual(error?._tag, "ZapierUnavailable")
      assert.strictEqual(fake.apiRequests().length, 3)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a reset (maybe sent) is RunOutcomeUnknown without retry", () => {
    const fake = sequence([() => "reset", created])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(create))
      assert.strictEqual(error?._tag, "RunOutcomeUnknown")
      if (error?._tag === "RunOutcomeUnknown") assert.include(error.reason, "ECONNRESET")
      assert.strictEqual(fake.apiRequests().length, 1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a timeout after sending is RunOutcomeUnknown without retry", () => {
    const fake = sequence([() => "hang", created], { requestTimeout: Duration.seconds(5) })
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const error = failureOf(yield* driveClock(create, Duration.seconds(1)))
      assert.strictEqual(error?._tag, "RunOutcomeUnknown")
      assert.strictEqual(fake.apiRequests().length, 1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("an unreadable 200 body is RunOutcomeUnknown without retry", () => {
    const fake = sequence([() => new Response('{"data": {"type": "ru', { status: 200 }), created])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(create))
      assert.strictEqual(error?._tag, "RunOutcomeUnknown")
      if (error?._tag === "RunOutcomeUnknown") assert.strictEqual(error.status, 200)
      assert.strictEqual(fake.apiRequests().length, 1)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a 401 was answered before processing: one re-exchange and one retry", () => {
    const fake = sequence([
      () => json({ errors: [{ status: 401, code: "unauthorized", title: "Unauthorized" }] }, 401),
      created
    ])
    return Effect.gen(function* () {
      assert.isTrue(Exit.isSuccess(yield* driveClock(create)))
      assert.deepStrictEqual(fake.apiRequests().map(bearerOf), ["access-token-canary-1", "access-token-canary-2"])
      assert.strictEqual(fake.zapier.state.exchanges, 2)
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("401 refresh-and-retry", () => {
  it.effect("a 401 invalidates the token that failed, re-exchanges once and retries once", () => {
    const fake = sequence([() => json({ errors: [] }, 401), ok])
    return Effect.gen(function* () {
      assert.isTrue(Exit.isSuccess(yield* driveClock(list)))
      assert.deepStrictEqual(fake.apiRequests().map(bearerOf), ["access-token-canary-1", "access-token-canary-2"])
      assert.strictEqual(fake.zapier.state.exchanges, 2)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a second 401 is Unauthorized, with no loop", () => {
    const fake = sequence([
      () => json({ errors: [{ status: 401, code: "unauthorized", title: "Token revoked" }] }, 401)
    ])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list))
      assert.strictEqual(error?._tag, "Unauthorized")
      if (error?._tag === "Unauthorized") {
        assert.strictEqual(error.status, 401)
        assert.strictEqual(error.detail, "Token revoked")
      }
      assert.strictEqual(fake.apiRequests().length, 2)
      assert.strictEqual(fake.zapier.state.exchanges, 2)
    }).pipe(Effect.provide(fake.layer))
  })

  it.effect("a 401 storm on one token costs one re-exchange", () => {
    const revoked = new Set<string>()
    const zapier = fakeZapier((request) => (revoked.has(bearerOf(request) ?? "") ? json({ errors: [] }, 401) : ok()))
    return Effect.gen(function* () {
      const connections = yield* Connections.Connections
      yield* connections.list(user, app)
      assert.strictEqual(zapier.state.exchanges, 1)
      revoked.add("access-token-canary-1")
      const exit = yield* driveClock(
        Effect.all(
          Array.from({ length: 30 }, () => connections.list(user, app)),
          { concurrency: "unbounded" }
        )
      )
      assert.isTrue(Exit.isSuccess(exit))
      // 30 requests failed with the revoked token, one exchange replaced it, 30 retries succeeded.
      const api = zapier.requests.filter((r) => r.path.startsWith("/v2/")).slice(1)
      assert.strictEqual(api.filter((r) => bearerOf(r) === "access-token-canary-1").length, 30)
      assert.strictEqual(api.filter((r) => bearerOf(r) === "access-token-canary-2").length, 30)
      assert.strictEqual(zapier.state.exchanges, 2)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("403 is Unauthorized without a re-exchange", () => {
    const fake = sequence([() => json({ errors: [{ status: 403, code: "forbidden", title: "Missing scope" }] }, 403)])
    return Effect.gen(function* () {
      const error = failureOf(yield* driveClock(list))
      assert.strictEqual(error?._tag, "Unauthorized")
      assert.strictEqual(fake.zapier.state.exchanges, 1)
      assert.strictEqual(fake.apiRequests().length, 1)
    }).pipe(Effect.provide(fake.layer))
  })
})

describe("retry budget", () => {
  it.effect("an outage drains the client-wide budget, after which failures are not retried", () => {
    // Capacity 10 = two retries of cost 5.
    const fake = sequence([() => json({ errors: [] }, 503)], { retryBudget: 10 })
    return Effect.gen(function* () {
      assert.strictEqual(failureOf(yield* driveClock(list, Duration.millis(50)))?._tag, "ZapierUnavailable")
      assert.strictEqual(fake.apiRequests().length, 3)
      assert.strictEqual(failureOf(yield* driveClock(list, Duration.millis(50)))?._tag, "ZapierUnavailable")
      assert.strictEqual(fake.apiRequests().length, 4)
    }).pipe(Effect.provide(fake.layer))
  })
})
