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
import { ActionRuns, Connections, Domain, TokenExchange } from "@effect-zapier/core"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import fc from "fast-check"
import { ZapierHttp } from "../src/index.js"
import {
  type Answer,
  app,
  bearerOf,
  eventually,
  generateKeys,
  json,
  options,
  type Recorded,
  scriptedClient,
  turn,
  user
} from "./kit.js"

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
  // Nothing to release means the program waits on something real (a signature): it gets real time for it, 20 s
  // of it (a hang), not a number of turns, which a busy machine can run through before the signature is back.
  for (let idleSince = Date.now(); outcome === undefined; ) {
    await settle()
    if (s.count() > 0) {
      idleSince = Date.now()
      await s.waitNext(1)
    } else if (Date.now() - idleSince > 20_000) {
      throw new Error("drive: nothing left to release and the program did not finish within 20 s")
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
              // A request at a refresh point starts a background refresh, which signs its JWT (a real promise):
              // wait until its exchange is done, so the clock moves on from a finished refresh however long a
              // busy machine takes to sign (a count of turns would move it on from a pending one).
              const expected = Math.floor(t / interval) + 1
              assert.isTrue(yield* eventually(() => exchanges >= expected), `exchange ${expected} by ${t} s`)
            }
            // The last refresh may still be signing its JWT (a real promise): wait before the layer closes.
            yield* eventually(() => exchanges >= Math.ceil(duration / interval))
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

// ---------------------------------------------------------------------------------------------------------------
// G6 backoff conformance
// ---------------------------------------------------------------------------------------------------------------

/** Runs `effect` to its end on the TestClock, moving the clock to each next sleep (exact timings). */
const toTheEnd = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Effect.exit(effect))
    for (;;) {
      yield* turn
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done) && Exit.isSuccess(done.value)) return done.value.value
      const now = yield* Clock.currentTimeMillis
      const next = Chunk.filter(yield* TestClock.sleeps(), (at) => at > now)
      if (!Chunk.isEmpty(next)) yield* TestClock.adjust(Math.min(...next) - now)
    }
  })

type Failure =
  | { readonly kind: "500" | "503" | "reset" | "429" }
  | { readonly kind: "503-hint" | "429-delta" | "429-date"; readonly seconds: number }

const failureArb: fc.Arbitrary<Failure> = fc.oneof(
  fc.constantFrom<Failure>({ kind: "500" }, { kind: "503" }, { kind: "reset" }, { kind: "429" }),
  fc.record({
    kind: fc.constantFrom("503-hint" as const, "429-delta" as const, "429-date" as const),
    seconds: fc.integer({ min: 0, max: 90 })
  })
)

const answerOf = (failure: Failure, at: number): Answer => {
  switch (failure.kind) {
    case "500":
    case "503":
      return json({ errors: [] }, Number(failure.kind))
    case "reset":
      return "reset"
    case "429":
      return json({ errors: [] }, 429)
    case "503-hint":
      return json({ errors: [] }, 503, { "retry-after": String(failure.seconds) })
    case "429-delta":
      return json({ errors: [] }, 429, { "retry-after": String(failure.seconds) })
    case "429-date":
      return json({ errors: [] }, 429, { "retry-after": new Date(at + failure.seconds * 1000).toUTCString() })
  }
}

/** The wait the answer asks for, as the client must read it (an HTTP-date has whole seconds). */
const hintOf = (failure: Failure, at: number, cooldown: number): number | undefined => {
  switch (failure.kind) {
    case "503-hint":
    case "429-delta":
      return failure.seconds * 1000
    case "429-date":
      return Math.max(0, Date.parse(new Date(at + failure.seconds * 1000).toUTCString()) - at)
    case "429":
      return cooldown
    default:
      return undefined
  }
}

describe("G6 backoff conformance (TestClock)", () => {
  it.live("each delay lies in [0, min(cap, base·2^i)], never before a hint; a hint above the cap fails fast", () =>
    check(
      fc.asyncProperty(
        fc.record({
          base: fc.integer({ min: 1, max: 2_000 }),
          cap: fc.integer({ min: 1, max: 30_000 }),
          maxAttempts: fc.integer({ min: 2, max: 5 }),
          maxRetryAfter: fc.integer({ min: 1, max: 90 }),
          start: fc.integer({ min: 0, max: 999 })
        }),
        fc.array(failureArb, { minLength: 1, maxLength: 5 }),
        async (settings, failures) => {
          const cooldown = 60_000
          let n = 0
          const scripted = scriptedClient((request) => {
            if (isToken(request)) return json({ access_token: "tok", expires_in: 86_400 })
            const failure = failures[n++]
            return failure === undefined ? ok() : answerOf(failure, request.at)
          })
          const layer = ZapierHttp.layer(
            options(keys, {
              rateLimit: false,
              retryBaseDelay: Duration.millis(settings.base),
              retryMaxDelay: Duration.millis(settings.cap),
              maxAttempts: settings.maxAttempts,
              maxRetryAfter: Duration.seconds(settings.maxRetryAfter)
            })
          ).pipe(Layer.provide(scripted.layer))
          const program = Effect.gen(function* () {
            yield* TestClock.setTime(NOW + settings.start)
            const tokens = yield* TokenExchange.TokenExchange
            yield* toTheEnd(tokens.accessToken(user))
            const connections = yield* Connections.Connections
            const exit = yield* toTheEnd(connections.list(user, app))
            return { exit, end: yield* Clock.currentTimeMillis }
          }).pipe(Effect.provide(layer))
          const { exit, end } = await run(program)
          const times = scripted.requests.filter(isApi).map((r) => r.at)
          // Walk the attempts as the policy must have.
          for (let i = 0; i < times.length; i++) {
            const failure = failures[i]
            if (failure === undefined) {
              assert.isTrue(Exit.isSuccess(exit))
              assert.strictEqual(i, times.length - 1)
              return
            }
            const hint = hintOf(failure, times[i]!, cooldown)
            const last = i === times.length - 1
            if (last) {
              // Stopped: out of attempts, or a hint above the cap, at once.
              assert.isTrue(Exit.isFailure(exit))
              const tooLong = hint !== undefined && hint > settings.maxRetryAfter * 1000
              assert.isTrue(i + 1 === settings.maxAttempts || tooLong, `stopped early at attempt ${i + 1}`)
              assert.strictEqual(end, times[i])
              const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
              if (failure.kind.startsWith("429")) {
                assert.strictEqual(error?._tag, "RateLimited")
                if (error?._tag === "RateLimited") assert.strictEqual(Duration.toMillis(error.retryAfter), hint)
              } else {
                assert.strictEqual(error?._tag, "ZapierUnavailable")
              }
              return
            }
            const delay = times[i + 1]! - times[i]!
            if (hint !== undefined) {
              assert.isAtMost(hint, settings.maxRetryAfter * 1000)
              assert.strictEqual(delay, hint)
            } else {
              assert.isAtLeast(delay, 0)
              assert.isAtMost(delay, Math.min(settings.cap, settings.base * 2 ** i))
            }
          }
        }
      ),
      { numRuns: 100 }
    )
  )
})

// ---------------------------------------------------------------------------------------------------------------
// G15 typed decoding of generated answers
// ---------------------------------------------------------------------------------------------------------------

/** Core's error tags: the only failures allowed out of the package. */
const coreErrors = new Set([
  "TokenExchangeFailed",
  "Unauthorized",
  "RateLimited",
  "ZapierUnavailable",
  "InvalidResponse",
  "BadRequest",
  "NotFound",
  "RunOutcomeUnknown"
])

const noBodyStatuses = new Set([204, 205, 304])
const ACCESS_CANARY = "access-canary-5c1e9d2b7a"

interface Generated {
  readonly status: number
  readonly body: string | Uint8Array
  readonly headers: Readonly<Record<string, string>>
}

const jsonText = (arb: fc.Arbitrary<unknown>) => arb.map((v) => JSON.stringify(v))
const loose = <T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) => fc.record(fields, { requiredKeys: [] })
const anyValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.jsonValue())

const bodyArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.json(),
  fc.constant(""),
  fc.constant("<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"),
  fc.uint8Array({ maxLength: 64 }),
  // Over the 2 KiB cap of this runtime.
  fc.integer({ min: 2_049, max: 6_000 }).map((n) => JSON.stringify({ data: [], padding: "x".repeat(n) })),
  // Shapes close to Zapier's, with every field free to be wrong.
  jsonText(
    loose({
      data: loose({
        type: fc.oneof(fc.constant("run"), anyValue),
        id: fc.oneof(fc.string(), fc.integer(), fc.constant("")),
        status: fc.oneof(fc.constantFrom("waiting", "queued", "running", "success", "error", "SUCCESS"), anyValue),
        results: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 3 }), fc.object(), anyValue),
        errors: fc.oneof(
          fc.array(loose({ code: anyValue, title: anyValue, detail: anyValue, delay: anyValue, meta: anyValue }), {
            maxLength: 3
          }),
          anyValue
        )
      })
    })
  ),
  jsonText(
    loose({
      links: fc.oneof(loose({ next: fc.oneof(fc.constant(null), fc.webUrl(), fc.string()), prev: anyValue }), anyValue),
      meta: fc.oneof(loose({ count: fc.oneof(fc.nat(5), anyValue), limit: anyValue, offset: anyValue }), anyValue),
      data: fc.oneof(
        fc.array(
          loose({
            type: anyValue,
            id: fc.oneof(fc.string({ minLength: 1 }), anyValue),
            app: fc.oneof(fc.constant(app), anyValue),
            is_expired: fc.oneof(fc.boolean(), anyValue),
            title: anyValue
          }),
          { maxLength: 4 }
        ),
        anyValue
      )
    })
  ),
  jsonText(
    loose({
      access_token: fc.oneof(fc.string(), anyValue),
      expires_in: fc.oneof(fc.nat(), fc.double(), anyValue),
      token_type: anyValue,
      error: anyValue,
      error_description: anyValue
    })
  ),
  jsonText(
    loose({
      errors: fc.oneof(
        fc.array(loose({ status: anyValue, code: anyValue, title: anyValue, detail: anyValue })),
        anyValue
      )
    })
  )
)

const generatedArb: fc.Arbitrary<Generated> = fc.record({
  status: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(200, 201, 202) },
    { weight: 3, arbitrary: fc.constantFrom(204, 301, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 504) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 599 }) }
  ),
  body: bodyArb,
  headers: fc.oneof(
    fc.constant({}),
    fc.record({
      "retry-after": fc.oneof(
        fc.nat(100_000).map(String),
        fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
        fc.string()
      )
    }),
    fc.record({ "x-ratelimit-reset": fc.oneof(fc.nat().map(String), fc.string()) })
  )
})

const toResponse = (g: Generated): Response =>
  new Response(noBodyStatuses.has(g.status) ? null : typeof g.body === "string" ? g.body : new Uint8Array(g.body), {
    status: g.status,
    headers: g.headers
  })

describe("G15 typed decoding", () => {
  it.live(
    "10,000 generated answers on the four paths: a typed core error or success, never a defect or a hang",
    () =>
      Effect.gen(function* () {
        let next: Generated = { status: 200, body: "{}", headers: {} }
        const scripted = scriptedClient((request) => {
          const access = isToken(request) && request.form.get("requested_token_type")?.endsWith("access-token") === true
          return access ? json({ access_token: ACCESS_CANARY, expires_in: 86_400 }) : toResponse(next)
        })
        // Every log line (debug included), checked for the canary as it is written.
        const logs = { count: 0, leaked: 0 }
        const logger = Logger.make<unknown, void>(({ annotations, cause, message }) => {
          logs.count++
          const text = `${String(message)} ${[...HashMap.values(annotations)].map(String).join(" ")} ${Cause.pretty(cause)}`
          if (text.includes(ACCESS_CANARY)) logs.leaked++
        })
        const logLayer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
        // Retry delays (≤ 1 ms here) pass at once; the 2 s attempt timeout stays real.
        const real = yield* Effect.clock
        const quick: Clock.Clock = {
          [Clock.ClockTypeId]: Clock.ClockTypeId,
          unsafeCurrentTimeMillis: () => real.unsafeCurrentTimeMillis(),
          currentTimeMillis: real.currentTimeMillis,
          unsafeCurrentTimeNanos: () => real.unsafeCurrentTimeNanos(),
          currentTimeNanos: real.currentTimeNanos,
          sleep: (d) => (Duration.toMillis(d) <= 10 ? Effect.void : real.sleep(d))
        }
        const runtime = ManagedRuntime.make(
          ZapierHttp.layer(
            options(keys, {
              rateLimit: false,
              maxAttempts: 2,
              retryBaseDelay: "1 millis",
              retryMaxDelay: "1 millis",
              maxRetryAfter: "1 millis",
              rateLimitCooldown: "1 millis",
              requestTimeout: "2 seconds",
              maxResponseBytes: 2_048
            })
          ).pipe(Layer.provide(scripted.layer), Layer.provideMerge(logLayer), Layer.provideMerge(Layer.setClock(quick)))
        )
        const paths: Record<
          "get" | "list" | "create" | "connect",
          Effect.Effect<void, unknown, ZapierHttp.Services>
        > = {
          get: Effect.flatMap(ActionRuns.ActionRuns, (r) => r.get(user, Domain.ActionRunId.make("r1"))),
          list: Effect.flatMap(Connections.Connections, (c) => c.list(user, app)),
          create: Effect.flatMap(ActionRuns.ActionRuns, (r) =>
            r.create(user, { action: Domain.ActionId.make("a1"), connection: null, inputs: {} })
          ),
          connect: Effect.flatMap(TokenExchange.TokenExchange, (t) => t.connectToken(user, app))
        }
        const outcomes = new Map<string, number>()
        yield* check(
          fc.asyncProperty(
            generatedArb,
            fc.constantFrom("get" as const, "list" as const, "create" as const, "connect" as const),
            async (generated, path) => {
              next = generated
              // The scripted client records every request; nothing here reads them.
              scripted.requests.length = 0
              // The race only catches a hang: 20 s, cleared when the run ends (one timer per run, not 10,000 live).
              let timer: ReturnType<typeof setTimeout> | undefined
              const exit = await Promise.race([
                runtime.runPromiseExit(paths[path]),
                new Promise<"hang">((resolve) => {
                  timer = setTimeout(() => resolve("hang"), 20_000)
                })
              ]).finally(() => clearTimeout(timer))
              assert.notStrictEqual(exit, "hang")
              if (exit === "hang") return
              if (Exit.isSuccess(exit)) {
                outcomes.set("success", (outcomes.get("success") ?? 0) + 1)
                return
              }
              assert.isFalse(Cause.isDie(exit.cause), Cause.pretty(exit.cause))
              assert.isFalse(Cause.isInterrupted(exit.cause))
              const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
              const tag =
                typeof failure === "object" && failure !== null && "_tag" in failure ? String(failure._tag) : ""
              assert.isTrue(coreErrors.has(tag), `not a core error: ${tag}`)
              assert.notInclude(Cause.pretty(exit.cause), ACCESS_CANARY)
              outcomes.set(tag, (outcomes.get(tag) ?? 0) + 1)
            }
          ),
          { numRuns: 10_000 }
        )
        yield* Effect.promise(() => runtime.dispose())
        // The generators reach both ends: successes and decoding failures.
        assert.isAbove(outcomes.get("success") ?? 0, 100)
        assert.isAbove(outcomes.get("InvalidResponse") ?? 0, 100)
        assert.isAbove(outcomes.get("RunOutcomeUnknown") ?? 0, 100)
        assert.isAbove(logs.count, 1_000)
        assert.strictEqual(logs.leaked, 0)
      }),
    // 10,000 requests through the live client are CPU work: alone on this loaded 2-core machine ~32 s of CPU and
    // 191 s of wall time (measured); the default 30 s budget failed under a full suite. This one only ends a hang.
    { timeout: 400_000 }
  )
})

describe("found by G15", () => {
  it.effect("an absurd expires_in (years, or past the end of dates) is trusted for a day at most, never a defect", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      for (const expiresIn of [8_638_204_112_759.769, 1e300, 10 * 365 * 86_400]) {
        const scripted = scriptedClient(() => json({ access_token: "tok", expires_in: expiresIn }))
        const layer = ZapierHttp.layer(options(keys, { rateLimit: false })).pipe(Layer.provide(scripted.layer))
        const token = yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
          Effect.provide(layer)
        )
        assert.strictEqual(token.expiresAt.epochMillis, NOW + 24 * 3_600_000)
      }
    })
  )
})
