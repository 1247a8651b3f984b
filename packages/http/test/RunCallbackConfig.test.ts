/**
 * The run callback options of ZapierHttp: a misconfigured URL is a ConfigError at layer build naming the option;
 * no URL means no RunCallbacks (plain polling), never a failure; the environment variable is read; with a URL the
 * context holds RunCallbacks over the same bus as the receiver.
 */
import { assert, describe, it } from "@effect/vitest"
import { RunCallbacks, RunEvents } from "@effect-zapier/core"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { RunCallback, ZapierHttp } from "../src/index.js"
import { fakeZapier, generateKeys, json, options } from "./kit.js"

const keys = await generateKeys("ES256")

const build = (opts: ZapierHttp.Options) =>
  ZapierHttp.layer(opts).pipe(Layer.provide(fakeZapier(() => json({}, 404)).layer))

const buildError = (opts: ZapierHttp.Options) =>
  Layer.build(build(opts)).pipe(
    Effect.scoped,
    Effect.flip,
    Effect.map((error) => String(error))
  )

describe("ZapierHttp run callback options", () => {
  it.effect("refuses an http:, private, credentialed or too long callback URL, naming the option", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<[string, string]> = [
        ["http://partner.example/zapier/runs", "must use https:"],
        ["https://10.1.2.3/zapier/runs", "public host"],
        ["https://192.168.0.10/cb", "public host"],
        ["https://172.20.0.1/cb", "public host"],
        ["https://127.0.0.1/cb", "public host"],
        ["https://[::1]/cb", "public host"],
        ["https://[fd00::1]/cb", "public host"],
        ["https://169.254.169.254/cb", "public host"],
        ["https://localhost/cb", "public host"],
        ["https://intranet/cb", "public host"],
        ["https://user:pw@partner.example/cb", "credentials"],
        ["https://partner.example/cb#frag", "fragment"],
        [`https://partner.example/${"a".repeat(2000)}`, "2048"],
        ["not a url", "not a valid absolute URL"]
      ]
      for (const [url, problem] of cases) {
        const error = yield* buildError(options(keys, { runCallbackUrl: url }))
        assert.include(error, "runCallbackUrl", url)
        assert.include(error, problem, url)
      }
      // Loopback http only in the test-only insecure mode.
      const loopback = yield* buildError(options(keys, { runCallbackUrl: "http://127.0.0.1:9/cb" }))
      assert.include(loopback, "runCallbackUrl must use https:")
      yield* Layer.build(
        build(options(keys, { runCallbackUrl: "http://127.0.0.1:9/cb", allowInsecureHttp: true }))
      ).pipe(Effect.scoped)
      const jwks = yield* buildError(options(keys, { runCallbackJwksUrl: "http://zapier.com/jwks.json" }))
      assert.include(jwks, "runCallbackJwksUrl")
    })
  )

  it.effect(
    "without a callback URL: no RunCallbacks in the context (runs are polled), the bus and receiver are there",
    () =>
      Effect.gen(function* () {
        const context = yield* Layer.build(build(options(keys)))
        assert.isTrue(
          Option.isNone(yield* Effect.serviceOption(RunCallbacks.RunCallbacks).pipe(Effect.provide(context)))
        )
        yield* RunEvents.RunEvents.pipe(Effect.provide(context))
        yield* RunCallback.Receiver.pipe(Effect.provide(context))
      }).pipe(Effect.scoped)
  )

  it.effect("with a callback URL (also from ZAPIER_RUN_CALLBACK_URL): RunCallbacks over the same bus", () =>
    Effect.gen(function* () {
      const context = yield* Layer.build(
        build(options(keys, { runCallbackUrl: "https://partner.example/zapier/runs" }))
      )
      const callbacks = Option.getOrThrow(
        yield* Effect.serviceOption(RunCallbacks.RunCallbacks).pipe(Effect.provide(context))
      )
      const bus = yield* RunEvents.RunEvents.pipe(Effect.provide(context))
      assert.strictEqual(callbacks.events, bus)
      const target = yield* callbacks.target()
      assert.match(Redacted.value(target.url), /^https:\/\/partner\.example\/zapier\/runs\?zapier_run_token=[\w-]{43}$/)
      assert.notInclude(String(target.url), Redacted.value(target.token))

      const fromEnv = yield* Effect.flatMap(ZapierHttp.config, (c) => Effect.succeed(c.runCallbackUrl)).pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["ZAPIER_CLIENT_ID", "id"],
              ["ZAPIER_CLIENT_SECRET", "secret"],
              ["ZAPIER_SIGNING_KEY", "key"],
              ["ZAPIER_KEY_ID", "kid"],
              ["ZAPIER_JWT_ISSUER", "iss"],
              ["ZAPIER_RUN_CALLBACK_URL", "https://partner.example/cb"]
            ])
          )
        )
      )
      assert.strictEqual(fromEnv, "https://partner.example/cb")
    }).pipe(Effect.scoped)
  )
})
