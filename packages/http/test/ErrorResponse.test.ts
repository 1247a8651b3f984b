import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Domain, Errors } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ErrorResponse } from "../src/index.js"

const app = Domain.AppId.make("slack")

const bodyOf = (response: HttpServerResponse.HttpServerResponse) =>
  response.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(response.body.body)) : undefined

describe("ErrorResponse", () => {
  it.effect("maps errors to statuses and a {error, message} body", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Errors.ZapierError, number]> = [
        [new Errors.NotFound({ endpoint: "GET /v2/apps", resource: "app nope" }), 404],
        [new Errors.ZapierUnavailable({ endpoint: "GET /v2/actions", reason: "timeout" }), 503],
        [new Errors.ActionNotFound({ app, key: Domain.ActionKey.make("nope") }), 404],
        [new Errors.RunOutcomeUnknown({ endpoint: "POST /v2/action-runs/", reason: "reset" }), 502],
        [new Errors.ConnectionRequired({ app, reason: "missing" }), 409]
      ]
      for (const [error, status] of cases) {
        const response = yield* ErrorResponse.toResponse(error)
        assert.strictEqual(response.status, status, error._tag)
        assert.strictEqual(ErrorResponse.status(error), status)
        assert.deepStrictEqual(bodyOf(response), { error: error._tag, message: error.message })
        assert.strictEqual(response.headers["cache-control"], "no-store")
      }
    })
  )

  it.effect("RateLimited carries Retry-After in whole seconds", () =>
    Effect.gen(function* () {
      const response = yield* ErrorResponse.toResponse(
        new Errors.RateLimited({ endpoint: "GET /v2/actions", retryAfter: Duration.millis(1500) })
      )
      assert.strictEqual(response.status, 429)
      assert.strictEqual(response.headers["retry-after"], "2")
    })
  )
})
