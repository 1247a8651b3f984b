/**
 * The FakeZapier model served over real HTTP on 127.0.0.1 (an ephemeral port), speaking Zapier's White Label wire
 * protocol as Zapier's API reference describes it: the token endpoint, `/v2` apps,
 * authentications, actions (with their input fields, choices and output fields) and action runs, and Connect UI
 * pages. Its JSON is written from Zapier's API reference, not from any client's schemas, documented quirks included:
 * `/v2/apps` names its previous-page link `previous` (as Zapier's example does) where the other lists say
 * `prev`, and the choices endpoint, declared as an array of envelopes, answers with one envelope.
 *
 * One port serves everything: the API base URL, the token URL (`{url}/oauth/token`) and the Connect UI base URL
 * (links are `{url}/to/{app}?token=…`).
 *
 * Time is the model's: the `Clock` in scope when the layer is built. Under `it.live` (or a real program) that is the
 * live clock; inside `it.effect` it is the `TestClock`, so sign JWTs with `iat` from `Clock.currentTimeMillis` there.
 *
 * @example
 * ```ts
 * import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const server = yield* FakeZapierServer.FakeZapierServer
 *   const zapier = yield* FakeZapier.FakeZapier
 *   console.log(server.tokenUrl, server.apiUrl, server.connectUrl)
 * })
 * Effect.flatMap(PartnerKey.generate(), (key) =>
 *   program.pipe(Effect.provide(FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })))
 * )
 * ```
 * @since 0.1.0
 */
import * as Http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as FakeZapier from "./FakeZapier.js"
import * as Areas from "./internal/areas.js"
import { ApiFailure } from "./internal/model/failures.js"
import * as Server from "./internal/server/kit.js"
import type { PartnerKey } from "./PartnerKey.js"

export {
  /**
   * The token-type URNs and grant type the fake accepts unless told otherwise.
   * @since 0.1.0
   */
  defaultTokenTypes,
  /**
   * Options of the server.
   * @since 0.1.0
   * @category options
   */
  type Options,
  /**
   * The token-type URNs and grant type the token endpoint accepts (Zapier has not published them).
   * @since 0.1.0
   */
  type TokenTypes
} from "./internal/server/kit.js"

/**
 * Where the running server is.
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** `http://127.0.0.1:{port}` */
  readonly url: string
  /** The API base URL (`/v2/…` lives under it): the same as `url`. */
  readonly apiUrl: string
  /** `{url}/oauth/token` */
  readonly tokenUrl: string
  /** The Connect UI base URL (`{connectUrl}/to/{app}`): the same as `url`. */
  readonly connectUrl: string
  /** The key set of the run callback signatures: `{url}/.well-known/jwks.json`. */
  readonly jwksUrl: string
  readonly port: number
}

/**
 * The tag of the running server.
 * @since 0.1.0
 * @category tags
 */
export class FakeZapierServer extends Context.Tag("@effect-zapier/testing/FakeZapierServer")<
  FakeZapierServer,
  Service
>() {}

// ---------------------------------------------------------------------------------------------------------------
// Responses (written from Zapier's API reference)

const make = (options: Server.Options) =>
  Effect.gen(function* () {
    const keepAlive = Duration.toMillis(Duration.decode(options.keepAliveTimeout ?? Duration.seconds(5)))
    const server = yield* NodeHttpServer.make(
      () => {
        const s = Http.createServer()
        s.keepAliveTimeout = keepAlive
        return s
      },
      { host: "127.0.0.1", port: options.port ?? 0 }
    )
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("FakeZapierServer: expected a TCP address")
    const url = `http://127.0.0.1:${address.port}`
    const seed: FakeZapier.Seed = {
      ...options.seed,
      ...(options.accessTokenTtl !== undefined ? { accessTokenTtl: options.accessTokenTtl } : {}),
      ...(options.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: options.rateLimitPerMinute } : {}),
      ...(options.rateLimitWindow !== undefined ? { rateLimitWindow: options.rateLimitWindow } : {})
    }
    const model = yield* Areas.makeModel(seed, { connectUrl: url })
    const kit = Server.make(model.kernel, url, options)
    const notFound = kit.handle("unknown")(
      Effect.flatMap(model.kernel.now, (now) =>
        Effect.succeed(Server.respond(Server.apiError(ApiFailure.notFound("route"), now)))
      )
    )
    const router = HttpRouter.fromIterable(yield* Areas.routes(kit, model)).pipe(HttpRouter.all("*", notFound))
    // find-my-way ignores a trailing slash: `/v2/action-runs/` also matches `/v2/action-runs`.
    yield* server.serve(yield* HttpRouter.toHttpApp(router))
    yield* Areas.background(model)

    const service: Service = {
      url,
      apiUrl: url,
      tokenUrl: `${url}/oauth/token`,
      connectUrl: url,
      jwksUrl: `${url}/.well-known/jwks.json`,
      port: address.port
    }
    return Context.make(FakeZapierServer, service).pipe(Context.add(FakeZapier.FakeZapier, model.control))
  })

/**
 * Starts the server (scoped: it stops when the scope closes) with a fresh model, and provides its address and the
 * model's control tag. A seed (with the options' rate limits) the model cannot use fails with
 * `FakeZapier.InvalidSeed`.
 *
 * @example
 * ```ts
 * import { FakeZapier, FakeZapierServer } from "@effect-zapier/testing"
 *
 * const seed = FakeZapier.sampleSeed
 * const TestServer = FakeZapierServer.layer({ seed, pendingStatus: "queued-then-running", runBody: "data" })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Server.Options = {}
): Layer.Layer<FakeZapierServer | FakeZapier.FakeZapier, ServeError | FakeZapier.InvalidSeed> =>
  Layer.scopedContext(make(options))

/**
 * What a live client needs to reach this server as the sample partner ({@link FakeZapier.sample}) signing with
 * `key`: plain values shaped like `ZapierHttp.Options` (this package does not depend on the http package), with
 * `allowInsecureHttp` since the server is plain HTTP on loopback.
 *
 * @example
 * ```ts
 * import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const key = yield* PartnerKey.generate()
 *   const Server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
 *   const options = Effect.map(FakeZapierServer.FakeZapierServer, (server) => FakeZapierServer.clientOptions(server, key))
 *   // With @effect-zapier/http: Layer.unwrapEffect(Effect.map(options, ZapierHttp.layer)).pipe(Layer.provideMerge(Server))
 *   return yield* options.pipe(Effect.provide(Server))
 * })
 * ```
 * @since 0.1.0
 * @category clients
 */
export const clientOptions = (server: Service, key: PartnerKey) => ({
  clientId: FakeZapier.sample.clientId,
  clientSecret: Redacted.make(FakeZapier.sample.clientSecret),
  signingKey: key.privateKeyPem,
  keyId: key.kid,
  algorithm: key.alg,
  issuer: FakeZapier.sample.issuer,
  apiUrl: server.apiUrl,
  tokenUrl: server.tokenUrl,
  connectUrl: server.connectUrl,
  allowInsecureHttp: true
})

/**
 * What a live client needs to receive this server's run callbacks at `callbackUrl` (a partner server in the same
 * test, e.g. `http://127.0.0.1:{port}/zapier/runs`): plain values shaped like `ZapierHttp.Options`, to spread
 * after {@link clientOptions}. The server's seed must allow loopback callbacks (`callbacks: { allowLoopback: true }`).
 *
 * @example
 * ```ts
 * import { FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
 * import { Effect } from "effect"
 *
 * const partnerUrl = "http://127.0.0.1:3000" // the partner server of the test
 * const options = Effect.gen(function* () {
 *   const key = yield* PartnerKey.generate()
 *   const server = yield* FakeZapierServer.FakeZapierServer
 *   return {
 *     ...FakeZapierServer.clientOptions(server, key),
 *     ...FakeZapierServer.callbackOptions(server, `${partnerUrl}/zapier/runs`)
 *   }
 * })
 * ```
 * @since 0.1.0
 * @category clients
 */
export const callbackOptions = (server: Service, callbackUrl: string) => ({
  runCallbackUrl: callbackUrl,
  runCallbackJwksUrl: server.jwksUrl
})

/**
 * The same settings as {@link clientOptions}, as a `ConfigProvider` of the `ZAPIER_*` variables that
 * `ZapierHttp.layerFromEnv` reads (`ZAPIER_CLIENT_ID`, `ZAPIER_CLIENT_SECRET`, `ZAPIER_SIGNING_KEY`,
 * `ZAPIER_KEY_ID`, `ZAPIER_JWT_ISSUER`, `ZAPIER_JWT_ALGORITHM`, `ZAPIER_API_URL`, `ZAPIER_TOKEN_URL`,
 * `ZAPIER_CONNECT_URL`, `ZAPIER_ALLOW_INSECURE_HTTP=true`): a program wired with `layerFromEnv` runs against the fake
 * unchanged. `extra` adds or overrides variables (e.g. `{ ZAPIER_MAX_ATTEMPTS: "1" }`). For tests: the provider
 * holds the test key's private half as a plain string, as an environment would.
 *
 * @example
 * ```ts
 * import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
 * import { Effect, Layer } from "effect"
 *
 * // ZapierHttp.layerFromEnv, pointed at the fake: provide the returned layer to it.
 * const fakeEnv = (key: PartnerKey.PartnerKey) =>
 *   Layer.unwrapEffect(
 *     Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
 *       Layer.setConfigProvider(FakeZapierServer.configProvider(server, key))
 *     )
 *   )
 * ```
 * @since 0.1.0
 * @category clients
 */
export const configProvider = (
  server: Service,
  key: PartnerKey,
  extra: Readonly<Record<string, string>> = {}
): ConfigProvider.ConfigProvider => {
  const options = clientOptions(server, key)
  return ConfigProvider.fromMap(
    new Map(
      Object.entries({
        ZAPIER_CLIENT_ID: options.clientId,
        ZAPIER_CLIENT_SECRET: Redacted.value(options.clientSecret),
        ZAPIER_SIGNING_KEY: Redacted.value(options.signingKey),
        ZAPIER_KEY_ID: options.keyId,
        ZAPIER_JWT_ISSUER: options.issuer,
        ZAPIER_JWT_ALGORITHM: options.algorithm,
        ZAPIER_API_URL: options.apiUrl,
        ZAPIER_TOKEN_URL: options.tokenUrl,
        ZAPIER_CONNECT_URL: options.connectUrl,
        ZAPIER_ALLOW_INSECURE_HTTP: "true",
        ...extra
      })
    )
  )
}
