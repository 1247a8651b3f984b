/**
 * Numeric ids on the wire: Zapier may send an id as a number, which JSON gives us as a float. Only a safe integer
 * names one id exactly; anything else (beyond 2^53, fractional, `1e400` = Infinity) would become a different id
 * once printed, so it is refused, and the error names the field without quoting the value.
 */

import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, Connections, Domain } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { Wire, ZapierHttp } from "../src/index.js"
import { app, driveClock, failureOf, fakeZapier, generateKeys, options, user } from "./kit.js"

const keys = await generateKeys("ES256")

/** The JSON text of an authentications page whose only item has the id written as `idText`. */
const pageWithId = (idText: string) =>
  `{"links":{"next":null},"data":[{"id":${idText},"app":"${app}","is_expired":false}]}`

const decodeId = Schema.decodeUnknownEither(Wire.Id)

/** Numbers that are not safe integers, as JSON writes them. */
const unsafeNumberText = fc.oneof(
  fc.bigInt({ min: 2n ** 53n, max: 10n ** 30n }).map(String),
  fc.bigInt({ min: -(10n ** 30n), max: -(2n ** 53n) }).map(String),
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .filter((d) => !Number.isInteger(d))
    .map(String),
  fc.constantFrom("1e400", "-1e400", "12345678901234567891", "9007199254740993", "1.5", "0.1e1000")
)

describe("Wire.Id", () => {
  it("a safe integer becomes its exact decimal string", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        const decoded = decodeId(JSON.parse(String(n)))
        assert.isTrue(Either.isRight(decoded))
        if (Either.isRight(decoded)) assert.strictEqual(decoded.right, String(n))
      })
    )
  })

  it("a number that is not a safe integer is refused (it would name another id)", () => {
    fc.assert(
      fc.property(unsafeNumberText, (text) => {
        assert.isTrue(Either.isLeft(decodeId(JSON.parse(text))), text)
      })
    )
  })

  it("a string id is kept as sent, digits and all", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (s) => {
        assert.deepStrictEqual(decodeId(s), Either.right(s))
      })
    )
  })

  it.effect("over a list request: InvalidResponse naming the field, never the value", () =>
    Effect.gen(function* () {
      for (const text of ["12345678901234567891", "1e400", "-9007199254740993", "3.25"]) {
        const zapier = fakeZapier(
          () => new Response(pageWithId(text), { status: 200, headers: { "content-type": "application/json" } })
        )
        const layer = ZapierHttp.layer(options(keys, { rateLimit: false })).pipe(Layer.provide(zapier.layer))
        // A body that does not decode is retried once after a backoff: drive the TestClock.
        const exit = yield* driveClock(
          Effect.flatMap(Connections.Connections, (c) => c.list(user, app)).pipe(Effect.provide(layer))
        )
        const error = failureOf(exit)
        assert.strictEqual(error?._tag, "InvalidResponse", text)
        if (error?._tag !== "InvalidResponse") continue
        assert.include(error.reason, "data.0.id")
        // Neither the value nor what it would have turned into.
        for (const shown of [text, String(Number(text)), "Infinity", "12345678901234567000"]) {
          assert.notInclude(error.message, shown)
          assert.notInclude(JSON.stringify(error), shown)
        }
      }
    })
  )

  it.effect("a safe numeric action id over the wire is the same id as a string", () =>
    Effect.gen(function* () {
      const zapier = fakeZapier(
        () =>
          new Response(
            `{"links":{"next":null},"data":[{"id":9007199254740991,"key":"k","action_type":"WRITE","app":"${app}"}]}`,
            { status: 200, headers: { "content-type": "application/json" } }
          )
      )
      const layer = ZapierHttp.layer(options(keys, { rateLimit: false })).pipe(Layer.provide(zapier.layer))
      const action = yield* Effect.flatMap(ActionCatalog.ActionCatalog, (c) =>
        c.resolve(user, app, Domain.ActionKey.make("k"), "WRITE")
      ).pipe(Effect.provide(layer))
      assert.strictEqual(action.id, "9007199254740991")
    })
  )
})
