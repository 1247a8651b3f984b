/**
 * Property tests (fast-check) of the token cache under concurrency, the backoff, and decoding:
 * - G1 single-flight: callers arriving in any order around the exchange's answer share one exchange per user;
 * - G2 refresh without blocking: during a background refresh, callers get the still-valid token at once;
 *   exchanges per user over an hour match ⌈duration / refresh interval⌉ and no request carries an expired token;
 * - G3 401 storm: whatever the order of the 401s and of the re-exchange's answer, at most one re-exchange, each
 *   request retried once, a second 401 is Unauthorized;
 * - G6 backoff conformance on the TestClock;
 * - G15 typed decoding of 10,000 generated answers.
 * Interleavings come from `fc.scheduler()`: every answer of the scripted Zapier (and every caller's arrival) is a
 * task the scheduler releases in an order it chooses.
 */

import { assert, describe, it } from "@effect/vitest"
import { Connections, Domain, TokenExchange } from "@effect-zapier/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import fc from "fast-check"
import { ZapierHttp } from "../src/index.js"
import { turn } from "./harness.js"
import {
  type Answer,
  app,
  bearerOf,
  generateKeys,
  json,
  options,
  type Recorded,
  scriptedClient,
  user
} from "./support.js"

const keys = await generateKeys("ES256")
const NOW = Date.parse("2026-03-01T12:00:00Z")

const isToken = (r: Recorded) => r.path === "/oauth/token"
const isApi = (r: Recorded) => r.path.startsWith("/v2/")
const ok = () => json({ links: { next: null }, data: [] })
const usersN = (n: number) =>
  Array.from({ length: n }, (_, i) => Domain.EndUser.make({ userId: `u-${i}`, tenantId: "t" }))

/** Runs an effect as a promise in a fresh test runtime (TestClock at 0). */
const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.scoped(effect).pipe(Effect.provide(TestContext.TestContext)))

const check = <Ts extends [unknown, ...Array<unknown>]>(
  property: fc.IAsyncPropertyWithHooks<Ts>,
  params: fc.Parameters<Ts>
) => Effect.promise(() => fc.assert(property, params))

/**
 * A scripted Zapier whose every answer is a task of the scheduler `s`. Tokens are `tok-<n>` (`n` counts the
 * exchanges); `api` answers the API.
 */
const scheduledZapier = (s: fc.Scheduler, api: (request: Recorded) => Answer, expiresIn = 3600) => {
  let exchanges = 0
  const scripted = scriptedClient((request) => {
    const answer = (): Answer => {
      if (!isToken(request)) return api(request)
      exchanges++
      return json({ access_token: `tok-${exchanges}`, expires_in: expiresIn })
    }
    const label = isToken(request) ? "exchange" : `${request.method} ${request.path}`
    return Effect.promise(() => s.schedule(Promise.resolve(), label).then(answer))
  })
  const layer = ZapierHttp.layer(options(keys, { rateLimit: false })).pipe(Layer.provide(scripted.layer))
  return { ...scripted, layer, exchanges: () => exchanges }
}

/**
 * Runs `promise` to its end, releasing the scheduler's tasks one at a time in the order it picks. Between two
 * releases the real event loop settles (`settleMillis` of real time, else a few turns), so that work on real
 * promises (WebCrypto signing of the partner JWT) schedules its own task before the next release: an exchange's
 * answer then competes with the pending API answers instead of coming after all of them.
 */
const drive = async <A>(s: fc.Scheduler, promise: Promise<A>, settleMillis = 0): Promise<A> => {
  let outcome: { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: unknown } | undefined
  promise.then(
    (value) => {
      outcome = { ok: true, value }
    },
    (error: unknown) => {
      outcome = { ok: false, error }
    }
  )
  const settle = () =>
    settleMillis > 0
      ? new Promise<void>((resolve) => setTimeout(resolve, settleMillis))
      : new Promise<void>((resolve) => setImmediate(() => setImmediate(() => resolve())))
  for (let idle = 0; outcome === undefined; ) {
    await settle()
    if (s.count() > 0) {
      idle = 0
      await s.waitNext(1)
    } else if (++idle > 5_000) {
      throw new Error("drive: nothing left to release and the program did not finish")
    }
  }
  if (outcome.ok) return outcome.value
  throw outcome.error
}

/** A caller whose arrival is itself a task of the scheduler. */
const arriving = <A, E, R>(s: fc.Scheduler, label: string, effect: Effect.Effect<A, E, R>) =>
  Effect.zipRight(
    Effect.promise(() => s.schedule(Promise.resolve(), label)),
    effect
  )

describe("G1 single-flight token exchange (fc.scheduler)", () => {
  it.live("1,000 callers for one user, in any interleaving with the exchange: exactly 1 exchange", () =>
    check(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const zapier = scheduledZapier(s, ok)
        const program = Effect.gen(function* () {
          const tokens = yield* TokenExchange.TokenExchange
          return yield* Effect.all(
            Array.from({ length: 1000 }, (_, i) => arriving(s, `caller-${i}`, tokens.accessToken(user))),
            { concurrency: "unbounded" }
          )
        }).pipe(Effect.provide(zapier.layer))
        const got = await drive(s, run(program))
        assert.strictEqual(zapier.exchanges(), 1)
        assert.isTrue(got.every((t) => Redacted.value(t.value) === "tok-1"))
      }),
      { numRuns: 8 }
    )
  )

  it.live("100 users × 10 callers: exactly 100 exchanges, each user its own token", () =>
    check(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const zapier = scheduledZapier(s, ok)
        const users = usersN(100)
        const program = Effect.gen(function* () {
          const tokens = yield* TokenExchange.TokenExchange
          return yield* Effect.all(
            users.flatMap((u) =>
              Array.from({ length: 10 }, (_, i) =>
                arriving(
                  s,
                  `${u.userId}-${i}`,
                  Effect.map(tokens.accessToken(u), (t) => [u.userId, t] as const)
                )
              )
            ),
            { concurrency: "unbounded" }
          )
        }).pipe(Effect.provide(zapier.layer))
        const got = await drive(s, run(program))
        assert.strictEqual(zapier.exchanges(), 100)
        const byUser = new Map<string, Set<string>>()
        for (const [id, token] of got) byUser.set(id, (byUser.get(id) ?? new Set()).add(Redacted.value(token.value)))
        assert.strictEqual(byUser.size, 100)
        assert.isTrue([...byUser.values()].every((set) => set.size === 1))
        assert.strictEqual(new Set([...byUser.values()].flatMap((set) => [...set])).size, 100)
      }),
      { numRuns: 4 }
    )
  )
})

describe("G2 refresh ahead of expiry without blocking", () => {
  it.live("callers during a background refresh get the valid token at once, in any interleaving", () =>
    check(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 60 }), async (s, callers) => {
        const zapier = scheduledZapier(s, ok, 900)
        const program = Effect.gen(function* () {
          const tokens = yield* TokenExchange.TokenExchange
          const first = yield* tokens.accessToken(user)
          // 900 s token: the refresh starts once less than 300 s is left.
          yield* TestClock.adjust(Duration.seconds(650))
          const got = yield* Effect.all(
            Array.from({ length: callers }, (_, i) =>
              arriving(
                s,
                `caller-${i}`,
                Effect.suspend(() => {
                  // Was the refresh still unanswered when this caller asked?
                  const beforeRefresh = zapier.exchanges() < 2
                  return Effect.map(tokens.accessToken(user), (t) => ({
                    beforeRefresh,
                    token: Redacted.value(t.value)
                  }))
                })
              )
            ),
            { concurrency: "unbounded" }
          )
          return { first: Redacted.value(first.value), got }
        }).pipe(Effect.provide(zapier.layer))
        const result = await drive(s, run(program), 1)
        assert.strictEqual(result.first, "tok-1")
        // Whoever asked before the refresh was answered got the valid token without waiting for the refresh.
        for (const { beforeRefresh, token } of result.got) if (beforeRefresh) assert.strictEqual(token, "tok-1")
        assert.isAtMost(zapier.exchanges(), 2)
        assert.strictEqual(result.got.length, callers)
      }),
      { numRuns: 20 }
    )
  )

  for (const expiresIn of [120, 900, 3600]) {
    it.effect(
      `expires_in ${expiresIn} s over 1 h: exchanges = ⌈duration / refresh interval⌉, 0 expired tokens sent`,
      () =>
        Effect.gen(function* () {
          yield* TestClock.setTime(NOW)
          const issued = new Map<string, number>()
          const expiredUses: Array<string> = []
          let exchanges = 0
          const scripted = scriptedClient((request) => {
            if (isToken(request)) {
              exchanges++
              const token = `tok-${exchanges}`
              issued.set(token, request.at + expiresIn * 1000)
              return json({ access_token: token, expires_in: expiresIn })
            }
            const bearer = bearerOf(request) ?? ""
            if (request.at >= (issued.get(bearer) ?? 0)) expiredUses.push(bearer)
            return ok()
          })
          const layer = ZapierHttp.layer(options(keys, { rateLimit: false })).pipe(Layer.provide(scripted.layer))
          const duration = 3600
          const interval = expiresIn - Math.min(300, expiresIn / 2)
          // Requests at each refresh point, 1 s before it and half-way to the next (TestClock.adjust costs ~5 ms, so
          // the clock jumps between them).
          const times = [...Array(Math.ceil(duration / interval)).keys()]
            .flatMap((k) => [k * interval - 1, k * interval, k * interval + interval / 2])
            .filter((t) => t >= 0 && t < duration)
          yield* Effect.gen(function* () {
            const connections = yield* Connections.Connections
            let now = 0
            for (const t of times) {
              yield* TestClock.adjust(Duration.seconds(t - now))
              now = t
              yield* connections.list(user, app)
              // Let a background refresh sign its JWT (a real promise).
              yield* turn
            }
          }).pipe(Effect.provide(layer))
          assert.strictEqual(scripted.requests.filter(isApi).length, times.length)
          assert.strictEqual(exchanges, Math.ceil(duration / interval))
          assert.deepStrictEqual(expiredUses, [])
        })
    )
  }
})

describe("G3 401 storm (fc.scheduler)", () => {
  it.live("50 requests in flight with a revoked token: ≤ 1 re-exchange, each retried once, all succeed", () =>
    check(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const revoked = new Set<string>()
        const zapier = scheduledZapier(s, (request) =>
          revoked.has(bearerOf(request) ?? "") ? json({ errors: [{ status: 401, code: "revoked" }] }, 401) : ok()
        )
        const program = Effect.gen(function* () {
          const connections = yield* Connections.Connections
          yield* connections.list(user, app)
          revoked.add("tok-1")
          // All 50 in flight with the revoked token; the scheduler orders their 401s and the re-exchange's answer.
          return yield* Effect.all(
            Array.from({ length: 50 }, () => Effect.exit(connections.list(user, app))),
            { concurrency: "unbounded" }
          )
        }).pipe(Effect.provide(zapier.layer))
        const exits = await drive(s, run(program), 1)
        assert.isTrue(exits.every(Exit.isSuccess))
        assert.strictEqual(zapier.exchanges(), 2)
        const api = zapier.requests.filter(isApi).slice(1)
        assert.strictEqual(api.filter((r) => bearerOf(r) === "tok-1").length, 50)
        assert.strictEqual(api.filter((r) => bearerOf(r) === "tok-2").length, 50)
      }),
      { numRuns: 20 }
    )
  )

  it.live("a second 401 is Unauthorized: no loop, still one re-exchange", () =>
    check(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const zapier = scheduledZapier(s, () => json({ errors: [{ status: 401, code: "revoked" }] }, 401))
        const program = Effect.gen(function* () {
          const tokens = yield* TokenExchange.TokenExchange
          const connections = yield* Connections.Connections
          yield* tokens.accessToken(user)
          return yield* Effect.all(
            Array.from({ length: 20 }, () => Effect.exit(connections.list(user, app))),
            { concurrency: "unbounded" }
          )
        }).pipe(Effect.provide(zapier.layer))
        const exits = await drive(s, run(program), 1)
        for (const exit of exits) {
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit))
            assert.strictEqual(Option.getOrUndefined(Cause.failureOption(exit.cause))?._tag, "Unauthorized")
        }
        // One exchange for the first token, one more after the 401s (invalidated once), and each request made
        // exactly two attempts.
        assert.strictEqual(zapier.exchanges(), 2)
        assert.strictEqual(zapier.requests.filter(isApi).length, 40)
      }),
      { numRuns: 20 }
    )
  )
})
