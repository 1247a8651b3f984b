/**
 * The Zapier side of the app: the library's live layers (`ZapierHttp`) pointed at Zapier (with `ZAPIER_*` set),
 * or at a fake Zapier (`FakeZapierServer`) started in this process, with a partner key generated for it.
 */
import type { HttpClient } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { ZapierHttp } from "@effect-zapier/http"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import { Config, type ConfigError, Effect, Layer, Redacted } from "effect"
import { ConnectOrigin } from "./Handlers.js"

const { sample } = FakeZapier

/** The library's services pointed at a running fake (its URLs, the sample partner and the generated key). */
export const layerForFake = (
  key: PartnerKey.PartnerKey
): Layer.Layer<
  ZapierHttp.Services | ZapierHttp.TriggerServices | ConnectOrigin,
  never,
  HttpClient.HttpClient | FakeZapierServer.FakeZapierServer
> =>
  Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      Layer.merge(
        ZapierHttp.layer({
          clientId: sample.clientId,
          clientSecret: Redacted.make(sample.clientSecret),
          signingKey: key.privateKeyPem,
          keyId: key.kid,
          issuer: sample.issuer,
          apiUrl: server.apiUrl,
          tokenUrl: server.tokenUrl,
          connectUrl: server.connectUrl,
          allowInsecureHttp: true,
          // The fake enforces no per-minute limit: keep the client's limiter, with a roomier budget than Zapier's.
          rateLimit: { limit: 600 }
        }).pipe(Layer.orDie),
        Layer.succeed(ConnectOrigin, new URL(server.connectUrl).origin)
      )
    )
  )

/**
 * A fake Zapier on 127.0.0.1 (the sample catalog: Slack-like, Sheets-like and a Formatter without auth) and the
 * library's services pointed at it. Its control tag (`FakeZapier.FakeZapier`) is provided too, for tests.
 */
export const layerFake = (
  options: Omit<FakeZapierServer.Options, "seed"> = {}
): Layer.Layer<
  | ZapierHttp.Services
  | ZapierHttp.TriggerServices
  | ConnectOrigin
  | FakeZapierServer.FakeZapierServer
  | FakeZapier.FakeZapier,
  ServeError | FakeZapier.InvalidSeed,
  HttpClient.HttpClient
> =>
  Layer.unwrapEffect(
    Effect.map(PartnerKey.generate({ alg: "ES256" }), (key) =>
      layerForFake(key).pipe(
        Layer.provideMerge(
          FakeZapierServer.layer({ ...options, seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
        )
      )
    )
  )

/** Zapier itself, from the `ZAPIER_*` variables of `ZapierHttp.layerFromEnv` (and `ZAPIER_CONNECT_URL`). */
export const layerLive: Layer.Layer<
  ZapierHttp.Services | ZapierHttp.TriggerServices | ConnectOrigin,
  ConfigError.ConfigError,
  HttpClient.HttpClient
> = Layer.merge(
  ZapierHttp.layerFromEnv,
  Layer.effect(
    ConnectOrigin,
    Effect.map(
      Config.string("ZAPIER_CONNECT_URL").pipe(Config.withDefault("https://connect.zapier.com")),
      (url) => new URL(url).origin
    )
  )
)
