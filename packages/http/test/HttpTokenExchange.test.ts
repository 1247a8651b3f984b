import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Connections, Domain, TokenExchange } from "@effect-zapier/core"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import fc from "fast-check"
import * as Jose from "jose"
import { ZapierHttp } from "../src/index.js"
import {
  app,
  CLIENT_SECRET,
  driveClock,
  eventually,
  fakeZapier,
  generateKeys,
  json,
  options,
  otherUser,
  scriptedClient,
  user
} from "./kit.js"

const keys = await generateKeys("ES256")
const NOW = Date.parse("2026-03-01T12:00:00Z")

const live = (client: ReturnType<typeof scriptedClient>["layer"]) =>
  ZapierHttp.layer(options(keys)).pipe(Layer.provide(client))

describe("HttpTokenExchange", () => {
  it.effect("sends the RFC 8693 form body with a signed partner JWT (claims, kid, alg verified)", () => {
    const zapier = fakeZapier(() => json({}, 404))
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const tokens = yield* TokenExchange.TokenExchange
      const token = yield* tokens.accessToken(user)
      assert.strictEqual(Redacted.value(token.value), "access-token-canary-1")
      assert.strictEqual(zapier.requests.length, 1)
      const request = zapier.requests[0]!
      assert.strictEqual(request.method, "POST")
      assert.strictEqual(request.url.href, "https://zapier.com/oauth/token")
      assert.strictEqual(request.headers["content-type"], "application/x-www-form-urlencoded")
      assert.isUndefined(request.headers.authorization)
      const form = request.form
      assert.deepStrictEqual([...form.keys()].sort(), [
        "client_id",
        "client_secret",
        "grant_type",
        "requested_token_type",
        "scope",
        "subject_token",
        "subject_token_type"
      ])
      assert.strictEqual(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:token-exchange")
      assert.strictEqual(form.get("client_id"), "partner-client")
      assert.strictEqual(form.get("client_secret"), CLIENT_SECRET)
      assert.strictEqual(form.get("subject_token_type"), "urn:ietf:params:oauth:token-type:external-jwt")
      assert.strictEqual(form.get("requested_token_type"), "urn:ietf:params:oauth:token-type:access-token")
      assert.strictEqual(form.get("scope"), "external action:run authentication connection:read zap zap:write")
      const jwt = form.get("subject_token")!
      const { payload, protectedHeader } = yield* Effect.promise(() =>
        Jose.jwtVerify(jwt, keys.publicKey, {
          issuer: "https://partner.example",
          audience: "connect.zapier.com",
          algorithms: ["ES256"],
          currentDate: new Date(NOW)
        })
      )
      assert.deepStrictEqual(protectedHeader, { alg: "ES256", kid: "key-2026-03", typ: "JWT" })
      assert.strictEqual(payload.sub, "user-1")
      assert.strictEqual(payload.org_id, "tenant-1")
      assert.strictEqual(payload.iat, NOW / 1000)
      assert.strictEqual(payload.nbf, NOW / 1000)
      assert.strictEqual(payload.exp, NOW / 1000 + 300)
      assert.match(String(payload.jti), /^[0-9a-f-]{36}$/)
      // Expiry is measured from when the request started.
      assert.strictEqual(DateTime.toEpochMillis(token.expiresAt), NOW + 3600 * 1000)
      assert.strictEqual(token.scope, "external action:run authentication connection:read zap zap:write")
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("custom claim names, lifetime, algorithm (RS256 from a JWK) and token-type URNs are used", () =>
    Effect.gen(function* () {
      const rsa = yield* Effect.promise(() => generateKeys("RS256"))
      const zapier = fakeZapier(() => json({}, 404))
      const layer = ZapierHttp.layer({
        ...options(rsa),
        signingKey: Redacted.make(rsa.jwk),
        algorithm: "RS256",
        userClaim: "user_id",
        tenantClaim: "tenant_id",
        audience: "aud.example",
        jwtLifetime: Duration.minutes(2),
        jwtTokenType: "urn:example:jwt",
        accessTokenType: "urn:example:access",
        grantType: "urn:example:grant",
        scope: "external action:run",
        tokenUrl: "https://zapier.com/oauth/token/"
      }).pipe(Layer.provide(zapier.layer))
      yield* TestClock.setTime(NOW)
      yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(Effect.provide(layer))
      const request = zapier.requests[0]!
      assert.strictEqual(request.url.href, "https://zapier.com/oauth/token/")
      assert.strictEqual(request.form.get("grant_type"), "urn:example:grant")
      assert.strictEqual(request.form.get("subject_token_type"), "urn:example:jwt")
      assert.strictEqual(request.form.get("requested_token_type"), "urn:example:access")
      assert.strictEqual(request.form.get("scope"), "external action:run")
      const { payload, protectedHeader } = yield* Effect.promise(() =>
        Jose.jwtVerify(request.form.get("subject_token")!, rsa.publicKey, {
          audience: "aud.example",
          currentDate: new Date(NOW)
        })
      )
      assert.strictEqual(protectedHeader.alg, "RS256")
      assert.strictEqual(payload.user_id, "user-1")
      assert.strictEqual(payload.tenant_id, "tenant-1")
      assert.isUndefined(payload.sub)
      assert.strictEqual(payload.exp! - payload.iat!, 120)
    })
  )

  it.effect(
    "the partner JWT verifies for every algorithm, from a PEM and from a JWK (ECDSA in the JWS r ‖ s form)",
    () =>
      Effect.gen(function* () {
        for (const algorithm of ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512"] as const) {
          const pair = yield* Effect.promise(() => Jose.generateKeyPair(algorithm, { extractable: true }))
          const pem = yield* Effect.promise(() => Jose.exportPKCS8(pair.privateKey))
          const jwk = JSON.stringify(yield* Effect.promise(() => Jose.exportJWK(pair.privateKey)))
          for (const signingKey of [pem, jwk]) {
            const zapier = fakeZapier(() => json({}, 404))
            const layer = ZapierHttp.layer({
              ...options({ pem, jwk, publicKey: pair.publicKey }),
              signingKey: Redacted.make(signingKey),
              algorithm
            }).pipe(Layer.provide(zapier.layer))
            yield* TestClock.setTime(NOW)
            yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(Effect.provide(layer))
            const jwt = zapier.requests[0]!.form.get("subject_token")!
            const { payload, protectedHeader } = yield* Effect.promise(() =>
              Jose.jwtVerify(jwt, pair.publicKey, {
                issuer: "https://partner.example",
                audience: "connect.zapier.com",
                algorithms: [algorithm],
                currentDate: new Date(NOW)
              })
            )
            assert.deepStrictEqual(protectedHeader, { alg: algorithm, kid: "key-2026-03", typ: "JWT" })
            assert.strictEqual(payload.sub, "user-1")
            assert.strictEqual(payload.exp, NOW / 1000 + 300)
          }
        }
      })
  )

  it.effect("every exchange signs a fresh JWT with a unique jti", () => {
    const zapier = fakeZapier(() => json({}, 404))
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      yield* tokens.accessToken(user)
      yield* tokens.accessToken(otherUser)
      const jtis = zapier.requests.map((r) => Jose.decodeJwt(r.form.get("subject_token")!).jti)
      assert.strictEqual(jtis.length, 2)
      assert.notStrictEqual(jtis[0], jtis[1])
      assert.strictEqual(Jose.decodeJwt(zapier.requests[1]!.form.get("subject_token")!).sub, "user-2")
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("100 concurrent callers share one exchange; other users get their own", () => {
    const zapier = fakeZapier(() => json({}, 404))
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const all = yield* Effect.all(
        Array.from({ length: 100 }, () => tokens.accessToken(user)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(zapier.state.exchanges, 1)
      assert.isTrue(all.every((t) => Redacted.value(t.value) === "access-token-canary-1"))
      const others = yield* Effect.all(
        Array.from({ length: 10 }, () => tokens.accessToken(otherUser)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(zapier.state.exchanges, 2)
      assert.isTrue(others.every((t) => Redacted.value(t.value) === "access-token-canary-2"))
      // Cached afterwards.
      yield* tokens.accessToken(user)
      assert.strictEqual(zapier.state.exchanges, 2)
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  /** A token endpoint that answers each exchange after 2 s (on the test's clock), counting them. */
  const slowTokenEndpoint = () => {
    const counter = { exchanges: 0 }
    const client = scriptedClient(() => {
      counter.exchanges++
      return Effect.as(
        Effect.sleep(Duration.seconds(2)),
        json({ access_token: `access-token-canary-${counter.exchanges}`, expires_in: 3600 })
      )
    })
    return { counter, layer: client.layer }
  }

  it.effect("a slow exchange is shared, and one caller's interruption does not cancel it for the others", () => {
    const slow = slowTokenEndpoint()
    const exchanges = () => slow.counter.exchanges
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const a = yield* Effect.fork(tokens.accessToken(user))
      const b = yield* Effect.fork(tokens.accessToken(user))
      // Wait until the exchange request is in flight (signing awaits real WebCrypto).
      assert.isTrue(yield* eventually(() => exchanges() === 1))
      yield* Fiber.interrupt(a)
      yield* TestClock.adjust(Duration.seconds(2))
      const token = yield* Fiber.join(b)
      assert.strictEqual(Redacted.value(token.value), "access-token-canary-1")
      // A later caller gets the cached token: the exchange completed despite the interruption.
      yield* tokens.accessToken(user)
      assert.strictEqual(exchanges(), 1)
    }).pipe(Effect.provide(live(slow.layer)))
  })

  it.effect(
    "interrupting the first caller and a waiter leaves one exchange for the rest, and every caller gone still caches",
    () => {
      const slow = slowTokenEndpoint()
      const exchanges = () => slow.counter.exchanges
      return Effect.gen(function* () {
        const tokens = yield* TokenExchange.TokenExchange
        const first = yield* Effect.fork(tokens.accessToken(user))
        const waiter = yield* Effect.fork(tokens.accessToken(user))
        const rest = yield* Effect.fork(
          Effect.all([tokens.accessToken(user), tokens.accessToken(user)], { concurrency: 2 })
        )
        assert.isTrue(yield* eventually(() => exchanges() === 1))
        yield* Fiber.interrupt(first)
        yield* Fiber.interrupt(waiter)
        yield* TestClock.adjust(Duration.seconds(2))
        const [c, d] = yield* Fiber.join(rest)
        assert.deepStrictEqual(
          [Redacted.value(c.value), Redacted.value(d.value)],
          ["access-token-canary-1", "access-token-canary-1"]
        )
        assert.strictEqual(exchanges(), 1)
        // Another user's only caller interrupted mid-exchange: the exchange still completes and its token is cached.
        const other = Domain.EndUser.make({ userId: "u-other", tenantId: user.tenantId })
        const lone = yield* Effect.fork(tokens.accessToken(other))
        assert.isTrue(yield* eventually(() => exchanges() === 2))
        yield* Fiber.interrupt(lone)
        yield* TestClock.adjust(Duration.seconds(2))
        // Were it cancelled, this caller would start a third exchange (canary-3).
        const later = yield* Effect.fork(tokens.accessToken(other))
        yield* TestClock.adjust(Duration.seconds(2))
        const cached = yield* Fiber.join(later)
        assert.strictEqual(Redacted.value(cached.value), "access-token-canary-2")
        assert.strictEqual(exchanges(), 2)
      }).pipe(Effect.provide(live(slow.layer)))
    }
  )

  it.effect("closing the layer mid-exchange interrupts the waiters instead of leaving them hanging", () => {
    const slow = scriptedClient(() => Effect.as(Effect.sleep(Duration.seconds(10)), json({ access_token: "t" })))
    return Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(live(slow.layer), scope)
      const tokens = Context.get(context, TokenExchange.TokenExchange)
      const waiter = yield* Effect.fork(tokens.accessToken(user))
      assert.isTrue(yield* eventually(() => slow.requests.length === 1))
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isInterrupted(exit))
    })
  })

  it.effect("after the layer closed, a call that needs an exchange is interrupted at once and starts none", () => {
    // A 900 s token: a refresh is due after 600 s.
    const answering = scriptedClient(() => json({ access_token: "access-token-canary", expires_in: 900 }))
    return Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(live(answering.layer), scope)
      const tokens = Context.get(context, TokenExchange.TokenExchange)
      const cached = yield* tokens.accessToken(user)
      assert.strictEqual(answering.requests.length, 1)
      yield* Scope.close(scope, Exit.void)
      // A new user's first call would need an exchange: interrupted, nothing sent.
      const exit = yield* Effect.exit(tokens.accessToken(otherUser))
      assert.isTrue(Exit.isInterrupted(exit))
      // The cached token still needs nothing; once a refresh is due, none is started.
      yield* TestClock.adjust(Duration.seconds(700))
      const still = yield* tokens.accessToken(user)
      assert.strictEqual(Redacted.value(still.value), Redacted.value(cached.value))
      // Past its stale point it would need an exchange: interrupted too.
      yield* TestClock.adjust(Duration.seconds(190))
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(tokens.accessToken(user))))
      assert.strictEqual(answering.requests.length, 1)
    })
  })

  it.effect("refreshes ahead of expiry in the background without blocking holders of a valid token", () => {
    const zapier = fakeZapier(() => json({}, 404), { expiresIn: 900 })
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const t1 = yield* tokens.accessToken(user)
      assert.strictEqual(zapier.state.exchanges, 1)
      // 900 s token: refresh starts once less than min(300 s, 450 s) = 300 s is left, i.e. after 600 s.
      yield* TestClock.adjust(Duration.seconds(599))
      yield* tokens.accessToken(user)
      assert.strictEqual(zapier.state.exchanges, 1)
      yield* TestClock.adjust(Duration.seconds(2))
      const during = yield* tokens.accessToken(user)
      // The caller got the still-valid token at once; the refresh runs in the background.
      assert.strictEqual(Redacted.value(during.value), Redacted.value(t1.value))
      assert.isTrue(yield* eventually(() => zapier.state.exchanges === 2))
      // Callers during the refresh did not start more exchanges.
      yield* Effect.all([tokens.accessToken(user), tokens.accessToken(user)])
      const after = yield* tokens.accessToken(user)
      assert.strictEqual(Redacted.value(after.value), "access-token-canary-2")
      assert.strictEqual(zapier.state.exchanges, 2)
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("a short-lived token refreshes once half its life is left", () => {
    const short = fakeZapier(() => json({}, 404), { expiresIn: 120 })
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      yield* tokens.accessToken(user)
      yield* TestClock.adjust(Duration.seconds(59))
      yield* tokens.accessToken(user)
      assert.strictEqual(short.state.exchanges, 1)
      yield* TestClock.adjust(Duration.seconds(2))
      yield* tokens.accessToken(user)
      assert.isTrue(yield* eventually(() => short.state.exchanges === 2))
    }).pipe(Effect.provide(live(short.layer)))
  })

  it.effect("without expires_in the token lives one hour", () => {
    const zapier = fakeZapier(() => json({}, 404), { expiresIn: undefined })
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const token = yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user))
      assert.strictEqual(DateTime.toEpochMillis(token.expiresAt), NOW + 3_600_000)
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("invalidate(user, failed) drops the token only if it is still the cached one", () => {
    const zapier = fakeZapier(() => json({}, 404))
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const t1 = yield* tokens.accessToken(user)
      yield* tokens.invalidate(user, t1)
      const t2 = yield* tokens.accessToken(user)
      assert.strictEqual(zapier.state.exchanges, 2)
      // A late invalidate with the old token is ignored.
      yield* tokens.invalidate(user, t1)
      const t3 = yield* tokens.accessToken(user)
      assert.strictEqual(zapier.state.exchanges, 2)
      assert.strictEqual(Redacted.value(t3.value), Redacted.value(t2.value))
      // Without a token: always dropped.
      yield* tokens.invalidate(user)
      yield* tokens.accessToken(user)
      assert.strictEqual(zapier.state.exchanges, 3)
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("connect tokens: access token as subject, resource = Connect URL of the app, never cached", () => {
    const zapier = fakeZapier(() => json({}, 404))
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const tokens = yield* TokenExchange.TokenExchange
      const c1 = yield* tokens.connectToken(user, app)
      const c2 = yield* tokens.connectToken(user, app)
      assert.strictEqual(zapier.state.exchanges, 1)
      assert.strictEqual(zapier.state.connectExchanges, 2)
      assert.notStrictEqual(Redacted.value(c1.value), Redacted.value(c2.value))
      assert.strictEqual(c1.app, app)
      assert.strictEqual(DateTime.toEpochMillis(c1.expiresAt), NOW + 360_000)
      const request = zapier.requests[1]!
      const form = request.form
      assert.strictEqual(form.get("subject_token"), "access-token-canary-1")
      assert.strictEqual(form.get("subject_token_type"), "urn:ietf:params:oauth:token-type:access-token")
      assert.strictEqual(form.get("requested_token_type"), "urn:ietf:params:oauth:token-type:connect-token")
      assert.strictEqual(form.get("scope"), "connection:write")
      assert.strictEqual(form.get("resource"), `https://connect.zapier.com/to/${app}`)
      assert.strictEqual(form.get("client_secret"), CLIENT_SECRET)
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("a connect token without expires_in lives 6 minutes", () => {
    const zapier = scriptedClient((request) =>
      request.form.get("requested_token_type")?.endsWith("connect-token")
        ? json({ access_token: "connect-token-canary" })
        : json({ access_token: "access-token-canary", expires_in: 3600 })
    )
    return Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const tokens = yield* TokenExchange.TokenExchange
      const token = yield* tokens.connectToken(user, app)
      assert.strictEqual(DateTime.toEpochMillis(token.expiresAt), NOW + 360_000)
    }).pipe(Effect.provide(live(zapier.layer)))
  })

  it.effect("an OAuth error is TokenExchangeFailed at once, without retries", () =>
    Effect.gen(function* () {
      const refusing = ZapierHttp.layer(options(keys)).pipe(
        Layer.provide(
          scriptedClient(() => json({ error: "invalid_grant", error_description: "JWT aud mismatch" }, 400)).layer
        )
      )
      const exit = yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
        Effect.provide(refusing),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        const error = exit.cause.error
        assert.strictEqual(error._tag, "TokenExchangeFailed")
        if (error._tag === "TokenExchangeFailed") {
          assert.strictEqual(error.error, "invalid_grant")
          assert.strictEqual(error.description, "JWT aud mismatch")
          assert.strictEqual(error.status, 400)
        }
      } else assert.fail("expected a failure")
    })
  )

  it.effect("401 invalid_client is TokenExchangeFailed with one request", () =>
    Effect.gen(function* () {
      const refusing = scriptedClient(() => json({ error: "invalid_client" }, 401))
      const error = yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
        Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(refusing.layer))),
        Effect.flip
      )
      assert.strictEqual(error._tag, "TokenExchangeFailed")
      assert.strictEqual(refusing.requests.length, 1)
    })
  )

  it.effect("a failed exchange is not cached: the next caller tries again", () =>
    Effect.gen(function* () {
      let calls = 0
      const flaky = scriptedClient(() => {
        calls++
        return calls === 1
          ? json({ error: "invalid_grant" }, 400)
          : json({ access_token: "access-token-canary-x", expires_in: 3600 })
      })
      const program = Effect.gen(function* () {
        const tokens = yield* TokenExchange.TokenExchange
        const first = yield* Effect.flip(tokens.accessToken(user))
        assert.strictEqual(first._tag, "TokenExchangeFailed")
        const token = yield* tokens.accessToken(user)
        assert.strictEqual(Redacted.value(token.value), "access-token-canary-x")
      })
      yield* program.pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(flaky.layer))))
      assert.strictEqual(calls, 2)
    })
  )

  it.effect("5xx from the token endpoint is retried, then ZapierUnavailable", () =>
    Effect.gen(function* () {
      const failing = scriptedClient(() => json({ error: "server_error" }, 503))
      const exit = yield* driveClock(
        Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
          Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(failing.layer)))
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        assert.strictEqual(exit.cause.error._tag, "ZapierUnavailable")
      } else assert.fail("expected ZapierUnavailable")
      assert.strictEqual(failing.requests.length, 3)
      // Each attempt signed its own JWT.
      const jtis = new Set(failing.requests.map((r) => Jose.decodeJwt(r.form.get("subject_token")!).jti))
      assert.strictEqual(jtis.size, 3)
    })
  )

  it.effect("a redirect from the token endpoint is never followed", () =>
    Effect.gen(function* () {
      const redirecting = scriptedClient(
        () => new Response(null, { status: 307, headers: { location: "https://evil.example/token" } })
      )
      const error = yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
        Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(redirecting.layer))),
        Effect.flip
      )
      assert.strictEqual(error._tag, "TokenExchangeFailed")
      if (error._tag === "TokenExchangeFailed") assert.strictEqual(error.error, "redirect")
      assert.strictEqual(redirecting.requests.length, 1)
    })
  )

  it.effect("the access token of the JWT exchange must decode: an empty token is InvalidResponse", () =>
    Effect.gen(function* () {
      const bad = scriptedClient(() => json({ access_token: "", expires_in: 3600 }))
      const exit = yield* driveClock(
        Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
          Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(bad.layer)))
        )
      )
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        assert.strictEqual(exit.cause.error._tag, "InvalidResponse")
        // Retried once for a body that does not decode, not more.
        assert.strictEqual(bad.requests.length, 2)
      } else assert.fail("expected InvalidResponse")
    })
  )

  it.effect("a connect exchange refused with invalid_grant replaces the access token once", () => {
    let connects = 0
    let exchanges = 0
    const zapier = scriptedClient((request) => {
      if (request.form.get("requested_token_type")?.endsWith("connect-token")) {
        connects++
        return request.form.get("subject_token") === "access-token-canary-1"
          ? json({ error: "invalid_grant", error_description: "subject token revoked" }, 400)
          : json({ access_token: "connect-token-canary", expires_in: 360 })
      }
      exchanges++
      return json({ access_token: `access-token-canary-${exchanges}`, expires_in: 3600 })
    })
    return Effect.gen(function* () {
      const tokens = yield* TokenExchange.TokenExchange
      const token = yield* tokens.connectToken(user, Domain.AppId.make("slack"))
      assert.strictEqual(Redacted.value(token.value), "connect-token-canary")
      assert.strictEqual(exchanges, 2)
      assert.strictEqual(connects, 2)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("with a fetch-based HttpClient, the token request is sent with redirect: manual", () =>
    Effect.gen(function* () {
      const inits: Array<[string, RequestInit | undefined]> = []
      const fetch: typeof globalThis.fetch = (input, init) => {
        const url = String(input)
        inits.push([url, init])
        return Promise.resolve(
          url.endsWith("/oauth/token")
            ? json({ access_token: "access-token-canary-1", expires_in: 3600 })
            : json({ data: [] })
        )
      }
      const client = FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, fetch)))
      yield* Effect.flatMap(Connections.Connections, (c) => c.list(user, app)).pipe(
        Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(client))),
        // The caller's own fetch options are kept.
        Effect.provideService(FetchHttpClient.RequestInit, { keepalive: true })
      )
      assert.strictEqual(inits.length, 2)
      const [token, api] = inits
      assert.isTrue(token![0].endsWith("/oauth/token"))
      assert.strictEqual(token![1]?.redirect, "manual")
      assert.strictEqual(token![1]?.keepalive, true)
      assert.strictEqual(api![1]?.keepalive, true)
    })
  )
})

describe("expires_in", () => {
  /** Exchanges one access token and one connect token against a token endpoint answering `expires_in: text`. */
  const exchangeWith = (text: string) => {
    const zapier = scriptedClient(
      (request) =>
        new Response(
          `{"access_token":"${request.form.get("requested_token_type")?.endsWith("connect-token") ? "connect" : "access"}-token-canary","expires_in":${text}}`,
          { status: 200, headers: { "content-type": "application/json" } }
        )
    )
    const program = Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const tokens = yield* TokenExchange.TokenExchange
      const access = yield* driveClock(tokens.accessToken(user))
      const again = yield* driveClock(tokens.accessToken(user))
      return { access, again, requests: zapier.requests.length }
    }).pipe(Effect.provide(live(zapier.layer)))
    return Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))
  }

  // The whole integer range: 32-bit, every safe integer, and far beyond (as JSON writes them), plus strings.
  const anyInteger = fc.oneof(
    fc.integer().map(String),
    fc.maxSafeInteger().map(String),
    fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
    fc.constantFrom("0", "-0", "-1", "1", "-9007199254740991", "9007199254740991"),
    fc.integer().map((n) => JSON.stringify(String(n)))
  )

  it.effect("zero or negative is refused as InvalidResponse and never cached; positive is cached at most a day", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(anyInteger, async (text) => {
          const { access, again, requests } = await exchangeWith(text)
          const seconds = Number(JSON.parse(text))
          if (seconds <= 0) {
            const error = Exit.isFailure(access) ? Cause.failureOption(access.cause) : Option.none()
            assert.isTrue(Option.isSome(error), `expires_in ${text}: expected a failure`)
            const tag = Option.getOrUndefined(error)?._tag
            assert.strictEqual(tag, "InvalidResponse", `expires_in ${text}`)
            // Nothing was cached: the next caller exchanges again (and is refused again).
            assert.isTrue(Exit.isFailure(again))
            assert.isAbove(requests, 1)
            const message = JSON.stringify(Option.getOrUndefined(error)) + String(Option.getOrUndefined(error))
            assert.include(message, "expires_in")
            assert.notInclude(message, "access-token-canary")
          } else {
            assert.isTrue(Exit.isSuccess(access), `expires_in ${text}`)
            assert.isTrue(Exit.isSuccess(again))
            assert.strictEqual(requests, 1, "cached")
            if (Exit.isSuccess(access)) {
              const lifetime = DateTime.toEpochMillis(access.value.expiresAt) - NOW
              assert.strictEqual(lifetime, Math.min(seconds * 1000, 24 * 3_600_000))
            }
          }
        }),
        { numRuns: 100 }
      )
    )
  )
})
