import { assert, describe, it } from "@effect/vitest"
import {
  ActionCatalog,
  ActionRuns,
  Apps,
  ConnectionStore,
  Connections,
  Domain,
  EmbeddedActions,
  TokenExchange
} from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { FakeZapier } from "../src/index.js"

const { sample } = FakeZapier
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })
const bob = Domain.EndUser.make({ userId: "bob", tenantId: "acme" })
const aliceOtherTenant = Domain.EndUser.make({ userId: "alice", tenantId: "globex" })

const Zapier = FakeZapier.layer(FakeZapier.sampleSeed)
const Program = EmbeddedActions.layer.pipe(Layer.provideMerge(Zapier), Layer.provideMerge(ConnectionStore.layerMemory))

const services = Effect.all({
  zapier: FakeZapier.FakeZapier,
  tokens: TokenExchange.TokenExchange,
  connections: Connections.Connections,
  catalog: ActionCatalog.ActionCatalog,
  runs: ActionRuns.ActionRuns
})

/** Connects `user` to slack and resolves send_channel_message: what most run tests start from. */
const connectedAndResolved = (user: Domain.EndUser, key: Domain.ActionKey = sample.sendChannelMessage) =>
  Effect.gen(function* () {
    const { catalog, zapier } = yield* services
    const connection = yield* zapier.addConnection(user, sample.slack)
    const action = yield* catalog.resolve(user, sample.slack, key)
    return { connection, action }
  })

describe("FakeZapier.layer", () => {
  describe("TokenExchange", () => {
    it.effect("caches one access token per user; concurrent callers share one exchange", () =>
      Effect.gen(function* () {
        const { tokens, zapier } = yield* services
        const all = yield* Effect.all(
          Array.from({ length: 50 }, (_, i) => tokens.accessToken(i % 2 === 0 ? alice : bob)),
          { concurrency: "unbounded" }
        )
        const ledger = yield* zapier.ledger
        assert.strictEqual(FakeZapier.exchangesOf(ledger, alice, "access").length, 1)
        assert.strictEqual(FakeZapier.exchangesOf(ledger, bob, "access").length, 1)
        assert.strictEqual(new Set(all.map((t) => Redacted.value(t.value))).size, 2)
        assert.strictEqual(String(all[0]!.value), "<redacted>")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("refreshes ahead of expiry (min(300 s, half the life) before it)", () =>
      Effect.gen(function* () {
        const { tokens, zapier } = yield* services
        const first = yield* tokens.accessToken(alice)
        assert.strictEqual(first.expiresAt.epochMillis, 3_600_000)
        yield* TestClock.adjust("3299 seconds")
        const same = yield* tokens.accessToken(alice)
        assert.strictEqual(Redacted.value(same.value), Redacted.value(first.value))
        yield* TestClock.adjust("2 seconds")
        const fresh = yield* tokens.accessToken(alice)
        assert.notStrictEqual(Redacted.value(fresh.value), Redacted.value(first.value))
        assert.strictEqual(FakeZapier.exchangesOf(yield* zapier.ledger, alice, "access").length, 2)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("honours a configured expires_in", () =>
      Effect.gen(function* () {
        const { tokens, zapier } = yield* services
        yield* tokens.accessToken(alice)
        const [exchange] = FakeZapier.exchangesOf(yield* zapier.ledger, alice)
        assert.strictEqual(exchange!.expiresIn, 120)
        yield* TestClock.adjust("61 seconds") // half of 120 s is left: refresh
        yield* tokens.accessToken(alice)
        assert.strictEqual(FakeZapier.exchangesOf(yield* zapier.ledger, alice).length, 2)
      }).pipe(Effect.provide(FakeZapier.layer({ ...FakeZapier.sampleSeed, accessTokenTtl: "120 seconds" })))
    )

    it.effect("invalidate with another token keeps the cached one", () =>
      Effect.gen(function* () {
        const { tokens, zapier } = yield* services
        const first = yield* tokens.accessToken(alice)
        const stale = Domain.AccessToken.make({ ...first, value: Redacted.make("not-the-cached-one") })
        yield* tokens.invalidate(alice, stale)
        yield* tokens.accessToken(alice)
        assert.strictEqual(FakeZapier.exchangesOf(yield* zapier.ledger, alice).length, 1)
        yield* tokens.invalidate(alice, first)
        yield* tokens.accessToken(alice)
        assert.strictEqual(FakeZapier.exchangesOf(yield* zapier.ledger, alice).length, 2)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a revoked token gets a 401, one re-exchange and one retry", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        yield* zapier.addConnection(alice, sample.slack)
        yield* connections.list(alice, sample.slack)
        yield* zapier.revokeTokens(alice)
        const listed = yield* connections.list(alice, sample.slack)
        assert.strictEqual(listed.length, 1)
        const ledger = yield* zapier.ledger
        assert.strictEqual(FakeZapier.exchangesOf(ledger, alice, "access").length, 2)
        assert.deepStrictEqual(
          ledger.requests.filter((r) => r.endpoint === FakeZapier.Endpoint.authentications).map((r) => r.status),
          [200, 401, 200]
        )
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a 401 that persists after the refresh is Unauthorized", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.authentications,
          times: 2,
          fault: FakeZapier.Fault.status(401)
        })
        const error = yield* Effect.flip(connections.list(alice, sample.slack))
        assert.strictEqual(error._tag, "Unauthorized")
        assert.strictEqual(FakeZapier.exchangesOf(yield* zapier.ledger, alice, "access").length, 2)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("connect tokens are never cached and last 6 minutes", () =>
      Effect.gen(function* () {
        const { tokens, zapier } = yield* services
        const a = yield* tokens.connectToken(alice, sample.slack)
        const b = yield* tokens.connectToken(alice, sample.slack)
        assert.notStrictEqual(Redacted.value(a.value), Redacted.value(b.value))
        assert.strictEqual(a.expiresAt.epochMillis, 6 * 60_000)
        const ledger = yield* zapier.ledger
        assert.strictEqual(FakeZapier.exchangesOf(ledger, alice, "connect").length, 2)
        assert.strictEqual(FakeZapier.exchangesOf(ledger, alice, "access").length, 1)
      }).pipe(Effect.provide(Zapier))
    )
  })

  describe("Connections and Connect UI", () => {
    it.effect("lists only the user's own connections to the app, in creation order", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const first = yield* zapier.addConnection(alice, sample.slack, { title: "first" })
        yield* zapier.addConnection(bob, sample.slack)
        yield* zapier.addConnection(aliceOtherTenant, sample.slack)
        yield* zapier.addConnection(alice, sample.sheets)
        const second = yield* zapier.addConnection(alice, sample.slack, { isExpired: true })
        const listed = yield* connections.list(alice, sample.slack)
        assert.deepStrictEqual(
          listed.map((c) => [c.id, c.isExpired]),
          [
            [first.id, false],
            [second.id, true]
          ]
        )
        assert.strictEqual(listed[0]!.title, "first")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("builds Connect links like the real client", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const old = yield* zapier.addConnection(alice, sample.slack, { isExpired: true })
        const link = yield* connections.connectLink(alice, sample.slack, {
          state: "st-1",
          reconnect: old.id,
          redirectUri: "https://partner.example/cb",
          theme: "dark"
        })
        const url = new URL(link.url)
        assert.strictEqual(`${url.origin}${url.pathname}`, "https://connect.zapier.com/to/slack")
        assert.match(url.searchParams.get("token") ?? "", /^zct_/)
        assert.strictEqual(url.searchParams.get("state"), "st-1")
        assert.strictEqual(url.searchParams.get("reconnect_id"), old.id)
        assert.strictEqual(url.searchParams.get("redirect_uri"), "https://partner.example/cb")
        assert.strictEqual(url.searchParams.get("theme"), "dark")
        assert.strictEqual(link.reconnect, old.id)
        assert.strictEqual(link.state, "st-1")
        assert.strictEqual(link.expiresAt.epochMillis, 6 * 60_000)
        assert.notInclude(JSON.stringify(link), url.searchParams.get("token")!)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("approveConnect creates the connection and returns the redirect callback", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack, { state: "st-2" })
        const payload = yield* zapier.approveConnect(link)
        const listed = yield* connections.list(alice, sample.slack)
        assert.strictEqual(listed.length, 1)
        assert.deepStrictEqual(payload, { authentication_id: listed[0]!.id, service: "SlackAPI", state: "st-2" })
        assert.isFalse(listed[0]!.isExpired)
        const decoded = Schema.decodeUnknownSync(Domain.ConnectCallback)(payload)
        assert.strictEqual(decoded._tag, "Approved")
        assert.strictEqual((yield* zapier.connections(bob)).length, 0)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("popup mode returns the authenticationSuccess message with a numeric authId", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack)
        const payload = yield* zapier.approveConnect(link.url, { mode: "popup", title: "Alice's Slack" })
        const [created] = yield* zapier.connections(alice, sample.slack)
        assert.deepStrictEqual(payload, { type: "authenticationSuccess", authId: Number(created!.id) })
        assert.strictEqual(created!.title, "Alice's Slack")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a connect token is single use: the second approval gets Invalid token", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack, { state: "s" })
        yield* zapier.approveConnect(link)
        const again = yield* zapier.approveConnect(link)
        assert.deepStrictEqual(again, { error: "invalid_request", error_description: "Invalid token", state: "s" })
        assert.strictEqual((yield* zapier.connections(alice)).length, 1)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("an expired connect token gets Token expired (after 6 minutes on the clock)", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack, { state: "s" })
        yield* TestClock.adjust("6 minutes")
        const payload = yield* zapier.approveConnect(link)
        assert.deepStrictEqual(payload, { error: "invalid_request", error_description: "Token expired", state: "s" })
        const popup = yield* zapier.approveConnect(
          yield* Effect.map(connections.connectLink(alice, sample.slack), (l) => l.url.replace("token=", "token=x")),
          { mode: "popup" }
        )
        assert.deepStrictEqual(popup, {
          type: "authenticationError",
          error: { error: "invalid_request", error_description: "Invalid token" }
        })
        assert.strictEqual((yield* zapier.connections(alice)).length, 0)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a token minted for one app cannot connect another; an unknown app is Invalid app", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack)
        const wrong = yield* zapier.approveConnect(link.url.replace("/to/slack", "/to/google-sheets"))
        assert.deepStrictEqual(wrong, { error: "invalid_request", error_description: "Invalid token" })
        const unknown = yield* connections.connectLink(alice, Domain.AppId.make("nope"))
        const payload = yield* zapier.approveConnect(unknown)
        assert.deepStrictEqual(payload, { error: "invalid_request", error_description: "Invalid app" })
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("reconnect keeps the connection id and marks it valid again", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const old = yield* zapier.addConnection(alice, sample.slack)
        yield* zapier.expireConnection(old.id)
        assert.isTrue((yield* connections.list(alice, sample.slack))[0]!.isExpired)
        const link = yield* connections.connectLink(alice, sample.slack, { reconnect: old.id })
        const payload = yield* zapier.approveConnect(link)
        assert.deepStrictEqual(payload, { authentication_id: old.id, service: "SlackAPI" })
        const listed = yield* connections.list(alice, sample.slack)
        assert.deepStrictEqual(
          listed.map((c) => [c.id, c.isExpired]),
          [[old.id, false]]
        )
        const ledger = yield* zapier.ledger
        assert.isTrue(ledger.connects.at(-1)!.reconnect)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("reconnecting another user's connection is refused", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const bobs = yield* zapier.addConnection(bob, sample.slack, { isExpired: true })
        const link = yield* connections.connectLink(alice, sample.slack, { reconnect: bobs.id })
        const payload = yield* zapier.approveConnect(link)
        assert.deepStrictEqual(payload, { error: "invalid_request", error_description: "Invalid reconnect_id" })
        assert.isTrue((yield* zapier.connections(bob))[0]!.isExpired)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("denyConnect returns the error callback and creates nothing", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack, { state: "s" })
        const payload = yield* zapier.denyConnect(link)
        assert.deepStrictEqual(payload, {
          error: "server_error",
          error_description: "OAuth Failed: access_denied",
          state: "s"
        })
        assert.strictEqual(Schema.decodeUnknownSync(Domain.ConnectCallback)(payload)._tag, "Denied")
        assert.strictEqual((yield* zapier.connections(alice)).length, 0)
        assert.strictEqual((yield* zapier.ledger).connects[0]!.outcome, "denied")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("the redirect callback keeps the redirect_uri's own query; registration ignores the query", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const redirectUri = "https://partner.example/cb?app=slack&connect_attempt=n-1"
        const link = yield* connections.connectLink(alice, sample.slack, { redirectUri, state: "s-1" })
        const payload = yield* zapier.approveConnect(link)
        if (!("authentication_id" in payload)) return assert.fail("expected the success redirect")
        assert.deepStrictEqual(
          { app: payload.app, attempt: payload.connect_attempt, state: payload.state, service: payload.service },
          { app: "slack", attempt: "n-1", state: "s-1", service: "SlackAPI" }
        )
        const denied = yield* zapier.denyConnect(
          yield* connections.connectLink(alice, sample.slack, { redirectUri, state: "s-2" })
        )
        if (!("error_description" in denied)) return assert.fail("expected the error redirect")
        assert.deepStrictEqual([denied.connect_attempt, denied.error], ["n-1", "server_error"])
      }).pipe(
        Effect.provide(
          FakeZapier.layer({
            ...FakeZapier.sampleSeed,
            partner: { ...FakeZapier.sampleSeed.partner, redirectUris: ["https://partner.example/cb"] }
          })
        )
      )
    )

    it.effect("a redirect_uri that is not registered is refused without redirecting", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        const link = yield* connections.connectLink(alice, sample.slack, { redirectUri: "https://evil.example/cb" })
        const payload = yield* zapier.approveConnect(link)
        assert.deepStrictEqual(payload, { error: "invalid_request", error_description: "Invalid redirect_uri" })
      }).pipe(
        Effect.provide(
          FakeZapier.layer({
            ...FakeZapier.sampleSeed,
            partner: { ...FakeZapier.sampleSeed.partner, redirectUris: ["https://partner.example/cb"] }
          })
        )
      )
    )
  })

  describe("ActionCatalog", () => {
    it.effect("resolve returns a new action id on every lookup, and the ledger counts lookups", () =>
      Effect.gen(function* () {
        const { catalog, zapier } = yield* services
        const a = yield* catalog.resolve(alice, sample.slack, sample.sendChannelMessage, "WRITE")
        const b = yield* catalog.resolve(alice, sample.slack, sample.sendChannelMessage)
        assert.notStrictEqual(a.id, b.id)
        assert.strictEqual(a.key, sample.sendChannelMessage)
        assert.strictEqual(a.actionType, "WRITE")
        assert.strictEqual(a.title, "Send Channel Message")
        const ledger = yield* zapier.ledger
        assert.strictEqual(FakeZapier.lookupsOf(ledger, alice).length, 2)
        assert.strictEqual(FakeZapier.requestsByEndpoint(ledger)[FakeZapier.Endpoint.actions], 2)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("list filters by action type", () =>
      Effect.gen(function* () {
        const { catalog } = yield* services
        const all = yield* catalog.list(alice, sample.slack)
        const searches = yield* catalog.list(alice, sample.slack, { actionType: "SEARCH" })
        assert.strictEqual(all.length, 6)
        assert.deepStrictEqual(
          searches.map((a) => a.key),
          [sample.findUserByEmail]
        )
        assert.isTrue(all.find((a) => a.key === sample.listChannels)!.isInstant)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("an unknown key (or wrong type) is ActionNotFound; an unknown app is NotFound", () =>
      Effect.gen(function* () {
        const { catalog } = yield* services
        const missing = yield* Effect.flip(catalog.resolve(alice, sample.slack, Domain.ActionKey.make("nope")))
        assert.strictEqual(missing._tag, "ActionNotFound")
        const wrongType = yield* Effect.flip(catalog.resolve(alice, sample.slack, sample.sendChannelMessage, "SEARCH"))
        assert.strictEqual(wrongType._tag, "ActionNotFound")
        const noApp = yield* Effect.flip(catalog.resolve(alice, Domain.AppId.make("nope"), sample.sendChannelMessage))
        assert.strictEqual(noApp._tag, "NotFound")
      }).pipe(Effect.provide(Zapier))
    )
  })

  describe("ActionRuns", () => {
    it.effect("a run succeeds after its scripted duration, computed from the clock", () =>
      Effect.gen(function* () {
        const { runs, zapier } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice)
        const runId = yield* runs.create(alice, {
          action: action.id,
          connection: connection.id,
          inputs: { channel: "#general", text: "hi" }
        })
        yield* TestClock.adjust("1999 millis")
        const pending = yield* runs.get(alice, runId)
        assert.deepStrictEqual(pending, new Domain.RunPending({ runId, status: "waiting" }))
        yield* TestClock.adjust("1 millis")
        const done = yield* runs.get(alice, runId)
        assert.strictEqual(done._tag, "RunSucceeded")
        assert.deepStrictEqual(done._tag === "RunSucceeded" ? done.results : [], [
          { ok: true, channel: "#general", text: "hi", ts: "1711900000.000100" }
        ])
        const ledger = yield* zapier.ledger
        assert.deepStrictEqual(
          FakeZapier.pollsOf(ledger, runId).map((p) => [p.at, p.status]),
          [
            [1999, "waiting"],
            [2000, "success"]
          ]
        )
        assert.strictEqual(FakeZapier.runsOf(ledger, alice).length, 1)
        assert.deepStrictEqual(FakeZapier.runsOf(ledger, alice)[0]!.inputs, { channel: "#general", text: "hi" })
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("the ledger counts creates per idempotency key read from what the caller sent", () =>
      Effect.gen(function* () {
        const { runs, zapier } = yield* services
        const create = (job: string | undefined) =>
          Effect.flatMap(connectedAndResolved(alice), ({ connection, action }) =>
            runs.create(alice, {
              action: action.id,
              connection: connection.id,
              inputs: { channel: "#general", text: "hi", ...(job !== undefined ? { job } : {}) }
            })
          )
        yield* create("job-1")
        yield* create("job-2")
        yield* create("job-1")
        yield* create(undefined)
        const counts = FakeZapier.createsPerKey(yield* zapier.ledger, (run) =>
          typeof run.inputs.job === "string" ? run.inputs.job : undefined
        )
        assert.deepStrictEqual([...counts.entries()].sort(), [
          ["job-1", 2],
          ["job-2", 1]
        ])
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a failing action fails after its duration with Zapier's errors", () =>
      Effect.gen(function* () {
        const { runs } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice, sample.sendDirectMessage)
        const runId = yield* runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        assert.strictEqual((yield* runs.get(alice, runId))._tag, "RunPending")
        yield* TestClock.adjust("1 second")
        const state = yield* runs.get(alice, runId)
        assert.strictEqual(state._tag, "RunFailed")
        if (state._tag === "RunFailed") {
          assert.strictEqual(state.errors[0]!.code, "user")
          assert.strictEqual(state.errors[0]!.title, "User not found")
        }
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a never-finishing action stays pending", () =>
      Effect.gen(function* () {
        const { runs } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice, sample.exportChannelHistory)
        const runId = yield* runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        yield* TestClock.adjust("7 days")
        assert.strictEqual((yield* runs.get(alice, runId))._tag, "RunPending")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("scriptRuns queues lifecycles: throttled first, then success; delay is carried", () =>
      Effect.gen(function* () {
        const { runs, zapier, catalog } = yield* services
        yield* zapier.scriptRuns(
          sample.slack,
          sample.sendChannelMessage,
          FakeZapier.RunScript.fail(0, [{ code: "throttled", title: "Throttled", delay: "30 seconds" }]),
          FakeZapier.RunScript.succeed("5 seconds", [{ n: 1 }])
        )
        const { connection, action } = yield* connectedAndResolved(alice)
        const first = yield* runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        const failed = yield* runs.get(alice, first)
        assert.strictEqual(failed._tag, "RunFailed")
        if (failed._tag === "RunFailed") assert.strictEqual(Duration.toSeconds(failed.errors[0]!.delay!), 30)
        for (let i = 0; i < 2; i++) {
          const again = yield* catalog.resolve(alice, sample.slack, sample.sendChannelMessage)
          const runId = yield* runs.create(alice, { action: again.id, connection: connection.id, inputs: {} })
          yield* TestClock.adjust("5 seconds")
          assert.deepStrictEqual(yield* runs.get(alice, runId), new Domain.RunSucceeded({ runId, results: [{ n: 1 }] }))
        }
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("create accepts only an action id issued to this user by a lookup", () =>
      Effect.gen(function* () {
        const { runs, zapier } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice)
        const bobsConnection = yield* zapier.addConnection(bob, sample.slack)
        const made = yield* Effect.flip(
          runs.create(alice, { action: Domain.ActionId.make("uag:made-up"), connection: connection.id, inputs: {} })
        )
        assert.strictEqual(made._tag, "BadRequest")
        if (made._tag === "BadRequest") assert.strictEqual(made.errors[0]!.code, "invalid")
        const stolen = yield* Effect.flip(
          runs.create(bob, { action: action.id, connection: bobsConnection.id, inputs: {} })
        )
        assert.strictEqual(stolen._tag, "BadRequest")
        assert.strictEqual((yield* zapier.ledger).runs.length, 0)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("the connection must be this user's, for this app; none is refused for an app with auth", () =>
      Effect.gen(function* () {
        const { runs, zapier } = yield* services
        const { action } = yield* connectedAndResolved(alice)
        const bobs = yield* zapier.addConnection(bob, sample.slack)
        const sheets = yield* zapier.addConnection(alice, sample.sheets)
        for (const connection of [bobs.id, sheets.id, null]) {
          const error = yield* Effect.flip(runs.create(alice, { action: action.id, connection, inputs: {} }))
          assert.strictEqual(error._tag, "BadRequest")
        }
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("an app without auth runs with connection null", () =>
      Effect.gen(function* () {
        const { runs, catalog } = yield* services
        const action = yield* catalog.resolve(alice, sample.formatter, sample.uppercase)
        const runId = yield* runs.create(alice, { action: action.id, connection: null, inputs: { text: "hey" } })
        yield* TestClock.adjust("500 millis")
        assert.deepStrictEqual(
          yield* runs.get(alice, runId),
          new Domain.RunSucceeded({ runId, results: [{ output: "HEY" }] })
        )
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a run on an expired connection fails at once with code authentication", () =>
      Effect.gen(function* () {
        const { runs, zapier } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice)
        yield* zapier.expireConnection(connection.id)
        const runId = yield* runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        const state = yield* runs.get(alice, runId)
        assert.strictEqual(state._tag, "RunFailed")
        if (state._tag === "RunFailed") assert.strictEqual(state.errors[0]!.code, "authentication")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("another user's run (or an unknown id) is NotFound", () =>
      Effect.gen(function* () {
        const { runs } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice)
        const runId = yield* runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        const error = yield* Effect.flip(runs.get(bob, runId))
        assert.strictEqual(error._tag, "NotFound")
        const other = yield* Effect.flip(runs.get(aliceOtherTenant, runId))
        assert.strictEqual(other._tag, "NotFound")
        const unknown = yield* Effect.flip(runs.get(alice, Domain.ActionRunId.make("nope")))
        assert.strictEqual(unknown._tag, "NotFound")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a callback_url must be public HTTPS", () =>
      Effect.gen(function* () {
        const { runs } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice)
        for (const callbackUrl of ["http://partner.example/cb", "https://127.0.0.1/cb", "https://10.1.2.3/cb"]) {
          const error = yield* Effect.flip(
            runs.create(alice, { action: action.id, connection: connection.id, inputs: {}, callbackUrl })
          )
          assert.strictEqual(error._tag, "BadRequest")
        }
        const ok = yield* runs.create(alice, {
          action: action.id,
          connection: connection.id,
          inputs: {},
          callbackUrl: "https://partner.example/cb"
        })
        assert.isString(ok)
      }).pipe(Effect.provide(Zapier))
    )
  })

  describe("faults and rate limits", () => {
    it.effect("a 500 on create is RunOutcomeUnknown; afterCommit means the run exists", () =>
      Effect.gen(function* () {
        const { runs, zapier } = yield* services
        const { connection, action } = yield* connectedAndResolved(alice)
        yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.createRun, fault: FakeZapier.Fault.status(500) })
        const before = yield* Effect.flip(
          runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        )
        assert.strictEqual(before._tag, "RunOutcomeUnknown")
        assert.strictEqual((yield* zapier.ledger).runs.length, 0)
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.createRun,
          fault: FakeZapier.Fault.status(502, { afterCommit: true })
        })
        const after = yield* Effect.flip(
          runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        )
        assert.strictEqual(after._tag, "RunOutcomeUnknown")
        assert.strictEqual((yield* zapier.ledger).runs.length, 1)
        const third = yield* runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        assert.isString(third)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("faults can skip requests, target a user, and repeat", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.authentications,
          user: bob,
          skip: 1,
          times: 2,
          fault: FakeZapier.Fault.status(503)
        })
        const outcomes = yield* Effect.forEach([alice, bob, bob, bob, bob], (u) =>
          Effect.map(Effect.either(connections.list(u, sample.slack)), (e) => (e._tag === "Left" ? e.left._tag : "ok"))
        )
        assert.deepStrictEqual(outcomes, ["ok", "ok", "ZapierUnavailable", "ZapierUnavailable", "ok"])
        yield* zapier.injectFault({ fault: FakeZapier.Fault.status(404) })
        yield* zapier.clearFaults
        assert.isArray(yield* connections.list(alice, sample.slack))
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("a 429 carries Retry-After; a delay fault waits on the clock", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.authentications,
          fault: FakeZapier.Fault.status(429, { retryAfter: "12 seconds" })
        })
        const limited = yield* Effect.flip(connections.list(alice, sample.slack))
        assert.strictEqual(limited._tag, "RateLimited")
        if (limited._tag === "RateLimited") assert.strictEqual(Duration.toSeconds(limited.retryAfter), 12)
        yield* zapier.injectFault({ fault: FakeZapier.Fault.delay("3 seconds") })
        const fiber = yield* Effect.fork(connections.list(alice, sample.slack))
        yield* TestClock.adjust("2 seconds")
        assert.isTrue((yield* Fiber.poll(fiber))._tag === "None")
        yield* TestClock.adjust("1 second")
        assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("malformed bodies and dropped connections map to typed errors", () =>
      Effect.gen(function* () {
        const { connections, runs, zapier } = yield* services
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.authentications,
          fault: FakeZapier.Fault.malformedBody
        })
        assert.strictEqual((yield* Effect.flip(connections.list(alice, sample.slack)))._tag, "InvalidResponse")
        const { connection, action } = yield* connectedAndResolved(alice)
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.createRun,
          fault: FakeZapier.Fault.disconnect({ afterCommit: true })
        })
        const error = yield* Effect.flip(
          runs.create(alice, { action: action.id, connection: connection.id, inputs: {} })
        )
        assert.strictEqual(error._tag, "RunOutcomeUnknown")
        assert.strictEqual((yield* zapier.ledger).runs.length, 1)
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("the rate limit answers 429 past N requests a minute, then cools down for 60 s", () =>
      Effect.gen(function* () {
        const { connections, zapier } = yield* services
        yield* zapier.setRateLimit(3)
        const outcomes = yield* Effect.forEach(Array.from({ length: 4 }), () =>
          Effect.map(Effect.either(connections.list(alice, sample.slack)), (e) => (e._tag === "Left" ? e.left : "ok"))
        )
        assert.deepStrictEqual(outcomes.slice(0, 3), ["ok", "ok", "ok"])
        const limited = outcomes[3]!
        assert.isTrue(typeof limited !== "string" && limited._tag === "RateLimited")
        yield* TestClock.adjust("59 seconds")
        const still = yield* Effect.flip(connections.list(alice, sample.slack))
        assert.strictEqual(still._tag, "RateLimited")
        if (still._tag === "RateLimited") assert.strictEqual(Duration.toSeconds(still.retryAfter), 1)
        yield* TestClock.adjust("1 second")
        assert.isArray(yield* connections.list(alice, sample.slack))
        // token exchanges are not counted against the /v2 limit
        assert.strictEqual(FakeZapier.requestsByEndpoint(yield* zapier.ledger)[FakeZapier.Endpoint.token], 1)
      }).pipe(Effect.provide(Zapier))
    )
  })

  describe("control", () => {
    it.effect("every layer build starts from a fresh state", () =>
      Effect.gen(function* () {
        const count = Effect.flatMap(FakeZapier.FakeZapier, (z) =>
          Effect.zipRight(
            z.addConnection(alice, sample.slack),
            Effect.map(z.connections(alice), (c) => c.length)
          )
        )
        assert.strictEqual(yield* Effect.provide(count, Zapier), 1)
        assert.strictEqual(yield* Effect.provide(count, Zapier), 1)
      })
    )

    it.effect("misuse fails with NotFound naming the control method", () =>
      Effect.gen(function* () {
        const { zapier } = yield* services
        const e1 = yield* Effect.flip(zapier.addConnection(alice, "nope"))
        assert.strictEqual(e1.endpoint, "FakeZapier.addConnection")
        const e2 = yield* Effect.flip(zapier.expireConnection("404"))
        assert.strictEqual(e2._tag, "NotFound")
        const e3 = yield* Effect.flip(zapier.scriptRuns(sample.slack, "nope", FakeZapier.RunScript.pending))
        assert.strictEqual(e3._tag, "NotFound")
      }).pipe(Effect.provide(Zapier))
    )

    it.effect("seeded users and connections, added apps and actions", () =>
      Effect.gen(function* () {
        const { catalog, connections, zapier } = yield* services
        assert.deepStrictEqual(
          (yield* connections.list(alice, Domain.AppId.make("crm"))).map((c) => [c.id, c.isExpired]),
          [
            ["c-1", false],
            ["c-2", true]
          ]
        )
        yield* zapier.addAction("crm", { key: "create_lead", actionType: "WRITE", title: "Create Lead" })
        yield* zapier.addApp({ id: "mail", title: "Mail", service: "MailAPI", actions: [] })
        const actions = yield* catalog.list(alice, Domain.AppId.make("crm"))
        assert.deepStrictEqual(
          actions.map((a) => a.key),
          ["create_lead"]
        )
        assert.deepStrictEqual(yield* catalog.list(alice, Domain.AppId.make("mail")), [])
      }).pipe(
        Effect.provide(
          FakeZapier.layer({
            apps: [{ id: "crm", title: "CRM", service: "CrmAPI", actions: [] }],
            users: [
              {
                user: { userId: "alice", tenantId: "acme" },
                connections: [
                  { app: "crm", id: "c-1" },
                  { app: "crm", id: "c-2", isExpired: true }
                ]
              }
            ]
          })
        )
      )
    )
  })

  describe("with EmbeddedActions", () => {
    it.effect("the whole flow: Connect link, approval, callback, run, polling to the result", () =>
      Effect.gen(function* () {
        const actions = yield* EmbeddedActions.EmbeddedActions
        const zapier = yield* FakeZapier.FakeZapier
        const request = {
          user: alice,
          app: sample.slack,
          action: sample.sendChannelMessage,
          inputs: { channel: "#general", text: "Hello" }
        }
        const required = yield* Effect.flip(actions.run(request))
        assert.strictEqual(required._tag, "ConnectionRequired")
        if (required._tag !== "ConnectionRequired") return
        assert.strictEqual(required.reason, "missing")
        const callback = yield* zapier.approveConnect(required.link!)
        const connection = yield* actions.completeConnection(alice, sample.slack, callback)
        const fiber = yield* Effect.fork(actions.run(request))
        yield* TestClock.adjust("10 seconds")
        const result = yield* Fiber.join(fiber)
        assert.deepStrictEqual(result.results, [
          { ok: true, channel: "#general", text: "Hello", ts: "1711900000.000100" }
        ])
        const ledger = yield* zapier.ledger
        assert.strictEqual(ledger.runs[0]!.connection, connection.id)
        assert.strictEqual(FakeZapier.lookupsOf(ledger, alice).length, 1)
        assert.strictEqual(FakeZapier.exchangesOf(ledger, alice, "access").length, 1)
        assert.isAtMost(FakeZapier.pollsOf(ledger, result.runId).length, 4)
      }).pipe(Effect.provide(Program))
    )
  })
})

describe("FakeZapier seeds of fields", () => {
  const app = "crm"
  const Seeded = FakeZapier.layer({
    choicesPageSize: 2,
    apps: [
      {
        id: app,
        title: "CRM",
        service: "CrmAPI",
        requiresAuth: false,
        actions: [
          {
            key: "create_lead",
            actionType: "WRITE",
            title: "Create Lead",
            inputFields: [
              {
                id: "pipeline",
                title: "Pipeline",
                required: true,
                invalidates: true,
                choices: ["sales", "partners", "support"]
              },
              {
                type: "fieldset",
                id: "deal",
                title: "Deal",
                fields: [
                  { id: "amount", valueType: "NUMBER", dependsOn: ["pipeline"], when: (i) => i.pipeline === "sales" },
                  { type: "info", id: "note", description: "Amounts are in EUR." }
                ]
              },
              {
                id: "stage",
                dependsOn: ["pipeline"],
                choices: (inputs) => (inputs.pipeline === "sales" ? ["new", "won"] : ["open"])
              }
            ]
          }
        ]
      }
    ]
  })

  it.effect("computes fields and paged choices from the inputs, as seeded", () =>
    Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const action = yield* catalog.resolve(alice, Domain.AppId.make(app), Domain.ActionKey.make("create_lead"))
      const none = yield* catalog.inputFields(alice, action.id, { connection: null })
      assert.deepStrictEqual(
        none.map((f) => (f._tag === "Fieldset" ? [f.id, f.fields.map((x) => x.id)] : f.id)),
        ["pipeline", ["deal", ["note"]], "stage"]
      )
      const sales = yield* catalog.inputFields(alice, action.id, { connection: null, inputs: { pipeline: "sales" } })
      const deal = sales[1]
      assert.deepStrictEqual(deal?._tag === "Fieldset" ? deal.fields.map((x) => x._tag) : [], [
        "InputField",
        "InfoField"
      ])
      const first = yield* catalog.choices(alice, action.id, "pipeline", { connection: null })
      assert.deepStrictEqual([first.choices.map((c) => c.value), first.nextPage], [["sales", "partners"], 2])
      const second = yield* catalog.choices(alice, action.id, "pipeline", { connection: null, page: 2 })
      assert.deepStrictEqual([second.choices.map((c) => c.value), second.nextPage], [["support"], undefined])
      const stages = yield* catalog.choices(alice, action.id, "stage", {
        connection: null,
        inputs: { pipeline: "sales" }
      })
      assert.deepStrictEqual(
        stages.choices.map((c) => c.value),
        ["new", "won"]
      )
      // A dependent field that is not there for these inputs has no choices to give.
      const hidden = yield* Effect.flip(catalog.choices(alice, action.id, "amount", { connection: null }))
      assert.strictEqual(hidden._tag, "NotFound")
      // Another user cannot use alice's action id.
      const stolen = yield* Effect.flip(catalog.inputFields(bob, action.id, { connection: null }))
      assert.strictEqual(stolen._tag, "NotFound")
      const zapier = yield* FakeZapier.FakeZapier
      const counts = FakeZapier.requestsByEndpoint(yield* zapier.ledger)
      assert.strictEqual(counts[FakeZapier.Endpoint.inputs], 3)
      assert.strictEqual(counts[FakeZapier.Endpoint.choices], 4)
    }).pipe(Effect.provide(Seeded))
  )

  it.effect("Apps lists the catalog a page at a time, filtered by query, category and ids", () =>
    Effect.gen(function* () {
      const apps = yield* Apps.Apps
      const page = yield* apps.list(alice, { limit: 1, offset: 1 })
      assert.deepStrictEqual(
        [page.apps.map((a) => a.id), page.count, page.nextOffset, page.previousOffset],
        [[sample.sheets], 3, 2, 0]
      )
      const byCategory = yield* apps.list(alice, { category: "developer-tools" })
      assert.deepStrictEqual(
        byCategory.apps.map((a) => [a.id, a.actionTypes]),
        [[sample.formatter, ["WRITE"]]]
      )
      assert.strictEqual((yield* apps.search(alice, "SLA")).apps[0]?.title, "Slack")
    }).pipe(Effect.provide(Zapier))
  )
})
