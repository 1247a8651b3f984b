import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Domain } from "@effect-zapier/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Jose from "jose"
import { FakeZapier, FakeZapierServer, PartnerKey } from "../src/index.js"

const { sample } = FakeZapier
const types = FakeZapierServer.defaultTokenTypes
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })
const bob = Domain.EndUser.make({ userId: "bob", tenantId: "acme" })

const es256 = await Effect.runPromise(PartnerKey.generate())
const rs256 = await Effect.runPromise(PartnerKey.generate({ alg: "RS256", kid: "rsa-key" }))
const stranger = await Effect.runPromise(PartnerKey.generate({ kid: es256.kid }))

const seed = PartnerKey.register(PartnerKey.register(FakeZapier.sampleSeed, es256), rs256, "pem")

const serverWith = (options: FakeZapierServer.Options = {}) =>
  Layer.merge(FakeZapierServer.layer({ seed, ...options }), NodeHttpClient.layer)

const Server = serverWith()

// --- helpers (a plain HTTP client; JWTs signed with jose here, not with packages/http) -------------------------

const signJwt = (
  user: Domain.EndUser,
  options: {
    readonly key?: PartnerKey.PartnerKey
    readonly signWith?: PartnerKey.PartnerKey
    readonly claims?: Record<string, unknown>
    readonly header?: Record<string, unknown>
    readonly lifetime?: number
    readonly omit?: ReadonlyArray<string>
  } = {}
) =>
  Effect.gen(function* () {
    const key = options.key ?? es256
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const claims: Record<string, unknown> = {
      sub: user.userId,
      org_id: user.tenantId,
      iss: sample.issuer,
      aud: "connect.zapier.com",
      iat: now,
      nbf: now,
      exp: now + (options.lifetime ?? 300),
      jti: globalThis.crypto.randomUUID(),
      ...options.claims
    }
    for (const name of options.omit ?? []) delete claims[name]
    const signWith = options.signWith ?? key
    return yield* Effect.promise(async () =>
      new Jose.SignJWT(claims)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...options.header })
        .sign(await Jose.importPKCS8(Redacted.value(signWith.privateKeyPem), signWith.alg))
    )
  })

const form = (params: Record<string, string>, basic?: readonly [string, string]) =>
  HttpClientRequest.post("/oauth/token").pipe(
    HttpClientRequest.bodyUrlParams(params),
    basic ? HttpClientRequest.basicAuth(basic[0], basic[1]) : (r) => r
  )

const send = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function* () {
    const server = yield* FakeZapierServer.FakeZapierServer
    const client = yield* HttpClient.HttpClient
    return yield* client.execute(HttpClientRequest.prependUrl(request, server.url))
  })

// Bodies are decoded with Zapier's documented shapes (exactly, where its reference gives the whole object).
const decode =
  <A, I>(schema: Schema.Schema<A, I>, exact = false) =>
  (response: HttpClientResponse.HttpClientResponse) =>
    Effect.flatMap(response.json, (u) =>
      Schema.decodeUnknown(schema, { onExcessProperty: exact ? "error" : "ignore" })(u)
    ).pipe(Effect.orDie)

const OAuthBody = Schema.Struct({
  access_token: Schema.optional(Schema.String),
  token_type: Schema.optional(Schema.String),
  expires_in: Schema.optional(Schema.Number),
  scope: Schema.optional(Schema.String),
  issued_token_type: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String),
  error_description: Schema.optional(Schema.String)
})
const oauthOf = decode(OAuthBody, true)

const ErrorsBody = Schema.Struct({
  errors: Schema.NonEmptyArray(
    Schema.Struct({
      status: Schema.Number,
      code: Schema.String,
      title: Schema.String,
      detail: Schema.String,
      source: Schema.NullOr(Schema.Struct({ pointer: Schema.Null, parameter: Schema.String, header: Schema.Null })),
      meta: Schema.Unknown
    })
  )
})
const errorOf = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.map(decode(ErrorsBody, true)(response), (b) => b.errors[0])

const Item = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const Page = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Struct({
    links: Schema.Struct({ next: Schema.NullOr(Schema.String), prev: Schema.NullOr(Schema.String) }),
    meta: Schema.Struct({ count: Schema.Number, limit: Schema.NullOr(Schema.Number), offset: Schema.Number }),
    data: Schema.Array(item)
  })
const RecordPage = Page(Item)
const pageOf = decode(RecordPage, true)
const AppItem = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("app"),
  title: Schema.String,
  links: Schema.Struct({ connect_new_authentication: Schema.String })
})
/** `/v2/apps` spells the previous-page link `previous`, as the example of Zapier's API reference does. */
const appsOf = decode(
  Schema.Struct({
    links: Schema.Struct({ next: Schema.NullOr(Schema.String), previous: Schema.NullOr(Schema.String) }),
    meta: Schema.Struct({ count: Schema.Number, limit: Schema.NullOr(Schema.Number), offset: Schema.Number }),
    data: Schema.Array(AppItem)
  })
)
const actionsOf = decode(Page(Schema.Struct({ id: Schema.String, key: Schema.String })))
const createdOf = decode(
  Schema.Struct({ data: Schema.Struct({ type: Schema.Literal("run"), id: Schema.String }) }),
  true
)
/** The long-poll read's answer: the run with its id. */
const readOf = decode(Schema.Struct({ data: Schema.Struct({ type: Schema.Literal("run"), status: Schema.String }) }))
const runOf = decode(
  Schema.Struct({
    data: Schema.Struct({
      type: Schema.Literal("run"),
      status: Schema.String,
      results: Schema.Array(Schema.Unknown),
      errors: Schema.Array(Item)
    })
  }),
  true
)

const jwtExchange = (jwt: string, extra: Record<string, string> = {}, basic = false) =>
  send(
    form(
      {
        grant_type: types.grantType,
        ...(basic ? {} : { client_id: sample.clientId, client_secret: sample.clientSecret }),
        subject_token: jwt,
        subject_token_type: types.jwt,
        requested_token_type: types.accessToken,
        scope: "external action:run connection:read",
        ...extra
      },
      basic ? [sample.clientId, sample.clientSecret] : undefined
    )
  )

const accessTokenFor = (user: Domain.EndUser) =>
  Effect.gen(function* () {
    const response = yield* jwtExchange(yield* signJwt(user))
    assert.strictEqual(response.status, 200)
    return (yield* oauthOf(response)).access_token!
  })

const connectTokenFor = (accessToken: string, app: string) =>
  Effect.gen(function* () {
    const server = yield* FakeZapierServer.FakeZapierServer
    const response = yield* send(
      form({
        grant_type: types.grantType,
        client_id: sample.clientId,
        client_secret: sample.clientSecret,
        subject_token: accessToken,
        subject_token_type: types.accessToken,
        requested_token_type: types.connectToken,
        scope: "connection:write",
        resource: `${server.connectUrl}/to/${app}`
      })
    )
    return { status: response.status, body: yield* oauthOf(response) }
  })

const get = (path: string, token?: string) =>
  send(
    token === undefined
      ? HttpClientRequest.get(path)
      : HttpClientRequest.get(path).pipe(HttpClientRequest.bearerToken(token))
  )

const postJson = (path: string, token: string, body: unknown) =>
  send(HttpClientRequest.post(path).pipe(HttpClientRequest.bearerToken(token), HttpClientRequest.bodyUnsafeJson(body)))

const FieldsBody = Schema.Struct({
  links: Schema.Struct({ next: Schema.Null, prev: Schema.Null }),
  meta: Schema.Struct({ count: Schema.Number, limit: Schema.Null, offset: Schema.Number }),
  data: Schema.Array(
    Schema.Struct({ type: Schema.String, id: Schema.String }, { key: Schema.String, value: Schema.Unknown })
  )
})
const fieldsOf = decode(FieldsBody, true)
const ChoicesBody = Schema.Struct({
  data: Schema.Array(
    Schema.Struct({ id: Schema.String, type: Schema.Literal("choice"), label: Schema.String, value: Schema.String })
  ),
  links: Schema.Struct({ next: Schema.NullOr(Schema.String), prev: Schema.NullOr(Schema.String) }),
  meta: Schema.Struct({ page: Schema.Number })
})
const choicesOf = decode(ChoicesBody, true)

const lookup = (token: string, app: string, key: string) =>
  Effect.gen(function* () {
    const body = yield* Effect.flatMap(get(`/v2/actions?app=${app}`, token), actionsOf)
    return body.data.find((a) => a.key === key)!.id
  })

/**
 * A GET the server holds on the model's clock (the TestClock): waits, in real time, until the server's hold shows
 * as a new sleep on the clock, moves the clock to it, then waits for the answer without moving the clock again;
 * returns the answer and the model time it arrived at. The clock never moves while the request or its answer is
 * on the wire, so a busy machine cannot make the answer look late (stepping the clock while the I/O ran did). The
 * real-time bound only ends a real hang.
 */
const heldGet = (path: string, token: string) =>
  Effect.gen(function* () {
    const deadline = performance.now() + 20_000
    const io = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))
    const wait = Effect.suspend(() =>
      performance.now() < deadline ? io : Effect.dieMessage(`heldGet ${path}: no answer within 20 s`)
    )
    const before = [...(yield* TestClock.sleeps())]
    const fiber = yield* Effect.fork(get(path, token))
    for (;;) {
      if (fiber.unsafePoll() !== null) break
      const now = yield* TestClock.currentTimeMillis
      // The sleeps that were not there before the request (each earlier one counted out once).
      const added = [...(yield* TestClock.sleeps())]
      for (const at of before) {
        const i = added.indexOf(at)
        if (i >= 0) added.splice(i, 1)
      }
      const hold = added.filter((at) => at > now)
      if (hold.length > 0) {
        yield* TestClock.adjust(Math.min(...hold) - now)
        while (fiber.unsafePoll() === null) yield* wait
        break
      }
      yield* wait
    }
    const response = yield* Fiber.join(fiber)
    return { response, at: yield* TestClock.currentTimeMillis }
  })

/** Alice with a Slack connection, a token, and a fresh id for send_channel_message. */
const ready = Effect.gen(function* () {
  const zapier = yield* FakeZapier.FakeZapier
  const connection = yield* zapier.addConnection(alice, sample.slack)
  const token = yield* accessTokenFor(alice)
  const action = yield* lookup(token, sample.slack, sample.sendChannelMessage)
  return { connection, token, action }
})

describe("FakeZapierServer", () => {
  describe("POST /oauth/token", () => {
    it.effect("exchanges a partner JWT for a per-user access token", () =>
      Effect.gen(function* () {
        const response = yield* jwtExchange(yield* signJwt(alice))
        const body = yield* oauthOf(response)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers["cache-control"], "no-store")
        assert.match(body.access_token ?? "", /^zat_/)
        assert.strictEqual(body.token_type, "Bearer")
        assert.strictEqual(body.expires_in, 3600)
        assert.strictEqual(body.scope, "external action:run connection:read")
        const zapier = yield* FakeZapier.FakeZapier
        const ledger = yield* zapier.ledger
        assert.strictEqual(FakeZapier.exchangesOf(ledger, alice, "access").length, 1)
        const [request] = ledger.requests
        assert.deepStrictEqual([request!.method, request!.path, request!.status], ["POST", "/oauth/token", 200])
        assert.strictEqual(request!.user?.userId, "alice")
      }).pipe(Effect.provide(Server))
    )

    it.effect("accepts client credentials as HTTP Basic, and an RS256 key registered as SPKI PEM", () =>
      Effect.gen(function* () {
        const basic = yield* jwtExchange(yield* signJwt(alice), {}, true)
        assert.strictEqual(basic.status, 200)
        const rsa = yield* jwtExchange(yield* signJwt(bob, { key: rs256 }))
        assert.strictEqual(rsa.status, 200)
      }).pipe(Effect.provide(Server))
    )

    it.effect("refuses bad JWTs with invalid_grant (400)", () =>
      Effect.gen(function* () {
        const cases = {
          "signature (another key, same kid)": yield* signJwt(alice, { signWith: stranger }),
          audience: yield* signJwt(alice, { claims: { aud: "zapier.com" } }),
          issuer: yield* signJwt(alice, { claims: { iss: "https://evil.example" } }),
          "lifetime over 300 s": yield* signJwt(alice, { lifetime: 301 }),
          "unknown kid": yield* signJwt(alice, { header: { kid: "nope" } }),
          "missing tenant claim": yield* signJwt(alice, { omit: ["org_id"] }),
          "missing nbf": yield* signJwt(alice, { omit: ["nbf"] }),
          "missing jti": yield* signJwt(alice, { omit: ["jti"] }),
          "empty user": yield* signJwt(alice, { claims: { sub: " " } }),
          "not yet valid": yield* signJwt(alice, { claims: { nbf: 60 } }),
          "not a JWT": "not-a-jwt"
        }
        for (const [name, jwt] of Object.entries(cases)) {
          const response = yield* jwtExchange(jwt)
          const body = yield* oauthOf(response)
          assert.strictEqual(response.status, 400, name)
          assert.strictEqual(body.error, "invalid_grant", name)
          assert.isString(body.error_description, name)
        }
        const zapier = yield* FakeZapier.FakeZapier
        assert.strictEqual((yield* zapier.ledger).exchanges.length, 0)
      }).pipe(Effect.provide(Server))
    )

    it.effect("refuses an expired JWT and a replayed jti", () =>
      Effect.gen(function* () {
        const jwt = yield* signJwt(alice)
        assert.strictEqual((yield* jwtExchange(jwt)).status, 200)
        const replay = yield* oauthOf(yield* jwtExchange(jwt))
        assert.strictEqual(replay.error, "invalid_grant")
        assert.match(replay.error_description ?? "", /jti/)
        const old = yield* signJwt(alice)
        yield* TestClock.adjust("306 seconds")
        const expired = yield* oauthOf(yield* jwtExchange(old))
        assert.strictEqual(expired.error, "invalid_grant")
        assert.match(expired.error_description ?? "", /expired/)
      }).pipe(Effect.provide(Server))
    )

    it.effect("refuses a replayed jti while its JWT is still accepted past exp, within the clock tolerance", () =>
      Effect.gen(function* () {
        const jwt = yield* signJwt(alice)
        assert.strictEqual((yield* jwtExchange(jwt)).status, 200)
        // 2 s past exp: within the 5 s clock tolerance, so the JWT itself is still accepted; its jti must not be.
        yield* TestClock.adjust("302 seconds")
        const replay = yield* oauthOf(yield* jwtExchange(jwt))
        assert.strictEqual(replay.error, "invalid_grant")
        assert.match(replay.error_description ?? "", /jti/)
        assert.strictEqual((yield* oauthOf(yield* jwtExchange(yield* signJwt(alice)))).error, undefined)
      }).pipe(Effect.provide(Server))
    )

    it.effect("refuses an HS256 JWT and a wrong alg for the key", () =>
      Effect.gen(function* () {
        const hs = yield* Effect.promise(() =>
          new Jose.SignJWT({ sub: "alice", org_id: "acme" })
            .setProtectedHeader({ alg: "HS256", kid: es256.kid })
            .sign(new TextEncoder().encode("a-shared-secret-of-at-least-32-bytes!"))
        )
        assert.strictEqual((yield* oauthOf(yield* jwtExchange(hs))).error, "invalid_grant")
        const wrongAlg = yield* signJwt(alice, { key: { ...rs256, kid: es256.kid }, signWith: rs256 })
        assert.strictEqual((yield* oauthOf(yield* jwtExchange(wrongAlg))).error, "invalid_grant")
      }).pipe(Effect.provide(Server))
    )

    it.effect("RFC 6749 errors for the client, the grant type and the body", () =>
      Effect.gen(function* () {
        const jwt = yield* signJwt(alice)
        const badSecret = yield* jwtExchange(jwt, { client_secret: "wrong" })
        assert.strictEqual(badSecret.status, 401)
        assert.strictEqual((yield* oauthOf(badSecret)).error, "invalid_client")
        const badBasic = yield* send(
          form({ grant_type: types.grantType, subject_token: jwt, subject_token_type: types.jwt }, [
            sample.clientId,
            "wrong"
          ])
        )
        assert.strictEqual(badBasic.status, 401)
        assert.strictEqual(badBasic.headers["www-authenticate"], 'Basic realm="zapier"')
        const grant = yield* jwtExchange(jwt, { grant_type: "client_credentials" })
        assert.strictEqual((yield* oauthOf(grant)).error, "unsupported_grant_type")
        const asJson = yield* send(
          HttpClientRequest.post("/oauth/token").pipe(HttpClientRequest.bodyUnsafeJson({ grant_type: types.grantType }))
        )
        assert.strictEqual(asJson.status, 400)
        assert.strictEqual((yield* oauthOf(asJson)).error, "invalid_request")
        const noSubject = yield* jwtExchange("", {})
        assert.strictEqual((yield* oauthOf(noSubject)).error, "invalid_request")
      }).pipe(Effect.provide(Server))
    )

    it.effect("issues single-use connect tokens for a resource, from an access token", () =>
      Effect.gen(function* () {
        const token = yield* accessTokenFor(alice)
        const connect = yield* connectTokenFor(token, sample.slack)
        assert.strictEqual(connect.status, 200)
        assert.match(connect.body.access_token ?? "", /^zct_/)
        assert.strictEqual(connect.body.expires_in, 360)
        assert.strictEqual(connect.body.issued_token_type, types.connectToken)
        const badResource = yield* connectTokenFor(token, "slack/extra")
        assert.strictEqual(badResource.body.error, "invalid_target")
        const zapier = yield* FakeZapier.FakeZapier
        yield* zapier.revokeTokens(alice)
        const revoked = yield* connectTokenFor(token, sample.slack)
        assert.strictEqual(revoked.body.error, "invalid_grant")
        assert.strictEqual(FakeZapier.exchangesOf(yield* zapier.ledger, alice, "connect").length, 1)
      }).pipe(Effect.provide(Server))
    )

    it.effect("expires_in is configurable", () =>
      Effect.gen(function* () {
        const body = yield* oauthOf(yield* jwtExchange(yield* signJwt(alice)))
        assert.strictEqual(body.expires_in, 120)
        yield* TestClock.adjust("120 seconds")
        const listed = yield* get(`/v2/authentications?app=${sample.slack}`, body.access_token)
        assert.strictEqual(listed.status, 401)
        assert.match(String((yield* errorOf(listed)).detail), /expired/)
      }).pipe(Effect.provide(serverWith({ accessTokenTtl: "2 minutes" })))
    )
  })

  describe("/v2", () => {
    it.effect("401 in Zapier's shape without, or with a bad or revoked, bearer", () =>
      Effect.gen(function* () {
        const none = yield* get(`/v2/authentications?app=${sample.slack}`)
        assert.strictEqual(none.status, 401)
        assert.strictEqual((yield* errorOf(none)).code, "not_authenticated")
        const bad = yield* get(`/v2/authentications?app=${sample.slack}`, "zat_nope")
        assert.deepStrictEqual(yield* errorOf(bad), {
          status: 401,
          code: "authentication_failed",
          title: "AuthenticationFailed",
          detail: "Invalid token.",
          source: null,
          meta: { source: "ZAPIER", full_details: { message: "Invalid token.", code: "authentication_failed" } }
        })
        const token = yield* accessTokenFor(alice)
        assert.strictEqual((yield* get(`/v2/authentications?app=${sample.slack}`, token)).status, 200)
        const zapier = yield* FakeZapier.FakeZapier
        yield* zapier.revokeTokens(alice)
        assert.strictEqual((yield* get(`/v2/authentications?app=${sample.slack}`, token)).status, 401)
      }).pipe(Effect.provide(Server))
    )

    it.effect("GET /v2/apps lists the catalog with Zapier's documented envelope", () =>
      Effect.gen(function* () {
        const token = yield* accessTokenFor(alice)
        const body = yield* appsOf(yield* get("/v2/apps?limit=2", token))
        assert.deepStrictEqual(body.meta, { count: 3, limit: 2, offset: 0 })
        assert.match(body.links.next ?? "", /\/v2\/apps\?limit=2&offset=2$/)
        assert.isNull(body.links.previous)
        const second = yield* appsOf(yield* get("/v2/apps?limit=2&offset=2", token))
        assert.match(second.links.previous ?? "", /\/v2\/apps\?limit=2&offset=0$/)
        assert.isNull(second.links.next)
        assert.deepStrictEqual(
          body.data.map((a: Record<string, unknown>) => [a.id, a.type, a.title]),
          [
            ["slack", "app", "Slack"],
            ["google-sheets", "app", "Google Sheets"]
          ]
        )
        const server = yield* FakeZapierServer.FakeZapierServer
        assert.strictEqual(body.data[0].links.connect_new_authentication, `${server.connectUrl}/to/slack`)
        const filtered = yield* appsOf(yield* get("/v2/apps?ids=formatter", token))
        assert.deepStrictEqual(
          filtered.data.map((a: Record<string, unknown>) => a.id),
          ["formatter"]
        )
      }).pipe(Effect.provide(Server))
    )

    it.effect("GET /v2/authentications: only the owner's, paginated with full next URLs", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const ids: Array<string> = []
        for (let i = 0; i < 5; i++)
          ids.push((yield* zapier.addConnection(alice, sample.slack, { isExpired: i === 0 })).id)
        yield* zapier.addConnection(bob, sample.slack)
        yield* zapier.addConnection(alice, sample.sheets)
        const token = yield* accessTokenFor(alice)
        const client = yield* HttpClient.HttpClient
        const seen: Array<Record<string, unknown>> = []
        let next: string | null =
          `${(yield* FakeZapierServer.FakeZapierServer).url}/v2/authentications?app=slack&limit=2`
        let pages = 0
        while (next !== null) {
          const body: typeof RecordPage.Type = yield* Effect.flatMap(
            client.execute(HttpClientRequest.get(next).pipe(HttpClientRequest.bearerToken(token))),
            pageOf
          )
          seen.push(...body.data)
          assert.strictEqual(body.meta.count, 5)
          next = body.links.next
          pages++
        }
        assert.strictEqual(pages, 3)
        assert.deepStrictEqual(
          seen.map((c) => c.id),
          ids
        )
        assert.deepStrictEqual(seen[0], {
          type: "authentication",
          id: ids[0],
          app: "slack",
          is_expired: true,
          title: "Slack alice"
        })
        const missingApp = yield* get("/v2/authentications", token)
        assert.strictEqual(missingApp.status, 400)
        assert.strictEqual((yield* errorOf(missingApp)).code, "invalid")
        const badLimit = yield* get("/v2/authentications?app=slack&limit=abc", token)
        assert.strictEqual(badLimit.status, 400)
      }).pipe(Effect.provide(Server))
    )

    it.effect("GET /v2/actions: a single envelope, a new id on every lookup, filtered by type", () =>
      Effect.gen(function* () {
        const token = yield* accessTokenFor(alice)
        const first = yield* pageOf(yield* get("/v2/actions?app=slack&action_type=WRITE", token))
        const second = yield* pageOf(yield* get("/v2/actions?app=slack&action_type=WRITE", token))
        assert.strictEqual(first.data.length, 3)
        assert.deepStrictEqual(Object.keys(first.data[0]).sort(), [
          "action_type",
          "app",
          "description",
          "id",
          "is_instant",
          "key",
          "title",
          "type"
        ])
        assert.strictEqual(first.data[0].type, "action")
        assert.notStrictEqual(first.data[0].id, second.data[0].id)
        assert.strictEqual(first.data[0].key, second.data[0].key)
        assert.strictEqual((yield* get("/v2/actions?app=slack&action_type=NOPE", token)).status, 400)
        assert.strictEqual((yield* get("/v2/actions?app=nope", token)).status, 404)
        const zapier = yield* FakeZapier.FakeZapier
        assert.strictEqual(FakeZapier.lookupsOf(yield* zapier.ledger, alice).length, 2)
      }).pipe(Effect.provide(Server))
    )

    it.effect("POST /v2/action-runs/ accepts both body shapes; GET follows the run on the clock", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const wrapped = yield* postJson("/v2/action-runs/", token, {
          data: { action, authentication: connection.id, inputs: { channel: "#a", text: "x" } }
        })
        assert.strictEqual(wrapped.status, 200)
        const created = yield* createdOf(wrapped)
        assert.strictEqual(created.data.type, "run")
        const action2 = yield* lookup(token, sample.slack, sample.sendChannelMessage)
        const flat = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, {
            action: action2,
            authentication: Number(connection.id),
            input: { channel: "#b" }
          })
        )
        assert.isString(flat.data.id)
        const pending = yield* runOf(yield* get(`/v2/action-runs/${created.data.id}/`, token))
        assert.deepStrictEqual(pending, { data: { type: "run", status: "waiting", results: [], errors: [] } })
        yield* TestClock.adjust("2 seconds")
        const done = yield* runOf(yield* get(`/v2/action-runs/${created.data.id}/`, token))
        assert.strictEqual(done.data.status, "success")
        assert.deepStrictEqual(done.data.results, [{ ok: true, channel: "#a", text: "x", ts: "1711900000.000100" }])
        const zapier = yield* FakeZapier.FakeZapier
        const ledger = yield* zapier.ledger
        assert.deepStrictEqual(
          ledger.runs.map((r) => r.inputs),
          [{ channel: "#a", text: "x" }, { channel: "#b" }]
        )
        assert.strictEqual(FakeZapier.pollsOf(ledger, Domain.ActionRunId.make(created.data.id)).length, 2)
      }).pipe(Effect.provide(Server))
    )

    it.effect("holdRuns over HTTP: a held run reads waiting past its scripted end until released", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, { data: { action, authentication: connection.id, inputs: {} } })
        )
        yield* TestClock.adjust("10 seconds") // 8 s past its scripted 2 s
        const held = yield* runOf(yield* get(`/v2/action-runs/${created.data.id}/`, token))
        assert.strictEqual(held.data.status, "waiting")
        assert.strictEqual(yield* gate.awaitRead, created.data.id)
        yield* gate.release
        const done = yield* runOf(yield* get(`/v2/action-runs/${created.data.id}/`, token))
        assert.strictEqual(done.data.status, "success")
      }).pipe(Effect.provide(Server))
    )

    it.effect("failed runs carry errors[] with code, title, detail and delay", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        yield* zapier.scriptRuns(
          sample.slack,
          sample.sendChannelMessage,
          FakeZapier.RunScript.fail("1 second", [
            { code: "throttled", title: "Throttled", detail: "slow", delay: 30 * 1000 }
          ])
        )
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, { data: { action, authentication: connection.id, inputs: {} } })
        )
        yield* TestClock.adjust("1 second")
        const body = yield* runOf(yield* get(`/v2/action-runs/${created.data.id}`, token))
        assert.deepStrictEqual(body.data, {
          type: "run",
          status: "error",
          results: [],
          errors: [{ code: "throttled", title: "Throttled", detail: "slow", delay: 30, meta: null }]
        })
      }).pipe(Effect.provide(Server))
    )

    it.effect("create-run refusals: bad JSON, unknown action id, another user's connection, a bad callback_url", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const { connection, token, action } = yield* ready
        const bobs = yield* zapier.addConnection(bob, sample.slack)
        const badJson = yield* send(
          HttpClientRequest.post("/v2/action-runs/").pipe(
            HttpClientRequest.bearerToken(token),
            HttpClientRequest.bodyText("{not json", "application/json")
          )
        )
        assert.strictEqual(badJson.status, 400)
        assert.deepStrictEqual(
          [(yield* errorOf(badJson)).code, (yield* errorOf(badJson)).title],
          ["parse_error", "ParseError"]
        )
        const unknown = yield* postJson("/v2/action-runs/", token, {
          data: { action: "uag:made-up", authentication: connection.id, inputs: {} }
        })
        assert.strictEqual(unknown.status, 400)
        assert.deepStrictEqual((yield* errorOf(unknown)).source, {
          pointer: null,
          parameter: "action",
          header: null
        })
        const stolen = yield* postJson("/v2/action-runs/", token, {
          data: { action, authentication: bobs.id, inputs: {} }
        })
        assert.strictEqual(stolen.status, 400)
        const missingInputs = yield* postJson("/v2/action-runs/", token, {
          data: { action, authentication: connection.id }
        })
        assert.strictEqual(missingInputs.status, 400)
        assert.strictEqual((yield* errorOf(missingInputs)).code, "invalid")
        const callback = yield* postJson("/v2/action-runs/", token, {
          data: { action, authentication: connection.id, inputs: {}, callback_url: "https://127.0.0.1/cb" }
        })
        assert.strictEqual((yield* errorOf(callback)).source !== null, true)
        assert.strictEqual((yield* zapier.ledger).runs.length, 0)
      }).pipe(Effect.provide(Server))
    )

    it.effect("runBody: 'data' answers the flat shape with 400 parse_error (and 'flat' the other way)", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const flat = yield* postJson("/v2/action-runs/", token, { action, authentication: connection.id, input: {} })
        assert.strictEqual(flat.status, 400)
        assert.strictEqual((yield* errorOf(flat)).code, "parse_error")
        const data = yield* postJson("/v2/action-runs/", token, {
          data: { action, authentication: connection.id, inputs: {} }
        })
        assert.strictEqual(data.status, 200)
      }).pipe(Effect.provide(serverWith({ runBody: "data" })))
    )

    it.effect("runBody: 'flat' refuses the data shape", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const data = yield* postJson("/v2/action-runs/", token, {
          data: { action, authentication: connection.id, inputs: {} }
        })
        assert.strictEqual((yield* errorOf(data)).code, "parse_error")
      }).pipe(Effect.provide(serverWith({ runBody: "flat" })))
    )

    it.effect("another user's run is 404", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, { data: { action, authentication: connection.id, inputs: {} } })
        )
        const bobToken = yield* accessTokenFor(bob)
        const response = yield* get(`/v2/action-runs/${created.data.id}/`, bobToken)
        assert.strictEqual(response.status, 404)
        assert.strictEqual((yield* errorOf(response)).code, "not_found")
        assert.strictEqual((yield* get("/v2/nothing-here", bobToken)).status, 404)
      }).pipe(Effect.provide(Server))
    )

    it.effect("pending runs can be queued, then running, with HTTP 202", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, { data: { action, authentication: connection.id, inputs: {} } })
        )
        const path = `/v2/action-runs/${created.data.id}/`
        const early = yield* get(path, token)
        assert.strictEqual(early.status, 202)
        assert.strictEqual((yield* runOf(early)).data.status, "queued")
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* runOf(yield* get(path, token))).data.status, "running")
        yield* TestClock.adjust("1 second")
        const done = yield* get(path, token)
        assert.strictEqual(done.status, 200)
        assert.strictEqual((yield* runOf(done)).data.status, "success")
      }).pipe(Effect.provide(serverWith({ pendingStatus: "queued-then-running", pendingHttpStatus: 202 })))
    )

    it.effect("a held run is queued for half its scripted life, then running until released", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        yield* zapier.scriptRuns(
          sample.slack,
          sample.sendChannelMessage,
          FakeZapier.RunScript.succeed("10 seconds", [])
        )
        const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, { data: { action, authentication: connection.id, inputs: {} } })
        )
        const path = `/v2/action-runs/${created.data.id}/`
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual((yield* runOf(yield* get(path, token))).data.status, "queued", "before half of its 10 s")
        yield* TestClock.adjust("16 seconds")
        assert.strictEqual((yield* runOf(yield* get(path, token))).data.status, "running", "past its end, held")
        yield* gate.release
        assert.strictEqual((yield* runOf(yield* get(path, token))).data.status, "success")
      }).pipe(Effect.provide(serverWith({ pendingStatus: "queued-then-running", pendingHttpStatus: 202 })))
    )

    it.effect("POST /v2/actions/{id}/inputs: the documented RootFieldset, computed from the inputs", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const path = `/v2/actions/${encodeURIComponent(action)}/inputs`
        const response = yield* postJson(path, token, { data: { authentication: connection.id, inputs: {} } })
        assert.strictEqual(response.status, 200)
        const body = yield* fieldsOf(response)
        assert.deepStrictEqual(body.links, { next: null, prev: null })
        assert.deepStrictEqual(body.meta, { count: 5, limit: null, offset: 0 })
        assert.deepStrictEqual(
          body.data.map((f) => [f.type, f.id]),
          [
            ["input_field", "channel"],
            ["input_field", "text"],
            ["input_field", "send_as_bot"],
            ["info_field", "posting_as"],
            ["fieldset", "advanced"]
          ]
        )
        assert.deepStrictEqual(body.data[0], {
          type: "input_field",
          id: "channel",
          title: "Channel",
          description: "The channel to post to.",
          default_value: "",
          placeholder: "",
          is_required: true,
          depends_on: [],
          invalidates_input_fields: false,
          value_type: "STRING",
          items: {},
          format: "SELECT"
        })
        // As in Zapier's documented example, a field without a format has no `format` key.
        assert.isFalse("format" in body.data[2]!)
        const advanced = body.data[4] as unknown as { readonly fields: ReadonlyArray<Record<string, unknown>> }
        assert.deepInclude(advanced.fields[1], { id: "mentions", value_type: "ARRAY", items: { type: "STRING" } })
        // A dependent field appears when the invalidating field has the value that brings it.
        const asBot = yield* fieldsOf(
          yield* postJson(path, token, { data: { authentication: connection.id, inputs: { send_as_bot: true } } })
        )
        assert.deepStrictEqual(
          asBot.data.map((f) => f.id),
          ["channel", "text", "send_as_bot", "bot_name", "bot_icon", "posting_as", "advanced"]
        )
        // Outputs: the same body, `output_field`s.
        const outputs = yield* fieldsOf(
          yield* postJson(`/v2/actions/${encodeURIComponent(action)}/outputs`, token, {
            data: { authentication: connection.id, inputs: {} }
          })
        )
        assert.deepStrictEqual(outputs.data[0], { type: "output_field", id: "ok", title: "OK", sample: true })
        // Refusals: a body that is not JSON, another user's connection, an unknown action id.
        const notJson = yield* send(
          HttpClientRequest.post(path).pipe(
            HttpClientRequest.bearerToken(token),
            HttpClientRequest.bodyText("{", "application/json")
          )
        )
        assert.strictEqual(notJson.status, 400)
        assert.strictEqual((yield* errorOf(notJson)).code, "parse_error")
        const zapier = yield* FakeZapier.FakeZapier
        const bobs = yield* zapier.addConnection(bob, sample.slack)
        const stolen = yield* postJson(path, token, { data: { authentication: bobs.id, inputs: {} } })
        assert.strictEqual(stolen.status, 400)
        const unknown = yield* postJson("/v2/actions/uag:made-up/inputs", token, {
          data: { authentication: connection.id, inputs: {} }
        })
        assert.strictEqual(unknown.status, 404)
      }).pipe(Effect.provide(Server))
    )

    it.effect("POST …/inputs/{input}/choices?page=: one envelope (declared as an array), 10 a page", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const path = `/v2/actions/${encodeURIComponent(action)}/inputs/channel/choices`
        const body = { data: { authentication: connection.id, inputs: {} } }
        const first = yield* postJson(path, token, body)
        assert.strictEqual(first.status, 200)
        const json = yield* first.json
        assert.isFalse(Array.isArray(json), "served as one envelope")
        const page1 = yield* choicesOf(first)
        assert.strictEqual(page1.data.length, 10)
        assert.deepStrictEqual(page1.data[0], { id: "C001", type: "choice", label: "general", value: "#general" })
        assert.deepStrictEqual(page1.meta, { page: 1 })
        assert.match(page1.links.next ?? "", /\/inputs\/channel\/choices\?page=2$/)
        assert.isNull(page1.links.prev)
        const page3 = yield* choicesOf(yield* postJson(`${path}?page=3`, token, body))
        assert.deepStrictEqual(
          page3.data.map((c) => c.value),
          ["#events", "#watercooler", "#zapier-alerts"]
        )
        assert.isNull(page3.links.next)
        assert.match(page3.links.prev ?? "", /page=2$/)
        assert.strictEqual((yield* postJson(`${path}?page=0`, token, body)).status, 400)
        const noChoices = yield* postJson(path.replace("/channel/", "/text/"), token, body)
        assert.strictEqual(noChoices.status, 400)
        const zapier = yield* FakeZapier.FakeZapier
        assert.strictEqual(FakeZapier.requestsByEndpoint(yield* zapier.ledger)[FakeZapier.Endpoint.choices], 4)
      }).pipe(Effect.provide(Server))
    )
  })

  describe("Connect UI", () => {
    const linkFor = (user: Domain.EndUser, params: Record<string, string> = {}) =>
      Effect.gen(function* () {
        const server = yield* FakeZapierServer.FakeZapierServer
        const access = yield* accessTokenFor(user)
        const connect = yield* connectTokenFor(access, sample.slack)
        const url = new URL(`${server.connectUrl}/to/slack`)
        url.searchParams.set("token", connect.body.access_token ?? "")
        for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
        return { url: url.toString(), access }
      })

    const openAndSubmit = (url: string, decision: "approve" | "deny", title = "") =>
      Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        const pageResponse = yield* client.execute(HttpClientRequest.get(url))
        const html = yield* pageResponse.text
        assert.strictEqual(pageResponse.status, 200, html)
        assert.match(html, /<button[^>]*value="approve"[^>]*>Approve<\/button>/)
        const session = /name="session" value="([^"]+)"/.exec(html)![1]!
        const action = new URL(/<form method="post" action="([^"]+)"/.exec(html)![1]!, url).toString()
        return yield* client.execute(
          HttpClientRequest.post(action).pipe(HttpClientRequest.bodyUrlParams({ session, decision, title }))
        )
      })

    it.effect("approve: the connection is created and the browser is redirected with its id", () =>
      Effect.gen(function* () {
        const { url, access } = yield* linkFor(alice, { redirect_uri: "https://partner.example/cb?x=1", state: "st" })
        const response = yield* openAndSubmit(url, "approve", "Work Slack")
        assert.strictEqual(response.status, 302)
        const location = new URL(response.headers.location!)
        const zapier = yield* FakeZapier.FakeZapier
        const [connection] = yield* zapier.connections(alice, sample.slack)
        assert.strictEqual(`${location.origin}${location.pathname}`, "https://partner.example/cb")
        assert.deepStrictEqual(Object.fromEntries(location.searchParams), {
          x: "1",
          authentication_id: connection!.id,
          service: "SlackAPI",
          state: "st"
        })
        assert.strictEqual(connection!.title, "Work Slack")
        const listed = yield* pageOf(yield* get("/v2/authentications?app=slack", access))
        assert.strictEqual(listed.data[0].id, connection!.id)
        const decoded = Schema.decodeUnknownSync(Domain.ConnectCallback)(Object.fromEntries(location.searchParams))
        assert.strictEqual(decoded._tag, "Approved")
        const ledger = yield* zapier.ledger
        assert.isFalse(ledger.requests.some((r) => r.path.includes("token=")))
        assert.deepStrictEqual(
          ledger.requests.filter((r) => r.endpoint.includes("/to/")).map((r) => [r.method, r.path, r.status]),
          [
            ["GET", "/to/slack", 200],
            ["POST", "/to/slack", 302]
          ]
        )
      }).pipe(Effect.provide(Server))
    )

    it.effect("popup pattern: the page posts authenticationSuccess to the opener", () =>
      Effect.gen(function* () {
        const { url } = yield* linkFor(alice)
        const response = yield* openAndSubmit(url, "approve")
        const html = yield* response.text
        const zapier = yield* FakeZapier.FakeZapier
        const [connection] = yield* zapier.connections(alice)
        assert.strictEqual(response.status, 200)
        assert.include(
          html,
          `window.opener.postMessage({"type":"authenticationSuccess","authId":${Number(connection!.id)}}, "*")`
        )
      }).pipe(Effect.provide(Server))
    )

    it.effect("reused and expired connect tokens get Connect UI's documented error redirect", () =>
      Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        const { url } = yield* linkFor(alice, { redirect_uri: "https://partner.example/cb", state: "s1" })
        yield* openAndSubmit(url, "approve")
        const reused = yield* client.execute(HttpClientRequest.get(url))
        assert.strictEqual(reused.status, 302)
        assert.deepStrictEqual(Object.fromEntries(new URL(reused.headers.location!).searchParams), {
          error: "invalid_request",
          error_description: "Invalid token",
          state: "s1"
        })
        const late = yield* linkFor(alice, { redirect_uri: "https://partner.example/cb", state: "s2" })
        yield* TestClock.adjust("6 minutes")
        const expired = yield* client.execute(HttpClientRequest.get(late.url))
        assert.strictEqual(
          expired.headers.location,
          "https://partner.example/cb?error=invalid_request&error_description=Token+expired&state=s2"
        )
        const popup = yield* client.execute(HttpClientRequest.get(`${late.url.split("?")[0]}?token=bogus`))
        assert.include(yield* popup.text, '"type":"authenticationError"')
      }).pipe(Effect.provide(Server))
    )

    it.effect("deny redirects with an error; reconnect keeps the connection id", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const denied = yield* linkFor(alice, { redirect_uri: "https://partner.example/cb" })
        const response = yield* openAndSubmit(denied.url, "deny")
        assert.strictEqual(new URL(response.headers.location!).searchParams.get("error"), "server_error")
        assert.strictEqual((yield* zapier.connections(alice)).length, 0)
        const old = yield* zapier.addConnection(alice, sample.slack, { isExpired: true })
        const reconnect = yield* linkFor(alice, { redirect_uri: "https://partner.example/cb", reconnect_id: old.id })
        const done = yield* openAndSubmit(reconnect.url, "approve")
        assert.strictEqual(new URL(done.headers.location!).searchParams.get("authentication_id"), old.id)
        assert.deepStrictEqual(
          (yield* zapier.connections(alice)).map((c) => [c.id, c.isExpired]),
          [[old.id, false]]
        )
      }).pipe(Effect.provide(Server))
    )

    it.effect("approveConnect on the control works on links of the server", () =>
      Effect.gen(function* () {
        const { url } = yield* linkFor(alice, { state: "s" })
        const zapier = yield* FakeZapier.FakeZapier
        const payload = yield* zapier.approveConnect(url)
        const [connection] = yield* zapier.connections(alice)
        assert.deepStrictEqual(payload, { authentication_id: connection!.id, service: "SlackAPI", state: "s" })
      }).pipe(Effect.provide(Server))
    )
  })

  describe("faults and limits", () => {
    it.effect("the rate limit answers 429 with Retry-After", () =>
      Effect.gen(function* () {
        const token = yield* accessTokenFor(alice)
        const statuses: Array<number> = []
        for (let i = 0; i < 3; i++) statuses.push((yield* get("/v2/authentications?app=slack", token)).status)
        const limited = yield* get("/v2/authentications?app=slack", token)
        assert.deepStrictEqual(statuses, [200, 200, 200])
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.headers["retry-after"], "60")
        assert.strictEqual((yield* errorOf(limited)).code, "throttled")
        yield* TestClock.adjust("60 seconds")
        assert.strictEqual((yield* get("/v2/authentications?app=slack", token)).status, 200)
      }).pipe(Effect.provide(serverWith({ rateLimitPerMinute: 3 })))
    )

    it.effect("the long-poll read: held until the run ends, 202 with Retry-After when the wait passes first", () =>
      Effect.gen(function* () {
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, {
            data: { action, authentication: connection.id, inputs: { channel: "#a", text: "x" } }
          })
        )
        const id = created.data.id
        const start = yield* TestClock.currentTimeMillis
        // send_channel_message takes 2 s: a 1 s wait passes first, a 30 s wait is answered when the run ends.
        const early = yield* heldGet(`/actions/v2/runs/${id}?wait_seconds=1`, token)
        assert.strictEqual(early.response.status, 202)
        assert.strictEqual(early.response.headers["retry-after"], "1")
        assert.isAtLeast(early.at - start, 1_000)
        const ended = yield* heldGet(`/actions/v2/runs/${id}?wait_seconds=30`, token)
        assert.strictEqual(ended.response.status, 200)
        assert.strictEqual((yield* readOf(ended.response)).data.status, "success")
        assert.isAtLeast(ended.at - start, 2_000)
        assert.isAtMost(ended.at - start, 2_100, "answered within one clock step of the end, not at the wait's end")
        const ledger = yield* (yield* FakeZapier.FakeZapier).ledger
        assert.strictEqual(FakeZapier.requestsByEndpoint(ledger)[FakeZapier.Endpoint.readRun], 2)
      }).pipe(Effect.provide(Server))
    )

    it.effect("long-poll reads are limited in a bucket of their own: 429 when exceeded, apart from /v2", () =>
      Effect.gen(function* () {
        // The limit is 2 per minute in each bucket; the action lookup and the create spend the /v2 one.
        const { connection, token, action } = yield* ready
        const created = yield* createdOf(
          yield* postJson("/v2/action-runs/", token, { data: { action, authentication: connection.id, inputs: {} } })
        )
        assert.strictEqual((yield* get(`/v2/action-runs/${created.data.id}/`, token)).status, 429)
        const reads: Array<number> = []
        for (let i = 0; i < 2; i++) {
          reads.push((yield* get(`/actions/v2/runs/${created.data.id}?wait_seconds=0`, token)).status)
        }
        const limited = yield* get(`/actions/v2/runs/${created.data.id}?wait_seconds=0`, token)
        assert.deepStrictEqual(reads, [202, 202])
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.headers["retry-after"], "60")
        assert.strictEqual((yield* errorOf(limited)).code, "throttled")
        const ledger = yield* (yield* FakeZapier.FakeZapier).ledger
        assert.strictEqual(FakeZapier.requestsByEndpoint(ledger)[FakeZapier.Endpoint.readRun], 3, "every read counted")
      }).pipe(Effect.provide(serverWith({ rateLimitPerMinute: 2 })))
    )

    it.effect("status faults, after-commit faults and dropped connections", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const { connection, token, action } = yield* ready
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.createRun,
          fault: FakeZapier.Fault.status(500, { afterCommit: true })
        })
        const body = { data: { action, authentication: connection.id, inputs: {} } }
        const failed = yield* postJson("/v2/action-runs/", token, body)
        assert.strictEqual(failed.status, 500)
        assert.deepStrictEqual(
          [(yield* errorOf(failed)).code, (yield* errorOf(failed)).title],
          ["error", "APIException"]
        )
        assert.strictEqual((yield* zapier.ledger).runs.length, 1)
        yield* zapier.injectFault({
          endpoint: FakeZapier.Endpoint.authentications,
          fault: FakeZapier.Fault.status(503, { retryAfter: "7 seconds" })
        })
        const unavailable = yield* get("/v2/authentications?app=slack", token)
        assert.strictEqual(unavailable.status, 503)
        assert.strictEqual(unavailable.headers["retry-after"], "7")
        yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.createRun, fault: FakeZapier.Fault.disconnect() })
        const dropped = yield* Effect.either(postJson("/v2/action-runs/", token, body))
        assert.strictEqual(dropped._tag, "Left")
        assert.strictEqual((yield* zapier.ledger).runs.length, 1)
        yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.getRun, fault: FakeZapier.Fault.malformedBody })
        const runId = (yield* zapier.ledger).runs[0]!.runId
        const garbled = yield* get(`/v2/action-runs/${runId}/`, token)
        assert.strictEqual(garbled.status, 200)
        assert.isTrue((yield* Effect.either(garbled.json))._tag === "Left")
        const statuses = (yield* zapier.ledger).requests.map((r) => r.status)
        assert.includeMembers(statuses, [500, 503, 0])
      }).pipe(Effect.provide(Server))
    )

    it.effect("token-endpoint faults answer in the OAuth shape", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.token, fault: FakeZapier.Fault.status(503) })
        const response = yield* jwtExchange(yield* signJwt(alice))
        assert.strictEqual(response.status, 503)
        assert.strictEqual((yield* oauthOf(response)).error, "temporarily_unavailable")
        assert.strictEqual((yield* jwtExchange(yield* signJwt(alice))).status, 200)
      }).pipe(Effect.provide(Server))
    )

    it.live("a delay fault holds the answer on the live clock", () =>
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const token = yield* accessTokenFor(alice)
        yield* zapier.injectFault({ endpoint: FakeZapier.Endpoint.apps, fault: FakeZapier.Fault.delay("300 millis") })
        const started = Date.now()
        const response = yield* get("/v2/apps", token)
        assert.strictEqual(response.status, 200)
        assert.isAtLeast(Date.now() - started, 290)
      }).pipe(Effect.provide(Server))
    )
  })
})
