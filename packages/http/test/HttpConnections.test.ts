import { assert, describe, it } from "@effect/vitest"
import { Connections, Domain } from "@effect-zapier/core"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { ZapierHttp } from "../src/index.js"
import { app, bearerOf, driveClock, failureOf, fakeZapier, generateKeys, json, options, user } from "./kit.js"

const keys = await generateKeys("ES256")
const NOW = Date.parse("2026-03-01T12:00:00Z")

const item = (id: string | number, extra: Record<string, unknown> = {}) => ({
  type: "authentication",
  id,
  app,
  is_expired: false,
  title: `Connection ${id}`,
  ...extra
})

describe("HttpConnections", () => {
  it.effect("list sends GET /v2/authentications?app=&limit=&offset= with the user's Bearer token", () => {
    const zapier = fakeZapier(() =>
      json({ links: { next: null, prev: null }, meta: { count: 1, limit: 100, offset: 0 }, data: [item("c1")] })
    )
    return Effect.gen(function* () {
      const connections = yield* Connections.Connections
      const list = yield* connections.list(user, app)
      assert.deepStrictEqual(list, [
        Domain.Connection.make({
          id: Domain.ConnectionId.make("c1"),
          app,
          isExpired: false,
          title: "Connection c1"
        })
      ])
      const request = zapier.requests[1]!
      assert.strictEqual(request.method, "GET")
      assert.strictEqual(request.path, "/v2/authentications")
      assert.strictEqual(request.url.origin, "https://api.zapier.com")
      assert.deepStrictEqual(Object.fromEntries(request.url.searchParams), { app, limit: "100", offset: "0" })
      assert.strictEqual(bearerOf(request), "access-token-canary-1")
      assert.strictEqual(request.headers.accept, "application/json")
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("list follows links.next to the end, within the API origin", () => {
    const zapier = fakeZapier((request) => {
      const page = request.url.searchParams.get("page") ?? "1"
      if (page === "1") {
        return json({
          links: { next: "https://api.zapier.com/v2/authentications?app=x&page=2", prev: null },
          data: [item("c1"), item(2, { is_expired: true })]
        })
      }
      if (page === "2") {
        return json({
          // Relative links and "previous" (the /v2/apps spelling) are accepted too.
          links: {
            next: "/v2/authentications?app=x&page=3",
            previous: "https://api.zapier.com/v2/authentications?page=1"
          },
          data: [item("c3", { app: { id: app, title: "Expanded app" } })]
        })
      }
      return json({ links: { next: null }, data: [item("c4", { title: null })] })
    })
    return Effect.gen(function* () {
      const list = yield* Effect.flatMap(Connections.Connections, (c) => c.list(user, app))
      assert.deepStrictEqual(
        list.map((c) => [c.id, c.app, c.isExpired]),
        [
          ["c1", app, false],
          ["2", app, true],
          ["c3", app, false],
          ["c4", app, false]
        ]
      )
      assert.isUndefined(list[3]!.title)
      assert.deepStrictEqual(
        zapier.requests.slice(1).map((r) => r.url.search),
        ["?app=81f613aa-c98a-4383-a5fc-195e68647217&limit=100&offset=0", "?app=x&page=2", "?app=x&page=3"]
      )
      assert.isTrue(zapier.requests.slice(1).every((r) => bearerOf(r) === "access-token-canary-1"))
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("list pages by offset/limit while meta.count says there is more", () => {
    const all = Array.from({ length: 5 }, (_, i) => item(`c${i}`))
    const zapier = fakeZapier((request) => {
      const offset = Number(request.url.searchParams.get("offset"))
      const limit = Number(request.url.searchParams.get("limit"))
      return json({ meta: { count: all.length, limit, offset }, data: all.slice(offset, offset + limit) })
    })
    return Effect.gen(function* () {
      const list = yield* Effect.flatMap(Connections.Connections, (c) => c.list(user, app))
      assert.deepStrictEqual(
        list.map((c) => c.id),
        ["c0", "c1", "c2", "c3", "c4"]
      )
      assert.deepStrictEqual(
        zapier.requests.slice(1).map((r) => r.url.searchParams.get("offset")),
        ["0", "2", "4"]
      )
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys, { pageSize: 2 })).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("a links.next pointing at another origin is not followed (the token stays with Zapier)", () => {
    const zapier = fakeZapier(() =>
      json({ links: { next: "https://evil.example/v2/authentications?page=2" }, data: [item("c1")] })
    )
    return Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.flatMap(Connections.Connections, (c) => c.list(user, app)))
      assert.strictEqual(error._tag, "InvalidResponse")
      assert.strictEqual(zapier.requests.length, 2)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("connectLink builds {connectUrl}/to/{app}?token=… with the options, expiring with the token", () => {
    const zapier = fakeZapier(() => json({}, 404))
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const connections = yield* Connections.Connections
      const link = yield* connections.connectLink(user, app, {
        reconnect: Domain.ConnectionId.make("c-expired"),
        redirectUri: "https://partner.example/zapier/callback",
        state: "state-123",
        theme: "dark"
      })
      const url = new URL(link.url)
      assert.strictEqual(`${url.origin}${url.pathname}`, `https://connect.zapier.com/to/${app}`)
      assert.deepStrictEqual(Object.fromEntries(url.searchParams), {
        token: "connect-token-canary-1",
        reconnect_id: "c-expired",
        redirect_uri: "https://partner.example/zapier/callback",
        state: "state-123",
        theme: "dark"
      })
      assert.strictEqual(link.app, app)
      assert.strictEqual(link.reconnect, "c-expired")
      assert.strictEqual(link.state, "state-123")
      assert.strictEqual(DateTime.toEpochMillis(link.expiresAt), NOW + 360_000)
      // The connect token's resource matches the link.
      assert.strictEqual(zapier.requests[1]!.form.get("resource"), `https://connect.zapier.com/to/${app}`)
      // A plain link has only the token; every link has a fresh connect token.
      const plain = yield* connections.connectLink(user, app)
      assert.deepStrictEqual([...new URL(plain.url).searchParams.keys()], ["token"])
      assert.strictEqual(new URL(plain.url).searchParams.get("token"), "connect-token-canary-2")
      assert.isUndefined(plain.reconnect)
      // The link prints without its token.
      assert.notInclude(JSON.stringify(link), "connect-token-canary")
    }).pipe(
      Effect.provide(
        ZapierHttp.layer(options(keys, { connectUrl: "https://connect.zapier.com/" })).pipe(Layer.provide(zapier.layer))
      )
    )
  })

  it.effect("an undecodable page is InvalidResponse naming the field, after one retry", () => {
    const zapier = fakeZapier(() => json({ data: [{ id: "c1", app, is_expired: "no" }] }))
    return Effect.gen(function* () {
      const exit = yield* driveClock(Effect.flatMap(Connections.Connections, (c) => c.list(user, app)))
      const error = failureOf(exit)
      assert.strictEqual(error?._tag, "InvalidResponse")
      if (error?._tag === "InvalidResponse") assert.include(error.reason, "data.0.is_expired is invalid")
      assert.strictEqual(zapier.requests.length, 3)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })
})
