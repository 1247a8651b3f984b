import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, Connections, TokenExchange } from "@effect-zapier/core"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"
import { ZapierHttp } from "../src/index.js"
import { CLIENT_SECRET, fakeZapier, generateKeys, json, options, user } from "./kit.js"

const keys = await generateKeys("ES256")
const rsa = await generateKeys("RS256")

const buildError = (opts: ZapierHttp.Options) =>
  Layer.build(ZapierHttp.layer(opts).pipe(Layer.provide(fakeZapier(() => json({}, 404)).layer))).pipe(
    Effect.scoped,
    Effect.flip,
    Effect.map((error) => String(error))
  )

describe("ZapierHttp", () => {
  it.effect("layer provides the four core services and needs only an HttpClient", () => {
    const zapier = fakeZapier(() => json({ data: [] }))
    return Effect.gen(function* () {
      yield* TokenExchange.TokenExchange
      yield* Connections.Connections
      yield* ActionCatalog.ActionCatalog
      yield* ActionRuns.ActionRuns
      // Building the layer sends nothing.
      assert.strictEqual(zapier.requests.length, 0)
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("rejects http: URLs unless allowInsecureHttp is set, and then only for loopback hosts", () =>
    Effect.gen(function* () {
      const plain = yield* buildError(options(keys, { apiUrl: "http://api.zapier.com" }))
      assert.include(plain, "apiUrl must use https:")
      const remote = yield* buildError(
        options(keys, { tokenUrl: "http://zapier.com/oauth/token", allowInsecureHttp: true })
      )
      assert.include(remote, "tokenUrl must use https:")
      const nonsense = yield* buildError(options(keys, { connectUrl: "not a url" }))
      assert.include(nonsense, "connectUrl is not a valid absolute URL")
      const zapier = fakeZapier((request) => json({ data: [], at: request.url.href }))
      yield* Effect.flatMap(Connections.Connections, (c) => c.list(user, "app" as never)).pipe(
        Effect.provide(
          ZapierHttp.layer(
            options(keys, {
              apiUrl: "http://127.0.0.1:8123/",
              tokenUrl: "http://127.0.0.1:8123/oauth/token",
              connectUrl: "http://localhost:8123",
              allowInsecureHttp: true
            })
          ).pipe(Layer.provide(zapier.layer))
        )
      )
      assert.deepStrictEqual(
        zapier.requests.map((r) => `${r.url.origin}${r.path}`),
        ["http://127.0.0.1:8123/oauth/token", "http://127.0.0.1:8123/v2/authentications"]
      )
    })
  )

  it.effect("a JWT lifetime above 5 minutes is refused at build", () =>
    Effect.gen(function* () {
      const message = yield* buildError(options(keys, { jwtLifetime: Duration.minutes(6) }))
      assert.include(message, "jwtLifetime")
      assert.include(message, "at most 5 minutes")
    })
  )

  it.effect("an unusable signing key is a ConfigError saying what is wrong, never quoting the key", () =>
    Effect.gen(function* () {
      const publicPem = yield* Effect.promise(() => Jose.exportSPKI(keys.publicKey))
      const publicJwk = JSON.stringify(yield* Effect.promise(() => Jose.exportJWK(keys.publicKey)))
      const cases: Array<[string, ZapierHttp.Options, string]> = [
        ["garbage", options(keys, { signingKey: Redacted.make("not-a-key") }), "must be a PKCS#8 PEM"],
        ["public PEM", options(keys, { signingKey: Redacted.make(publicPem) }), "is a public key"],
        ["public JWK", options(keys, { signingKey: Redacted.make(publicJwk) }), "is a public JWK"],
        ["bad JSON", options(keys, { signingKey: Redacted.make("{not json") }), "not valid JSON"],
        [
          "PKCS#1",
          options(keys, {
            signingKey: Redacted.make("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----")
          }),
          "PKCS#1"
        ],
        ["RSA key for ES256", options(rsa), "could not be imported for ES256"],
        ["EC key for RS256", options(keys, { algorithm: "RS256" }), "could not be imported for RS256"]
      ]
      for (const [name, opts, expected] of cases) {
        const message = yield* buildError(opts)
        assert.include(message, expected, name)
        assert.include(message, "signingKey", name)
        assert.notInclude(message, keys.pem.slice(40, 80), name)
        assert.notInclude(message, rsa.pem.slice(40, 80), name)
      }
    })
  )

  it.effect("missing or invalid options are ConfigErrors", () =>
    Effect.gen(function* () {
      assert.include(yield* buildError(options(keys, { clientId: "  " })), "clientId is required")
      assert.include(yield* buildError(options(keys, { issuer: "" })), "issuer is required")
      assert.include(yield* buildError(options(keys, { algorithm: "HS256" as never })), "algorithm must be one of")
      assert.include(yield* buildError(options(keys, { userClaim: "iss" })), "userClaim must be a non-empty claim")
      assert.include(yield* buildError(options(keys, { tenantClaim: "sub" })), "must be different claims")
      assert.include(yield* buildError(options(keys, { maxAttempts: 0 })), "maxAttempts must be an integer")
      assert.include(yield* buildError(options(keys, { runBodyShape: "xml" as never })), "runBodyShape")
      assert.include(
        yield* buildError(options(keys, { requestTimeout: 0 })),
        "requestTimeout must be greater than zero"
      )
    })
  )

  it.effect("layerFromEnv reads ZAPIER_* (PEM with \\n escapes accepted) and uses them on the wire", () => {
    const zapier = fakeZapier(() => json({}, 404))
    const env = new Map([
      ["ZAPIER_CLIENT_ID", "env-client"],
      ["ZAPIER_CLIENT_SECRET", CLIENT_SECRET],
      ["ZAPIER_SIGNING_KEY", rsa.pem.replace(/\n/g, "\\n")],
      ["ZAPIER_KEY_ID", "env-kid"],
      ["ZAPIER_JWT_ISSUER", "https://env.example"],
      ["ZAPIER_JWT_ALGORITHM", "RS256"],
      ["ZAPIER_TENANT_CLAIM", "tenant_id"],
      ["ZAPIER_SCOPE", "external action:run"],
      ["ZAPIER_TOKEN_URL", "https://tokens.example/oauth/token"],
      ["ZAPIER_REQUEST_TIMEOUT", "5 seconds"]
    ])
    const layer = ZapierHttp.layerFromEnv.pipe(
      Layer.provide(zapier.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))
    )
    return Effect.gen(function* () {
      yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user))
      const request = zapier.requests[0]!
      assert.strictEqual(request.url.host, "tokens.example")
      assert.strictEqual(request.form.get("client_id"), "env-client")
      assert.strictEqual(request.form.get("scope"), "external action:run")
      const jwt = request.form.get("subject_token")!
      assert.strictEqual(Jose.decodeProtectedHeader(jwt).kid, "env-kid")
      assert.strictEqual(Jose.decodeProtectedHeader(jwt).alg, "RS256")
      const claims = Jose.decodeJwt(jwt)
      assert.strictEqual(claims.iss, "https://env.example")
      assert.strictEqual(claims.tenant_id, "tenant-1")
    }).pipe(Effect.provide(layer))
  })

  it.effect("layerFromEnv without ZAPIER_CLIENT_SECRET fails with a ConfigError naming it", () =>
    Effect.gen(function* () {
      const env = new Map([
        ["ZAPIER_CLIENT_ID", "env-client"],
        ["ZAPIER_SIGNING_KEY", keys.pem],
        ["ZAPIER_KEY_ID", "env-kid"],
        ["ZAPIER_JWT_ISSUER", "https://env.example"]
      ])
      const error = yield* Layer.build(
        ZapierHttp.layerFromEnv.pipe(
          Layer.provide(fakeZapier(() => json({}, 404)).layer),
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))
        )
      ).pipe(Effect.scoped, Effect.flip)
      assert.include(String(error), "ZAPIER_CLIENT_SECRET")
    })
  )

  it.effect("layerConfig takes a Config per option (here from the partner's own variable names)", () => {
    const zapier = fakeZapier(() => json({}, 404))
    const layer = ZapierHttp.layerConfig({
      clientId: Config.succeed("partner-client"),
      clientSecret: Config.redacted("PARTNER_SECRET"),
      signingKey: Config.succeed(Redacted.make(keys.pem)),
      keyId: Config.succeed("kid-1"),
      issuer: Config.string("PARTNER_ISSUER"),
      requestTimeout: Config.succeed(Duration.seconds(5))
    }).pipe(
      Layer.provide(zapier.layer),
      Layer.provide(
        Layer.setConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["PARTNER_SECRET", CLIENT_SECRET],
              ["PARTNER_ISSUER", "https://issuer.example"]
            ])
          )
        )
      )
    )
    return Effect.gen(function* () {
      yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user))
      const form = zapier.requests[0]!.form
      assert.strictEqual(form.get("client_secret"), CLIENT_SECRET)
      assert.strictEqual(Jose.decodeJwt(form.get("subject_token")!).iss, "https://issuer.example")
    }).pipe(Effect.provide(layer))
  })
})
