/**
 * The wire-level faults of the fault matrix: answers replaced byte for byte (`Fault.respond`: HTML pages, empty
 * 200s, undocumented statuses), `Retry-After` as an HTTP-date, and a rate limit on a scaled-down window; over HTTP
 * and in the in-memory layer.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, Domain } from "@effect-zapier/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Jose from "jose"
import { FakeZapier, FakeZapierServer, PartnerKey } from "../src/index.js"

const { sample } = FakeZapier
const types = FakeZapierServer.defaultTokenTypes
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })
const NOW = Date.parse("2026-03-01T12:00:00Z")

const key = await Effect.runPromise(PartnerKey.generate())
const seed = PartnerKey.register(FakeZapier.sampleSeed, key)

const serverWith = (options: FakeZapierServer.Options = {}) =>
  Layer.merge(FakeZapierServer.layer({ seed, ...options }), NodeHttpClient.layer)

const send = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function* () {
    const server = yield* FakeZapierServer.FakeZapierServer
    const client = yield* HttpClient.HttpClient
    return yield* client.execute(HttpClientRequest.prependUrl(request, server.url))
  })

const accessToken = Effect.gen(function* () {
  const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
  const jwt = yield* Effect.promise(async () =>
    new Jose.SignJWT({
      sub: alice.userId,
      org_id: alice.tenantId,
      iss: sample.issuer,
      aud: "connect.zapier.com",
      iat: now,
      nbf: now,
      exp: now + 300,
      jti: globalThis.crypto.randomUUID()
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .sign(await Jose.importPKCS8(Redacted.value(key.privateKeyPem), key.alg))
  )
  const response = yield* send(
    HttpClientRequest.post("/oauth/token").pipe(
      HttpClientRequest.bodyUrlParams({
        grant_type: types.grantType,
        client_id: sample.clientId,
        client_secret: sample.clientSecret,
        subject_token: jwt,
        subject_token_type: types.jwt,
        requested_token_type: types.accessToken
      })
    )
  )
  return { status: response.status, headers: response.headers, body: (yield* response.json) as Record<string, unknown> }
})

const bearer = Effect.map(accessToken, (r) => String(r.body.access_token))

const get = (path: string, token: string) =>
  send(HttpClientRequest.get(path).pipe(HttpClientRequest.bearerToken(token)))

/** A fresh action id and a run request body of alice's Slack connection. */
const runBody = (token: string) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    const connection = yield* zapier.addConnection(alice, sample.slack)
    const actions = (yield* (yield* get(`/v2/actions?app=${sample.slack}`, token)).json) as {
      readonly data: ReadonlyArray<{ readonly id: string; readonly key: string }>
    }
    const action = actions.data.find((a) => a.key === sample.sendChannelMessage)!.id
    return { action, authentication: connection.id, input: { channel: "#general", text: "hi" } }
  })

const createRun = (token: string, body: unknown) =>
  send(
    HttpClientRequest.post("/v2/action-runs/").pipe(
      HttpClientRequest.bearerToken(token),
      HttpClientRequest.bodyUnsafeJson(body)
    )
  )

describe("Fault.respond over HTTP", () => {
  it.effect("an HTML page, an empty 200 and an undocumented status are sent byte for byte", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const token = yield* bearer
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.authentications,
        fault: FakeZapier.Fault.respond("<html><body><h1>502 Bad Gateway</h1></body></html>", {
          contentType: "text/html"
        })
      })
      const html = yield* get(`/v2/authentications?app=${sample.slack}`, token)
      assert.strictEqual(html.status, 200)
      assert.include(html.headers["content-type"], "text/html")
      assert.strictEqual(yield* html.text, "<html><body><h1>502 Bad Gateway</h1></body></html>")

      yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.authentications, fault: FakeZapier.Fault.respond("") })
      const empty = yield* get(`/v2/authentications?app=${sample.slack}`, token)
      assert.strictEqual(empty.status, 200)
      assert.strictEqual(yield* empty.text, "")

      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.authentications,
        fault: FakeZapier.Fault.respond('{"weird":true}', { status: 418, headers: { "x-extra": "1" } })
      })
      const teapot = yield* get(`/v2/authentications?app=${sample.slack}`, token)
      assert.strictEqual(teapot.status, 418)
      assert.strictEqual(teapot.headers["x-extra"], "1")
      assert.deepStrictEqual(yield* teapot.json, { weird: true })
      // The next request is answered normally again.
      assert.strictEqual((yield* get(`/v2/authentications?app=${sample.slack}`, token)).status, 200)
    }).pipe(Effect.provide(serverWith()))
  )

  it.effect("on create the run is made first (ambiguous), unless afterCommit is false", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const token = yield* bearer
      const body = yield* runBody(token)
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.createRun,
        fault: FakeZapier.Fault.respond("<html>oops</html>", { contentType: "text/html" })
      })
      assert.strictEqual((yield* createRun(token, body)).status, 200)
      assert.strictEqual((yield* zapier.ledger).runs.length, 1)
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.createRun,
        fault: FakeZapier.Fault.respond("", { status: 503, afterCommit: false })
      })
      assert.strictEqual((yield* createRun(token, body)).status, 503)
      assert.strictEqual((yield* zapier.ledger).runs.length, 1)
      const statuses = (yield* zapier.ledger).requests
        .filter((r) => r.endpoint === FakeZapier.Endpoint.createRun)
        .map((r) => r.status)
      assert.deepStrictEqual(statuses, [200, 503])
    }).pipe(Effect.provide(serverWith()))
  )

  it.effect("a run with a status Zapier never documented, and extra fields", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const token = yield* bearer
      const created = (yield* (yield* createRun(token, yield* runBody(token))).json) as {
        readonly data: { readonly id: string }
      }
      const drifted = JSON.stringify({ data: { type: "run", status: "paused", results: [], errors: [], eta: 5 } })
      yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.getRun, fault: FakeZapier.Fault.respond(drifted) })
      const read = yield* get(`/v2/action-runs/${created.data.id}/`, token)
      assert.deepStrictEqual(yield* read.json, JSON.parse(drifted))
      assert.deepStrictEqual(
        (yield* zapier.ledger).polls.map((p) => p.status),
        ["waiting"]
      )
    }).pipe(Effect.provide(serverWith()))
  )
})

describe("Retry-After and the rate limit window", () => {
  it.effect("Retry-After as an HTTP-date, on the API and on the token endpoint", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const zapier = yield* FakeZapier.FakeZapier
      const token = yield* bearer
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.authentications,
        fault: FakeZapier.Fault.status(429, { retryAfter: "30 seconds", retryAfterFormat: "http-date" })
      })
      const limited = yield* get(`/v2/authentications?app=${sample.slack}`, token)
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(limited.headers["retry-after"], new Date(NOW + 30_000).toUTCString())
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.token,
        fault: FakeZapier.Fault.status(503, { retryAfter: "5 seconds", retryAfterFormat: "http-date" })
      })
      const unavailable = yield* accessToken
      assert.strictEqual(unavailable.status, 503)
      assert.strictEqual(unavailable.headers["retry-after"], new Date(NOW + 5_000).toUTCString())
      assert.strictEqual(unavailable.body.error, "temporarily_unavailable")
    }).pipe(Effect.provide(serverWith()))
  )

  it.effect("rateLimitWindow scales the window and the cooldown down", () =>
    Effect.gen(function* () {
      const token = yield* bearer
      const statuses: Array<number> = []
      for (let i = 0; i < 3; i++) statuses.push((yield* get(`/v2/authentications?app=${sample.slack}`, token)).status)
      const limited = yield* get(`/v2/authentications?app=${sample.slack}`, token)
      assert.deepStrictEqual([...statuses, limited.status], [200, 200, 200, 429])
      assert.strictEqual(limited.headers["retry-after"], "2")
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual((yield* get(`/v2/authentications?app=${sample.slack}`, token)).status, 429)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* get(`/v2/authentications?app=${sample.slack}`, token)).status, 200)
    }).pipe(Effect.provide(serverWith({ rateLimitPerMinute: 3, rateLimitWindow: Duration.seconds(2) })))
  )
})

describe("Fault.respond in the in-memory layer", () => {
  it.effect("maps by status: a 2xx does not decode, other statuses as Zapier's errors", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const catalog = yield* ActionCatalog.ActionCatalog
      const runs = yield* ActionRuns.ActionRuns
      const connection = yield* zapier.addConnection(alice, sample.slack)
      const action = yield* catalog.resolve(alice, sample.slack, sample.sendChannelMessage)
      const request = { action: action.id, connection: connection.id, inputs: { channel: "#general", text: "hi" } }
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.createRun,
        fault: FakeZapier.Fault.respond("<html></html>", { contentType: "text/html" })
      })
      const html = yield* Effect.exit(runs.create(alice, request))
      assert.isTrue(Exit.isFailure(html))
      if (Exit.isFailure(html)) assert.include(String(html.cause), "RunOutcomeUnknown")
      assert.strictEqual((yield* zapier.ledger).runs.length, 1)
      yield* zapier.injectFault({
        endpoint: FakeZapier.Endpoint.createRun,
        fault: FakeZapier.Fault.respond("", { status: 429, headers: { "retry-after": "7" }, afterCommit: false })
      })
      const limited = yield* Effect.flip(runs.create(alice, request))
      assert.strictEqual(limited._tag, "RateLimited")
      if (limited._tag === "RateLimited") assert.isTrue(Duration.equals(limited.retryAfter, Duration.seconds(7)))
      assert.strictEqual((yield* zapier.ledger).runs.length, 1)
    }).pipe(Effect.provide(FakeZapier.layer(seed)))
  )
})
