import { assert, describe, it } from "@effect/vitest"
import { Connections, Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { FakeZapier } from "../src/index.js"

const { sample } = FakeZapier
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })

const Zapier = FakeZapier.layer(FakeZapier.sampleSeed)

/** A value written in plain JavaScript (or read from JSON), which the types did not check. */
const fromJavaScript = <A>(value: unknown) => value as A

const invalid = (method: string, field: string, value: string, allowed: string) => ({
  _tag: "InvalidControl" as const,
  method,
  field,
  value,
  allowed
})

/**
 * How a control method failed, as its fields: the error itself carries the span of the failing `Effect.fn`, which a
 * deep comparison would walk.
 */
const refusal = <A>(control: Effect.Effect<A, FakeZapier.InvalidControl>) =>
  Effect.map(Effect.flip(control), (e) => ({
    _tag: e._tag,
    method: e.method,
    field: e.field,
    value: e.value,
    allowed: e.allowed
  }))

const count = "a whole number of at least 0"
const times = "a whole number of at least 1, or Infinity (every matching request)"
const status = "a whole number from 100 to 599 (an HTTP status)"
const duration = `a finite duration of zero or more (a Duration, millis, or a string such as "2 seconds")`

/** The outcome of listing alice's slack connections: "ok" or the error's tag. */
const listOutcome = Effect.flatMap(Connections.Connections, (connections) =>
  Effect.map(Effect.either(connections.list(alice, sample.slack)), (e) => (e._tag === "Left" ? e.left._tag : "ok"))
)

describe("FakeZapier control methods (their arguments decoded)", () => {
  it.effect("injectFault refuses a count, status or duration the model cannot use, naming the field", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const { Fault } = FakeZapier
      const cases: ReadonlyArray<readonly [FakeZapier.FaultRule, ReturnType<typeof invalid>]> = [
        [{ skip: -1, fault: Fault.malformedBody }, invalid("injectFault", "skip", "-1", count)],
        [{ skip: Number.NaN, fault: Fault.malformedBody }, invalid("injectFault", "skip", "NaN", count)],
        [{ skip: 1.5, fault: Fault.malformedBody }, invalid("injectFault", "skip", "1.5", count)],
        [{ times: 0, fault: Fault.malformedBody }, invalid("injectFault", "times", "0", times)],
        [{ times: 2.5, fault: Fault.malformedBody }, invalid("injectFault", "times", "2.5", times)],
        [{ fault: Fault.delay("-1 seconds") }, invalid("injectFault", "fault.duration", '"-1 seconds"', duration)],
        [{ fault: Fault.delay(Number.NaN) }, invalid("injectFault", "fault.duration", "NaN", duration)],
        [
          { fault: Fault.delay(fromJavaScript<Duration.DurationInput>("soon")) },
          invalid("injectFault", "fault.duration", '"soon"', duration)
        ],
        [
          { fault: Fault.delay(Duration.infinity) },
          invalid("injectFault", "fault.duration", "Duration(Infinity)", duration)
        ],
        [{ fault: Fault.status(503, { retryAfter: -1 }) }, invalid("injectFault", "fault.retryAfter", "-1", duration)],
        [{ fault: Fault.status(42) }, invalid("injectFault", "fault.status", "42", status)],
        [{ fault: Fault.status(500.5) }, invalid("injectFault", "fault.status", "500.5", status)],
        [{ fault: Fault.respond("", { status: 1000 }) }, invalid("injectFault", "fault.status", "1000", status)]
      ]
      for (const [rule, expected] of cases) assert.deepStrictEqual(yield* refusal(zapier.injectFault(rule)), expected)
    }).pipe(Effect.provide(Zapier))
  )

  it.effect("a fault the model does not know is refused", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const error = yield* Effect.flip(
        zapier.injectFault(fromJavaScript<FakeZapier.FaultRule>({ fault: { _tag: "Explode" } }))
      )
      assert.strictEqual(error.method, "injectFault")
      assert.strictEqual(error.field, "fault._tag")
      assert.strictEqual(error.value, '"Explode"')
    }).pipe(Effect.provide(Zapier))
  )

  it.effect("a refused rule is not added: the requests after it are answered as before", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      yield* Effect.flip(
        zapier.injectFault({ fault: FakeZapier.Fault.delay(fromJavaScript<Duration.DurationInput>("soon")) })
      )
      yield* Effect.flip(zapier.injectFault({ times: Number.NaN, fault: FakeZapier.Fault.status(503) }))
      assert.deepStrictEqual(yield* Effect.all([listOutcome, listOutcome]), ["ok", "ok"])
      // a valid rule still fires
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.authentications,
        fault: FakeZapier.Fault.status(503, { retryAfter: 0 })
      })
      assert.deepStrictEqual(yield* Effect.all([listOutcome, listOutcome]), ["ZapierUnavailable", "ok"])
    }).pipe(Effect.provide(Zapier))
  )

  it.effect("setRateLimit refuses NaN, a negative, a fraction or Infinity and keeps the limit it had", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      yield* zapier.setRateLimit(1)
      for (const [perMinute, shown] of [
        [Number.NaN, "NaN"],
        [-1, "-1"],
        [2.5, "2.5"],
        [Number.POSITIVE_INFINITY, "Infinity"]
      ] as const) {
        assert.deepStrictEqual(
          yield* refusal(zapier.setRateLimit(perMinute)),
          invalid("setRateLimit", "perMinute", shown, count)
        )
      }
      // the limit of 1 is still in place
      assert.deepStrictEqual(yield* Effect.all([listOutcome, listOutcome]), ["ok", "RateLimited"])
      // zero and undefined are limits it takes
      yield* zapier.setRateLimit(0)
      assert.strictEqual(yield* listOutcome, "RateLimited")
      yield* zapier.setRateLimit(undefined)
      assert.strictEqual(yield* listOutcome, "ok")
    }).pipe(Effect.provide(Zapier))
  )

  it.effect("the message names the method, the field, the value and what it takes", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const error = yield* Effect.flip(zapier.injectFault({ fault: FakeZapier.Fault.delay("-1 seconds") }))
      assert.strictEqual(
        error.message,
        `FakeZapier.injectFault: fault.duration is "-1 seconds"; it takes ${duration}. Nothing was changed.`
      )
    }).pipe(Effect.provide(Zapier))
  )

  it.effect("the seed's fault rules are checked the same way when the layer is built", () =>
    Effect.gen(function* () {
      const refused = yield* Layer.build(
        FakeZapier.layer({ ...FakeZapier.sampleSeed, faults: [{ fault: FakeZapier.Fault.delay(-5) }] })
      ).pipe(Effect.scoped, Effect.flip)
      assert.deepStrictEqual(
        refused,
        new FakeZapier.InvalidSeed({ field: "faults.0.fault.duration", value: "-5", allowed: duration })
      )
    })
  )
})
