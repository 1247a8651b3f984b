/**
 * RunCallback.handler mounted on a real NodeHttpServer on 127.0.0.1 that also serves a JWKS, verified through the
 * app's HttpClient (undici) over loopback: the tamper matrix (every forged, expired or malformed callback is
 * refused and nothing reaches the bus), duplicates delivered once, the key set cached and fetched again on an
 * unknown kid at most once a minute (TestClock), and no routing token, JWT or body in any answer or log line.
 */
import * as Http from "node:http"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { Domain, RunEvents } from "@effect-zapier/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Jose from "jose"
import { RunCallback } from "../src/index.js"

const NOW = Date.parse("2026-03-01T12:00:00Z")
const PATH = "/zapier/runs"

interface Keys {
  readonly zapier: { readonly privateKey: Jose.CryptoKey; readonly jwk: Jose.JWK }
  readonly other: { readonly privateKey: Jose.CryptoKey; readonly jwk: Jose.JWK }
}

const rsa = (kid: string) =>
  Effect.promise(async () => {
    const { privateKey, publicKey } = await Jose.generateKeyPair("RS256", { extractable: true })
    const jwk = { ...(await Jose.exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }
    return { privateKey, jwk }
  })

/** What the JWKS route serves (mutable, to rotate keys) and how often it was asked. */
const jwks = { keys: [] as Array<Jose.JWK>, served: 0, redirect: false }

const sign = (
  key: Jose.CryptoKey,
  kid: string,
  claims: Jose.JWTPayload & { readonly iatOffset?: number; readonly ttl?: number } = {}
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const { iatOffset = 0, ttl = 300, ...rest } = claims
    const iat = Math.floor(now / 1000) + iatOffset
    return Effect.promise(() =>
      new Jose.SignJWT({ iss: "https://zapier.com", ...rest, iat, exp: iat + ttl })
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .sign(key)
    )
  })

const bodyOf = (runId: string, status = "success", results: ReadonlyArray<unknown> = [{ ok: true }]) =>
  JSON.stringify({ data: { type: "run", id: runId, status, results, errors: [] } })

const routes = HttpRouter.empty.pipe(
  HttpRouter.post(PATH, RunCallback.handler),
  HttpRouter.get(
    "/jwks.json",
    Effect.sync(() => {
      jwks.served++
      return jwks.redirect
        ? HttpServerResponse.redirect("/jwks-elsewhere.json", { status: 302 })
        : HttpServerResponse.unsafeJson({ keys: jwks.keys })
    })
  )
)

const Server = NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })

const baseUrl = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? `http://127.0.0.1:${server.address.port}` : "http://invalid"
)

/** The receiver over a memory bus, its key set fetched through undici from the same loopback server. */
const ReceiverLive = Layer.unwrapEffect(
  Effect.gen(function* () {
    const base = yield* baseUrl
    return Layer.effect(
      RunCallback.Receiver,
      Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        const bus = yield* RunEvents.RunEvents
        return yield* RunCallback.makeReceiver(
          {
            jwksUrl: `${base}/jwks.json`,
            clockSkew: Duration.seconds(30),
            maxBodyBytes: 4096,
            tokenParameter: "zapier_run_token",
            requestTimeout: Duration.seconds(5),
            refetchInterval: Duration.minutes(1)
          },
          client,
          bus
        )
      })
    )
  })
)

const lines: Array<string> = []
const Logs = Layer.merge(
  Logger.replace(
    Logger.defaultLogger,
    Logger.make((options) => {
      lines.push(Logger.logfmtLogger.log(options))
    })
  ),
  Logger.minimumLogLevel(LogLevel.All)
)

const Stack = HttpServer.serve(routes).pipe(
  Layer.provideMerge(ReceiverLive),
  Layer.provideMerge(Server),
  Layer.provideMerge(RunEvents.layerMemory()),
  Layer.provideMerge(NodeHttpClient.layerUndici),
  Layer.provideMerge(Logs)
)

/** Posts one callback over real loopback HTTP. */
const post = (url: string, body: string, signature?: string) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { "content-type": "application/json" }
    if (signature !== undefined) headers["zapier-callback-signature"] = signature
    const response = await fetch(url, { method: "POST", headers, body })
    return { status: response.status, text: await response.text() }
  })

const setup = Effect.gen(function* () {
  yield* TestClock.setTime(NOW)
  const keys: Keys = { zapier: yield* rsa("zapier-1"), other: yield* rsa("attacker") }
  jwks.keys = [keys.zapier.jwk]
  jwks.served = 0
  jwks.redirect = false
  lines.length = 0
  const base = yield* baseUrl
  const bus = yield* RunEvents.RunEvents
  /** A run the partner created with a callback: its id, routing token and callback URL. */
  const run = (id: string) =>
    Effect.gen(function* () {
      const runId = Domain.ActionRunId.make(id)
      const token = yield* RunEvents.mintToken
      yield* bus.expect(runId, token)
      return { runId, token, url: `${base}${PATH}?zapier_run_token=${Redacted.value(token)}` }
    })
  return { keys, base, bus, run }
})

const delivered = (bus: RunEvents.Service, runId: Domain.ActionRunId) => Effect.map(bus.lookup(runId), Option.isSome)

describe("RunCallback.handler", () => {
  it.effect("delivers a signed callback once: the duplicate is answered 200 and ignored", () =>
    Effect.gen(function* () {
      const { keys, bus, run } = yield* setup
      const a = yield* run("run-a")
      const jwt = yield* sign(keys.zapier.privateKey, "zapier-1", { run_id: "run-a" })
      const first = yield* post(a.url, bodyOf("run-a"), jwt)
      assert.strictEqual(first.status, 200, first.text)
      assert.deepStrictEqual(JSON.parse(first.text), { received: true, duplicate: false })
      const again = yield* post(a.url, bodyOf("run-a", "error"), jwt)
      assert.strictEqual(again.status, 200)
      assert.deepStrictEqual(JSON.parse(again.text), { received: true, duplicate: true })
      const event = Option.getOrThrow(yield* bus.lookup(a.runId))
      assert.strictEqual(event.state._tag, "RunSucceeded", "the first delivery is kept")
      assert.strictEqual(event.source, "callback")
      assert.isTrue(RunEvents.sameToken(event.routingToken!, a.token))
      assert.strictEqual(jwks.served, 1, "the key set is fetched once and cached")
    }).pipe(Effect.provide(Stack))
  )

  it.effect("an error run is delivered as RunFailed with Zapier's errors", () =>
    Effect.gen(function* () {
      const { keys, bus, run } = yield* setup
      const b = yield* run("run-b")
      const body = JSON.stringify({
        data: { type: "run", id: "run-b", status: "error", errors: [{ code: "authentication", title: "Reconnect" }] }
      })
      const answer = yield* post(b.url, body, yield* sign(keys.zapier.privateKey, "zapier-1"))
      assert.strictEqual(answer.status, 200)
      const event = Option.getOrThrow(yield* bus.lookup(b.runId))
      assert.strictEqual(event.state._tag, "RunFailed")
      if (event.state._tag === "RunFailed") assert.strictEqual(event.state.errors[0]!.code, "authentication")
    }).pipe(Effect.provide(Stack))
  )

  it.effect("the tamper matrix: every forged, expired or malformed callback is refused, nothing is delivered", () =>
    Effect.gen(function* () {
      const { keys, bus, run, base } = yield* setup
      const target = yield* run("run-t")
      const other = yield* run("run-o")
      const good = (claims?: Jose.JWTPayload & { iatOffset?: number; ttl?: number }) =>
        sign(keys.zapier.privateKey, "zapier-1", claims)
      const hmacKey = new TextEncoder().encode(JSON.stringify(keys.zapier.jwk))
      const hs256 = yield* Effect.promise(() =>
        new Jose.SignJWT({ iat: Math.floor(NOW / 1000), exp: Math.floor(NOW / 1000) + 300 })
          .setProtectedHeader({ alg: "HS256", kid: "zapier-1" })
          .sign(hmacKey)
      )
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url")
      const none = `${b64({ alg: "none", kid: "zapier-1" })}.${b64({ iat: Math.floor(NOW / 1000), exp: Math.floor(NOW / 1000) + 300 })}.`
      const signedBody = bodyOf("run-t", "success", [{ amount: 1 }])
      const bodyHash = Buffer.from(
        yield* Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(signedBody)))
      ).toString("hex")
      const cases: ReadonlyArray<{ name: string; url: string; body: string; jwt?: string; status: number }> = [
        { name: "missing signature", url: target.url, body: bodyOf("run-t"), status: 401 },
        { name: "not a JWT", url: target.url, body: bodyOf("run-t"), jwt: "not.a.jwt", status: 401 },
        {
          name: "wrong key (same kid)",
          url: target.url,
          body: bodyOf("run-t"),
          jwt: yield* sign(keys.other.privateKey, "zapier-1"),
          status: 401
        },
        {
          // The key set was fetched within the minute: not fetched again, 503 (never accepted).
          name: "unknown kid",
          url: target.url,
          body: bodyOf("run-t"),
          jwt: yield* sign(keys.other.privateKey, "attacker"),
          status: 503
        },
        { name: "alg none", url: target.url, body: bodyOf("run-t"), jwt: none, status: 401 },
        { name: "HS256 keyed with the public key", url: target.url, body: bodyOf("run-t"), jwt: hs256, status: 401 },
        { name: "expired", url: target.url, body: bodyOf("run-t"), jwt: yield* good({ iatOffset: -400 }), status: 401 },
        {
          name: "iat in the future",
          url: target.url,
          body: bodyOf("run-t"),
          jwt: yield* good({ iatOffset: 600, ttl: 60 }),
          status: 401
        },
        {
          name: "body changed after signing (body_sha256 claim)",
          url: target.url,
          body: bodyOf("run-t", "success", [{ amount: 1000 }]),
          jwt: yield* good({ body_sha256: bodyHash }),
          status: 401
        },
        {
          name: "signature issued for another run (run_id claim)",
          url: target.url,
          body: bodyOf("run-t"),
          jwt: yield* good({ run_id: "run-o" }),
          status: 401
        },
        {
          name: "another run's routing token",
          url: other.url,
          body: bodyOf("run-t"),
          jwt: yield* good(),
          status: 401
        },
        {
          name: "no routing token",
          url: `${base}${PATH}`,
          body: bodyOf("run-t"),
          jwt: yield* good(),
          status: 401
        },
        {
          name: "oversize body",
          url: target.url,
          body: bodyOf("run-t", "success", ["x".repeat(5000)]),
          jwt: yield* good(),
          status: 413
        },
        { name: "not JSON", url: target.url, body: "{data:", jwt: yield* good(), status: 400 },
        {
          name: "no run id",
          url: target.url,
          body: JSON.stringify({ data: { status: "success" } }),
          jwt: yield* good(),
          status: 400
        },
        { name: "not terminal", url: target.url, body: bodyOf("run-t", "waiting"), jwt: yield* good(), status: 400 }
      ]
      for (const c of cases) {
        const answer = yield* post(c.url, c.body, c.jwt)
        assert.strictEqual(answer.status, c.status, `${c.name}: ${answer.text}`)
        const parsed = JSON.parse(answer.text) as { error: string; message: string }
        assert.isString(parsed.error, c.name)
        assert.notInclude(answer.text, "run-t", `${c.name}: the answer quotes nothing received`)
        if (c.jwt !== undefined && c.jwt.length > 10) assert.notInclude(answer.text, c.jwt.slice(-20), c.name)
        assert.isFalse(yield* delivered(bus, target.runId), `${c.name}: nothing delivered`)
        assert.isFalse(yield* delivered(bus, other.runId), `${c.name}: nothing delivered`)
      }
      // The genuine callback still goes through afterwards (the refusals took no dedupe slot).
      const genuine = yield* post(target.url, signedBody, yield* good({ body_sha256: bodyHash, run_id: "run-t" }))
      assert.strictEqual(genuine.status, 200, genuine.text)
      assert.isTrue(yield* delivered(bus, target.runId))
      // No routing token, JWT or body in any log line.
      for (const line of lines) {
        assert.notInclude(line, Redacted.value(target.token))
        assert.notInclude(line, Redacted.value(other.token))
        assert.notInclude(line, "amount")
      }
    }).pipe(Effect.provide(Stack))
  )

  it.effect("a run the bus does not know is answered 503 (deliver again), and delivered once it is known", () =>
    Effect.gen(function* () {
      const { keys, bus, base } = yield* setup
      const runId = Domain.ActionRunId.make("run-late")
      const token = yield* RunEvents.mintToken
      const url = `${base}${PATH}?zapier_run_token=${Redacted.value(token)}`
      const jwt = yield* sign(keys.zapier.privateKey, "zapier-1")
      const early = yield* post(url, bodyOf("run-late"), jwt)
      assert.strictEqual(early.status, 503)
      assert.isFalse(yield* delivered(bus, runId))
      yield* bus.expect(runId, token)
      assert.strictEqual((yield* post(url, bodyOf("run-late"), jwt)).status, 200)
      assert.isTrue(yield* delivered(bus, runId))
    }).pipe(Effect.provide(Stack))
  )

  it.effect("an unknown kid fetches the key set again at most once a minute (rotation is picked up)", () =>
    Effect.gen(function* () {
      const { keys, bus, run } = yield* setup
      const a = yield* run("run-r1")
      assert.strictEqual(
        (yield* post(a.url, bodyOf("run-r1"), yield* sign(keys.zapier.privateKey, "zapier-1"))).status,
        200
      )
      assert.strictEqual(jwks.served, 1)
      // Zapier rotates to a new key.
      const rotated = yield* rsa("zapier-2")
      jwks.keys = [keys.zapier.jwk, rotated.jwk]
      const b = yield* run("run-r2")
      // Within the minute of the last fetch: not fetched again, answered 503 so that Zapier delivers again.
      yield* TestClock.adjust("10 seconds")
      const throttled = yield* post(b.url, bodyOf("run-r2"), yield* sign(rotated.privateKey, "zapier-2"))
      assert.strictEqual(throttled.status, 503)
      assert.strictEqual(jwks.served, 1)
      // A minute after: fetched once more, and the new key verifies.
      yield* TestClock.adjust("55 seconds")
      const accepted = yield* post(b.url, bodyOf("run-r2"), yield* sign(rotated.privateKey, "zapier-2"))
      assert.strictEqual(accepted.status, 200, accepted.text)
      assert.strictEqual(jwks.served, 2)
      assert.isTrue(yield* delivered(bus, b.runId))
      // A flood of unknown kids right after costs no more fetches.
      const c = yield* run("run-r3")
      for (let i = 0; i < 5; i++) {
        const forged = yield* post(c.url, bodyOf("run-r3"), yield* sign(keys.other.privateKey, `k${i}`))
        assert.include([401, 503], forged.status)
      }
      assert.strictEqual(jwks.served, 2)
      assert.isFalse(yield* delivered(bus, c.runId))
    }).pipe(Effect.provide(Stack))
  )

  it.effect("a key set that cannot be fetched is answered 503, nothing delivered", () =>
    Effect.gen(function* () {
      const { keys, bus, run } = yield* setup
      jwks.keys = [{ kty: "oct", k: 42 } as unknown as Jose.JWK]
      const a = yield* run("run-k")
      const answer = yield* post(a.url, bodyOf("run-k"), yield* sign(keys.zapier.privateKey, "zapier-1"))
      assert.include([401, 503], answer.status)
      assert.isFalse(yield* delivered(bus, a.runId))
      // A redirect is not followed: the 3xx is not a key set.
      jwks.keys = [keys.zapier.jwk]
      jwks.redirect = true
      yield* TestClock.adjust("2 minutes")
      const b = yield* run("run-k2")
      const redirected = yield* post(b.url, bodyOf("run-k2"), yield* sign(keys.zapier.privateKey, "zapier-1"))
      assert.strictEqual(redirected.status, 503, redirected.text)
      assert.isFalse(yield* delivered(bus, b.runId))
    }).pipe(Effect.provide(Stack))
  )
})
