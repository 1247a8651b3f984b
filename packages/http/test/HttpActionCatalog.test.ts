import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, Domain } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ZapierHttp } from "../src/index.js"
import { app, bearerOf, fakeZapier, generateKeys, json, options, user } from "./kit.js"

const keys = await generateKeys("ES256")

const action = (key: string, actionType: string, n: number, extra: Record<string, unknown> = {}) => ({
  id: `uag:${key}-${n}`,
  key,
  app,
  type: "action",
  action_type: actionType,
  is_instant: false,
  title: `Title ${key}`,
  description: `Does ${key}`,
  ...extra
})

describe("HttpActionCatalog", () => {
  it.effect("resolve looks the action up on every call: GET /v2/actions?app=&action_type=, fresh id", () => {
    let lookups = 0
    const zapier = fakeZapier(() => {
      lookups++
      return json({
        links: { next: null, prev: null },
        meta: { count: 2, limit: 10, offset: 0 },
        data: [action("send_message", "WRITE", lookups), action("other", "WRITE", lookups)]
      })
    })
    return Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const key = Domain.ActionKey.make("send_message")
      const first = yield* catalog.resolve(user, app, key, "WRITE")
      const second = yield* catalog.resolve(user, app, key, "WRITE")
      assert.deepStrictEqual(
        first,
        Domain.Action.make({
          id: Domain.ActionId.make("uag:send_message-1"),
          key,
          app,
          actionType: "WRITE",
          title: "Title send_message",
          description: "Does send_message",
          isInstant: false
        })
      )
      assert.strictEqual(second.id, "uag:send_message-2")
      const requests = zapier.requests.filter((r) => r.path === "/v2/actions")
      assert.strictEqual(requests.length, 2)
      assert.deepStrictEqual(Object.fromEntries(requests[0]!.url.searchParams), {
        app,
        action_type: "WRITE",
        limit: "100",
        offset: "0"
      })
      assert.strictEqual(bearerOf(requests[0]!), "access-token-canary-1")
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("an unknown key (or a key of another type) is ActionNotFound", () => {
    const zapier = fakeZapier(() => json({ data: [action("new_lead", "READ", 1)] }))
    return Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const missing = yield* Effect.flip(catalog.resolve(user, app, Domain.ActionKey.make("nope")))
      assert.strictEqual(missing._tag, "ActionNotFound")
      if (missing._tag === "ActionNotFound") {
        assert.strictEqual(missing.key, "nope")
        assert.isUndefined(missing.actionType)
      }
      // The server ignored the filter; the client still checks the type.
      const wrongType = yield* Effect.flip(catalog.resolve(user, app, Domain.ActionKey.make("new_lead"), "WRITE"))
      assert.strictEqual(wrongType._tag, "ActionNotFound")
      if (wrongType._tag === "ActionNotFound") assert.strictEqual(wrongType.actionType, "WRITE")
      const found = yield* catalog.resolve(user, app, Domain.ActionKey.make("new_lead"))
      assert.strictEqual(found.actionType, "READ")
      const noType = zapier.requests.filter((r) => r.path === "/v2/actions")[0]!
      assert.isFalse(noType.url.searchParams.has("action_type"))
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("list accepts the OpenAPI's array of envelopes, lowercase types, and skips unknown types", () => {
    const zapier = fakeZapier(() =>
      json([
        {
          links: { next: null },
          meta: { count: 3 },
          data: [
            action("a", "write", 1, { is_instant: null, description: null }),
            action("b", "TELEPORT", 1),
            action("c", "READ", 1, { is_instant: true, app: { id: app } })
          ]
        }
      ])
    )
    return Effect.gen(function* () {
      const list = yield* Effect.flatMap(ActionCatalog.ActionCatalog, (c) => c.list(user, app))
      assert.deepStrictEqual(
        list.map((a) => [a.key, a.actionType, a.isInstant, a.app]),
        [
          ["a", "WRITE", false, app],
          ["c", "READ", true, app]
        ]
      )
      assert.isUndefined(list[0]!.description)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("an unknown app is NotFound; a 400 is BadRequest with Zapier's errors", () => {
    const zapier = fakeZapier((request) =>
      request.url.searchParams.get("app") === "missing"
        ? json({ errors: [{ status: 404, code: "not_found", title: "Not Found" }] }, 404)
        : json({ errors: [{ status: "400", code: "invalid", title: "Invalid", detail: "app must be a uuid" }] }, 400)
    )
    return Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const notFound = yield* Effect.flip(catalog.list(user, Domain.AppId.make("missing")))
      assert.strictEqual(notFound._tag, "NotFound")
      if (notFound._tag === "NotFound") assert.strictEqual(notFound.resource, "app missing")
      const bad = yield* Effect.flip(catalog.list(user, Domain.AppId.make("not-a-uuid")))
      assert.strictEqual(bad._tag, "BadRequest")
      if (bad._tag === "BadRequest") {
        assert.strictEqual(bad.errors.length, 1)
        assert.strictEqual(bad.errors[0]!.code, "invalid")
        assert.strictEqual(bad.errors[0]!.detail, "app must be a uuid")
        assert.strictEqual(bad.errors[0]!.status, 400)
      }
      // Neither was retried.
      assert.strictEqual(zapier.requests.filter((r) => r.path === "/v2/actions").length, 2)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })
})
