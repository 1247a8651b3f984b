/**
 * Connection webhooks: the Standard Webhooks signature checked against the specification's published test vector
 * and tampered inputs (id, timestamp, body, signature, secret, version), the timestamp tolerance on the TestClock,
 * and the handler mounted on a real NodeHttpServer on 127.0.0.1 (verify, dedupe, decode, hand over the expiry).
 */
import { createHmac } from "node:crypto"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import type { Domain } from "@effect-zapier/core"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { ConnectionWebhooks } from "../src/index.js"
import { captureSpans } from "./kit.js"

// The Standard Webhooks specification's published test vector.
const vector = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: "1614265330",
  payload: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
}
const encode = (s: string) => new TextEncoder().encode(s)
const options = { secret: Redacted.make(vector.secret) }
const atVector = TestClock.setTime(Number(vector.timestamp) * 1000)

const reason = <A>(effect: Effect.Effect<A, { readonly reason: string }>) =>
  Effect.map(Effect.flip(effect), (e) => e.reason)

describe("Standard Webhooks signature", () => {
  it("the published vector's signature is the HMAC-SHA256 this test computes", () => {
    const key = Buffer.from(vector.secret.slice("whsec_".length), "base64")
    const mac = createHmac("sha256", key).update(`${vector.id}.${vector.timestamp}.${vector.payload}`).digest("base64")
    assert.strictEqual(`v1,${mac}`, vector.signature)
  })

  it.effect("accepts the published test vector", () =>
    Effect.gen(function* () {
      yield* atVector
      yield* ConnectionWebhooks.verify(
        options,
        { id: vector.id, timestamp: vector.timestamp, signature: vector.signature },
        encode(vector.payload)
      )
    })
  )

  it.effect("accepts it among several signatures and unknown versions", () =>
    Effect.gen(function* () {
      yield* atVector
      const signature = `v2,abc v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ${vector.signature} v1,!!!`
      yield* ConnectionWebhooks.verify(
        options,
        { id: vector.id, timestamp: vector.timestamp, signature },
        encode(vector.payload)
      )
      // and under a rotated set of secrets
      yield* ConnectionWebhooks.verify(
        { secret: [Redacted.make("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Redacted.make(vector.secret)] },
        { id: vector.id, timestamp: vector.timestamp, signature: vector.signature },
        encode(vector.payload)
      )
    })
  )

  it.effect("refuses every tampered input", () =>
    Effect.gen(function* () {
      yield* atVector
      const check = (
        headers: Partial<ConnectionWebhooks.DeliveryHeaders>,
        payload = vector.payload,
        secret = vector.secret
      ) =>
        reason(
          ConnectionWebhooks.verify(
            { secret: Redacted.make(secret) },
            { id: vector.id, timestamp: vector.timestamp, signature: vector.signature, ...headers },
            encode(payload)
          )
        )
      assert.strictEqual(yield* check({}, '{"test": 2432232315}'), "bad_signature")
      assert.strictEqual(yield* check({}, '{"test":2432232314}'), "bad_signature")
      assert.strictEqual(yield* check({ id: "msg_p5jXN8AQM9LWM0D4loKWxJeK" }), "bad_signature")
      assert.strictEqual(
        yield* check({ signature: "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" }),
        "bad_signature"
      )
      assert.strictEqual(yield* check({ signature: vector.signature.replace("v1,", "v2,") }), "bad_signature")
      assert.strictEqual(yield* check({ signature: "v1," }), "bad_signature")
      assert.strictEqual(yield* check({}, vector.payload, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx"), "bad_signature")
      assert.strictEqual(yield* check({}, vector.payload, "whsec_not base64!"), "bad_secret")
      assert.strictEqual(yield* check({ timestamp: "1614265331" }), "bad_signature")
      assert.strictEqual(yield* check({ timestamp: "16142653e3" }), "bad_timestamp")
      assert.strictEqual(yield* check({ signature: undefined }), "missing_headers")
      assert.strictEqual(yield* check({ id: "" }), "missing_headers")
    })
  )

  it.effect("refuses deliveries older or newer than the tolerance", () =>
    Effect.gen(function* () {
      const headers = { id: vector.id, timestamp: vector.timestamp, signature: vector.signature }
      const at = Number(vector.timestamp) * 1000
      yield* TestClock.setTime(at + 5 * 60_000)
      yield* ConnectionWebhooks.verify(options, headers, encode(vector.payload))
      yield* TestClock.setTime(at + 5 * 60_000 + 1)
      assert.strictEqual(yield* reason(ConnectionWebhooks.verify(options, headers, encode(vector.payload))), "too_old")
      yield* TestClock.setTime(at - 5 * 60_000 - 1000)
      assert.strictEqual(yield* reason(ConnectionWebhooks.verify(options, headers, encode(vector.payload))), "too_new")
      yield* TestClock.setTime(at + 30_000)
      assert.strictEqual(
        yield* reason(
          ConnectionWebhooks.verify({ ...options, tolerance: "10 seconds" }, headers, encode(vector.payload))
        ),
        "too_old"
      )
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// The handler on a real server
// ---------------------------------------------------------------------------------------------------------------

const SECRET = "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0LTQyNDI0Mg=="
const sign = (id: string, timestamp: number, body: string, secret = SECRET) =>
  `v1,${createHmac("sha256", Buffer.from(secret.slice(6), "base64"))
    .update(`${id}.${timestamp}.${body}`)
    .digest("base64")}`

const expiry = (connection: string) =>
  JSON.stringify({
    type: "connection.expiry_scheduled",
    expires_at: "2026-12-01T00:00:00Z",
    data: { id: connection, title: "Jane's Slack (personal data)" }
  })

describe("ConnectionWebhooks.handler", () => {
  it.live("verifies, dedupes and hands a verified expiry notice over; refusals change nothing", () =>
    Effect.gen(function* () {
      const received: Array<Domain.ConnectionExpiring> = []
      const app = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/hooks",
          ConnectionWebhooks.handler({
            secret: Redacted.make(SECRET),
            onExpiring: (event) => Effect.sync(() => received.push(event))
          })
        )
      )
      yield* Layer.build(HttpServer.serve(app))
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.mapRequest(HttpClientRequest.prependUrl("")))
      const post = (headers: Record<string, string>, body: string) =>
        HttpClientRequest.post("/hooks").pipe(
          HttpClientRequest.setHeaders(headers),
          HttpClientRequest.bodyText(body, "application/json"),
          client.execute,
          Effect.map((r) => r.status)
        )
      const now = Math.floor(Date.now() / 1000)
      const body = expiry("conn-7")
      const good = {
        "webhook-id": "msg_1",
        "webhook-timestamp": String(now),
        "webhook-signature": sign("msg_1", now, body)
      }
      assert.strictEqual(
        yield* post({ ...good, "webhook-signature": sign("msg_1", now, body, "whsec_b3RoZXI=") }, body),
        401
      )
      assert.strictEqual(yield* post(good, body.replace("conn-7", "conn-8")), 401)
      assert.strictEqual(
        yield* post(
          { ...good, "webhook-timestamp": String(now - 3600), "webhook-signature": sign("msg_1", now - 3600, body) },
          body
        ),
        401
      )
      assert.strictEqual(received.length, 0)
      assert.strictEqual(yield* post(good, body), 200)
      assert.strictEqual(yield* post(good, body), 204, "a redelivery of the same webhook-id is not processed again")
      assert.strictEqual(received.length, 1)
      assert.strictEqual(received[0]!.connection, "conn-7")
      assert.strictEqual(DateTime.formatIso(received[0]!.expiresAt), "2026-12-01T00:00:00.000Z")
      assert.notInclude(JSON.stringify(received[0]), "personal data")
      // Other event types are acknowledged and ignored; a signed body that is not an event is a 400.
      const other = JSON.stringify({ type: "connection.deleted", data: {} })
      assert.strictEqual(
        yield* post({ ...good, "webhook-id": "msg_2", "webhook-signature": sign("msg_2", now, other) }, other),
        200
      )
      assert.strictEqual(
        yield* post({ ...good, "webhook-id": "msg_3", "webhook-signature": sign("msg_3", now, "[1,") }, "[1,"),
        400
      )
      assert.strictEqual(received.length, 1)
      assert.strictEqual(yield* post(good, "x".repeat(70_000)), 400)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(NodeHttpServer.layerTest, Logger.remove(Logger.defaultLogger)))
    )
  )
  it.live("keeps the signature off the request's span that the platform's server tracing records", () => {
    const spans = captureSpans()
    return Effect.gen(function* () {
      const app = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/hooks",
          ConnectionWebhooks.handler({ secret: Redacted.make(SECRET), onExpiring: () => Effect.void })
        )
      )
      yield* Layer.build(HttpServer.serve(app))
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.mapRequest(HttpClientRequest.prependUrl("")))
      const now = Math.floor(Date.now() / 1000)
      const body = expiry("conn-9")
      const signature = sign("msg_9", now, body)
      const status = yield* HttpClientRequest.post("/hooks").pipe(
        HttpClientRequest.setHeaders({
          "webhook-id": "msg_9",
          "webhook-timestamp": String(now),
          "webhook-signature": signature
        }),
        HttpClientRequest.bodyText(body, "application/json"),
        client.execute,
        Effect.map((r) => r.status)
      )
      assert.strictEqual(status, 200)
      const server = spans.spans.filter(
        (s) => s.name.startsWith("http.server") && s.attributes.get("url.path") === "/hooks"
      )
      assert.strictEqual(server.length, 1, "the server's span of the request")
      assert.strictEqual(server[0]!.attributes.get("http.request.header.webhook-signature"), "<redacted>")
      const digest = signature.split(",")[1]!
      // Every span of the partner's side (the test's own client span plays Zapier and sent it).
      for (const span of spans.spans.filter((s) => !s.name.startsWith("http.client"))) {
        for (const [key, value] of span.attributes) assert.notInclude(String(value), digest, `${span.name} ${key}`)
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(NodeHttpServer.layerTest, Logger.remove(Logger.defaultLogger), spans.layer))
    )
  })
})
