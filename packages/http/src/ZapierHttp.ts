/**
 * The live Zapier White Label layers: `TokenExchange`, `Connections`, `ActionCatalog` and `ActionRuns` over
 * `@effect/platform`'s `HttpClient` (which the app provides: `NodeHttpClient.layerUndici` is the fastest) and jose.
 *
 * Options are validated when the layer is built (a `ConfigError` says what is wrong): URLs must be `https:`, the
 * partner JWT may live at most 5 minutes, and the signing key is imported there, once.
 *
 * @example
 * ```ts
 * import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
 * import { ZapierHttp } from "@effect-zapier/http"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer } from "effect"
 *
 * const ZapierLive = EmbeddedActions.layer.pipe(
 *   Layer.provide([ZapierHttp.layerFromEnv, ConnectionStore.layerMemory]),
 *   Layer.provide(NodeHttpClient.layerUndici)
 * )
 * ```
 * @since 0.1.0
 */

import * as HttpClient from "@effect/platform/HttpClient"
import * as ActionCatalog from "@effect-zapier/core/ActionCatalog"
import * as ActionRuns from "@effect-zapier/core/ActionRuns"
import * as Apps from "@effect-zapier/core/Apps"
import * as Connections from "@effect-zapier/core/Connections"
import * as RunCallbacks from "@effect-zapier/core/RunCallbacks"
import * as RunEvents from "@effect-zapier/core/RunEvents"
import * as TokenExchange from "@effect-zapier/core/TokenExchange"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as HttpActionCatalog from "./HttpActionCatalog.js"
import * as HttpActionRuns from "./HttpActionRuns.js"
import * as HttpApps from "./HttpApps.js"
import * as HttpConnections from "./HttpConnections.js"
import * as HttpTokenExchange from "./HttpTokenExchange.js"
import * as Api from "./internal/api.js"
import { makeBudget } from "./internal/retry.js"
import * as Settings from "./internal/settings.js"
import * as RateLimiter from "./RateLimiter.js"
import * as RunCallback from "./RunCallback.js"

/**
 * The JWT signing algorithms Zapier accepts.
 * @since 0.1.0
 */
export type Algorithm = "ES256" | "ES384" | "ES512" | "RS256" | "RS384" | "RS512"

/**
 * The create-run body shape: `flat` is the White Label guides' `{action, authentication, input}`; `data` is the
 * OpenAPI's `{data: {action, authentication, inputs}}`.
 * @since 0.1.0
 */
export type RunBodyShape = "flat" | "data"

/**
 * The client-side rate limit of the API requests (see {@link Options.rateLimit}); every field has a default.
 * @since 0.1.0
 * @category options
 */
export interface RateLimitOptions {
  /** Requests per window; default 60 (Zapier's published limit per IP). */
  readonly limit?: number | undefined
  /** Zapier's sliding window; default 1 minute (counted over 61 s: the margin is added). */
  readonly window?: Duration.DurationInput | undefined
  /**
   * Added to the window when counting, for the time between taking a slot and Zapier counting the request;
   * default `max(1 s, 1 % of window)` (`RateLimiter.defaultMargin`).
   */
  readonly margin?: Duration.DurationInput | undefined
  /** The longest a request waits for a slot before failing with `RateLimited`; default 2 minutes. */
  readonly maxWait?: Duration.DurationInput | undefined
}

/**
 * Everything the live layers need. Only the partner credentials are required; every other option has the
 * default shown (environment variable in brackets, for `layerFromEnv`).
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** The OAuth client id Zapier issued to the partner [ZAPIER_CLIENT_ID]. */
  readonly clientId: string
  /** The OAuth client secret [ZAPIER_CLIENT_SECRET]. */
  readonly clientSecret: Redacted.Redacted<string>
  /** The partner's private signing key: a PKCS#8 PEM or a private JWK as JSON [ZAPIER_SIGNING_KEY]. */
  readonly signingKey: Redacted.Redacted<string>
  /** The `kid` of the key in the partner's registered JWKS [ZAPIER_KEY_ID]. */
  readonly keyId: string
  /** The issuer (`iss`) registered with Zapier [ZAPIER_JWT_ISSUER]. */
  readonly issuer: string
  /** Default `ES256` [ZAPIER_JWT_ALGORITHM]. */
  readonly algorithm?: Algorithm | undefined
  /** Default `connect.zapier.com` [ZAPIER_JWT_AUDIENCE]. */
  readonly audience?: string | undefined
  /** The claim carrying the end user's id; default `sub` [ZAPIER_USER_CLAIM]. */
  readonly userClaim?: string | undefined
  /** The claim carrying the tenant's id; default `org_id` [ZAPIER_TENANT_CLAIM]. */
  readonly tenantClaim?: string | undefined
  /** Lifetime of the partner JWT; default and maximum 5 minutes [ZAPIER_JWT_LIFETIME]. */
  readonly jwtLifetime?: Duration.DurationInput | undefined
  /** Default `https://api.zapier.com` [ZAPIER_API_URL]. */
  readonly apiUrl?: string | undefined
  /** Default `https://zapier.com/oauth/token` [ZAPIER_TOKEN_URL]. */
  readonly tokenUrl?: string | undefined
  /** Default `https://connect.zapier.com` [ZAPIER_CONNECT_URL]. */
  readonly connectUrl?: string | undefined
  /**
   * Scope of the access token (space separated); default
   * `external action:run authentication connection:read zap zap:write` [ZAPIER_SCOPE].
   */
  readonly scope?: string | undefined
  /** Scope of a connect token; default `connection:write` [ZAPIER_CONNECT_SCOPE]. */
  readonly connectScope?: string | undefined
  /** Default `urn:ietf:params:oauth:grant-type:token-exchange` [ZAPIER_GRANT_TYPE]. */
  readonly grantType?: string | undefined
  /** `subject_token_type` of the partner JWT; default `urn:ietf:params:oauth:token-type:external-jwt` [ZAPIER_JWT_TOKEN_TYPE]. */
  readonly jwtTokenType?: string | undefined
  /** The access token's type URN; default `urn:ietf:params:oauth:token-type:access-token` [ZAPIER_ACCESS_TOKEN_TYPE]. */
  readonly accessTokenType?: string | undefined
  /** The connect token's type URN; default `urn:ietf:params:oauth:token-type:connect-token` [ZAPIER_CONNECT_TOKEN_TYPE]. */
  readonly connectTokenType?: string | undefined
  /** Timeout of one attempt (request and whole body); default 30 seconds [ZAPIER_REQUEST_TIMEOUT]. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** The first create-run body shape tried; default `flat` [ZAPIER_RUN_BODY_SHAPE]. */
  readonly runBodyShape?: RunBodyShape | undefined
  /** Attempts per request, the first included; default 3 [ZAPIER_MAX_ATTEMPTS]. */
  readonly maxAttempts?: number | undefined
  /** Base of the exponential backoff; default 200 ms [ZAPIER_RETRY_BASE_DELAY]. */
  readonly retryBaseDelay?: Duration.DurationInput | undefined
  /** Cap of one backoff delay; default 20 s [ZAPIER_RETRY_MAX_DELAY]. */
  readonly retryMaxDelay?: Duration.DurationInput | undefined
  /** The longest server hint (`Retry-After`) waited for; above it fails fast; default 60 s [ZAPIER_MAX_RETRY_AFTER]. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** The wait after a 429 without a hint; default 60 s (Zapier's documented cooldown) [ZAPIER_RATE_LIMIT_COOLDOWN]. */
  readonly rateLimitCooldown?: Duration.DurationInput | undefined
  /** Capacity of the client-wide retry budget (5 per retry, 10 after a timeout); default 500 [ZAPIER_RETRY_BUDGET]. */
  readonly retryBudget?: number | undefined
  /** Response bodies larger than this are not read; default 1 MiB [ZAPIER_MAX_RESPONSE_BYTES]. */
  readonly maxResponseBytes?: number | undefined
  /** `limit` of list requests; default 100 [ZAPIER_PAGE_SIZE]. */
  readonly pageSize?: number | undefined
  /**
   * The client-side rate limit of API requests (`/v2`; the token endpoint is not metered): each attempt takes a
   * slot of a strict sliding window first, waiters are served first come, first served (many pending polls share
   * the budget fairly), and a 429 pauses the whole budget for its `Retry-After` (`rateLimitCooldown` when absent,
   * at most `maxRetryAfter`).
   *
   * On by default at Zapier's published 60 requests/min per IP, counted over 61 s (the limiter's safety margin):
   * staying under the limit costs at most a request's wait, while a 429 costs everyone a 60 s cooldown. `false`
   * turns it off (for a limit enforced elsewhere). When the layer's context holds a {@link RateLimiter.RateLimiter}
   * (e.g. `RateLimiter.layerRedis`, to share one partner budget across processes), that one is used instead of a
   * new in-memory one, and these numbers are ignored (every limiter applies its margin by default)
   * [ZAPIER_RATE_LIMIT (a number, or `off`), ZAPIER_RATE_LIMIT_WINDOW, ZAPIER_RATE_LIMIT_MARGIN,
   * ZAPIER_RATE_LIMIT_MAX_WAIT].
   *
   * @example
   * ```ts
   * // One budget for the fleet: Zapier's 150 requests/min per partner (counted over 61 s), shared through Redis.
   * ZapierHttp.layer(options).pipe(
   *   Layer.provide(RateLimiter.layerRedis({ redis: { url }, limit: 150, window: "1 minute" })),
   *   Layer.provide(NodeHttpClient.layerUndici)
   * )
   * ```
   */
  readonly rateLimit?: RateLimitOptions | false | undefined
  /**
   * The partner's public URL for run callbacks [ZAPIER_RUN_CALLBACK_URL]. When set, every run is created with
   * `callback_url` = this URL plus a per-run routing token (`zapier_run_token`), and `EmbeddedActions.run`
   * completes from the callback (mount `RunCallback.handler` at this URL's path), polling only as a safety net.
   * Zapier's rules apply and are checked here (a `ConfigError` naming `runCallbackUrl`): HTTPS, a public host, at
   * most 2048 characters with the token. Unset: runs are polled, as without callbacks.
   *
   * The run-event bus is the `RunEvents` in the layer's context (`RunEventsRedis.layer` for a fleet, so the
   * replica that receives a callback completes the await on another), else an in-memory one; either way the
   * layer provides it, and the `RunCallback.Receiver` the handler needs.
   */
  readonly runCallbackUrl?: string | undefined
  /** The JWKS of Zapier's callback signatures; default `https://zapier.com/.well-known/jwks.json` [ZAPIER_RUN_CALLBACK_JWKS_URL]. */
  readonly runCallbackJwksUrl?: string | undefined
  /** Tolerance on a callback signature's `iat`/`exp`; default 30 s, at most 5 minutes [ZAPIER_RUN_CALLBACK_CLOCK_SKEW]. */
  readonly runCallbackClockSkew?: Duration.DurationInput | undefined
  /** The largest callback body read; default 1 MiB [ZAPIER_RUN_CALLBACK_MAX_BYTES]. */
  readonly runCallbackMaxBytes?: number | undefined
  /**
   * Test only: accept `http:` URLs for loopback hosts (127.0.0.1, localhost, ::1), e.g. a fake Zapier server.
   * Never needed against Zapier. Default false [ZAPIER_ALLOW_INSECURE_HTTP].
   */
  readonly allowInsecureHttp?: boolean | undefined
}

/**
 * The defaults of the optional settings.
 * @since 0.1.0
 */
export const defaults = Settings.defaults

/** The services the live layers provide. @since 0.1.0 */
export type Services =
  | TokenExchange.TokenExchange
  | Connections.Connections
  | ActionCatalog.ActionCatalog
  | ActionRuns.ActionRuns
  | Apps.Apps

/**
 * The run callback services the live layers provide besides {@link Services}: the run-event bus and the receiver
 * `RunCallback.handler` needs. With `runCallbackUrl` set, the context also holds core's `RunCallbacks`, which
 * `EmbeddedActions` looks up when it is built (absent, it polls).
 * @since 0.1.0
 */
export type CallbackServices = RunEvents.RunEvents | RunCallback.Receiver

/**
 * Builds the four services from validated options; they share one HttpClient, one token cache, one retry
 * budget and one rate limiter (the `RateLimiter` found in the context, else an in-memory one from
 * `options.rateLimit`). The token exchanges run in the scope, so close it to stop them.
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  Context.Context<Services | CallbackServices>,
  ConfigError.ConfigError,
  HttpClient.HttpClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const settings = yield* Settings.resolve(options)
    const client = yield* HttpClient.HttpClient
    const limiter = yield* makeLimiter(settings.rateLimit, settings.rateLimitCooldown)
    const env = { settings, client, budget: makeBudget(settings.retryBudget), limiter }
    const tokens = yield* HttpTokenExchange.make(env)
    const api = Api.make(env, tokens)
    const events = Option.getOrElse(yield* Effect.serviceOption(RunEvents.RunEvents), () => undefined)
    const bus = events ?? (yield* RunEvents.makeMemory())
    const receiver = yield* RunCallback.makeReceiver(
      {
        jwksUrl: settings.runCallbackJwksUrl,
        clockSkew: settings.runCallbackClockSkew,
        maxBodyBytes: settings.runCallbackMaxBytes,
        tokenParameter: RunCallbacks.defaultTokenParameter,
        requestTimeout: settings.requestTimeout,
        refetchInterval: Settings.defaults.runCallbackKeyRefetch
      },
      client,
      bus
    )
    const context = Context.make(TokenExchange.TokenExchange, tokens).pipe(
      Context.add(Connections.Connections, HttpConnections.make(api, tokens)),
      Context.add(ActionCatalog.ActionCatalog, HttpActionCatalog.make(api)),
      Context.add(ActionRuns.ActionRuns, HttpActionRuns.make(api)),
      Context.add(Apps.Apps, HttpApps.make(api)),
      Context.add(RunEvents.RunEvents, bus),
      Context.add(RunCallback.Receiver, receiver)
    )
    // Present only when configured: EmbeddedActions finds it with serviceOption, and polls without it.
    return settings.runCallbackUrl === undefined
      ? context
      : (Context.add(
          context,
          RunCallbacks.RunCallbacks,
          RunCallbacks.make({ url: settings.runCallbackUrl }, bus)
        ) as Context.Context<Services | CallbackServices>)
  })

const makeLimiter = (
  rateLimit: Settings.Settings["rateLimit"],
  cooldown: Duration.Duration
): Effect.Effect<RateLimiter.Service | undefined> =>
  rateLimit === false
    ? Effect.succeed(undefined)
    : Effect.flatMap(Effect.serviceOption(RateLimiter.RateLimiter), (provided) =>
        Option.isSome(provided)
          ? Effect.succeed(provided.value)
          : RateLimiter.makeMemory({ ...rateLimit, defaultPause: cooldown })
      )

/**
 * The live layers from options.
 *
 * @example
 * ```ts
 * const ZapierLive = ZapierHttp.layer({
 *   clientId: "partner-client",
 *   clientSecret: Redacted.make(process.env.SECRET!),
 *   signingKey: Redacted.make(pem),
 *   keyId: "key-2026-03",
 *   issuer: "https://partner.example"
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<Services | CallbackServices, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scopedContext(make(options))

/**
 * The live layers from `Config` values (each option may be a plain value or a `Config`).
 *
 * @example
 * ```ts
 * const ZapierLive = ZapierHttp.layerConfig({
 *   clientId: Config.string("PARTNER_ZAPIER_CLIENT"),
 *   clientSecret: Config.redacted("PARTNER_ZAPIER_SECRET"),
 *   signingKey: Config.redacted("PARTNER_JWT_KEY"),
 *   keyId: Config.succeed("key-2026-03"),
 *   issuer: Config.succeed("https://partner.example")
 * })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<Services | CallbackServices, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scopedContext(Effect.flatMap(Config.unwrap(options), make))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const rateLimitConfig: Config.Config<RateLimitOptions | false | undefined> = Config.map(
  Config.all({
    limit: optional(
      Config.string("ZAPIER_RATE_LIMIT").pipe(
        Config.mapOrFail((raw): Either.Either<number | false, ConfigError.ConfigError> => {
          const value = raw.trim().toLowerCase()
          if (value === "off" || value === "false") return Either.right(false as const)
          const limit = Number(value)
          return Number.isInteger(limit) && limit > 0
            ? Either.right(limit)
            : Either.left(
                ConfigError.InvalidData([], "ZAPIER_RATE_LIMIT must be a positive integer (per window) or off")
              )
        })
      )
    ),
    window: optional(Config.duration("ZAPIER_RATE_LIMIT_WINDOW")),
    margin: optional(Config.duration("ZAPIER_RATE_LIMIT_MARGIN")),
    maxWait: optional(Config.duration("ZAPIER_RATE_LIMIT_MAX_WAIT"))
  }),
  ({ limit, window, margin, maxWait }): RateLimitOptions | false | undefined =>
    limit === false
      ? false
      : limit === undefined && window === undefined && margin === undefined && maxWait === undefined
        ? undefined
        : margin === undefined
          ? { limit, window, maxWait }
          : { limit, window, margin, maxWait }
)

/**
 * The `Config` of every option, read from `ZAPIER_*` variables (see {@link Options} for the names).
 * @since 0.1.0
 */
export const config: Config.Config<Options> = Config.all({
  clientId: Config.string("ZAPIER_CLIENT_ID"),
  clientSecret: Config.redacted("ZAPIER_CLIENT_SECRET"),
  signingKey: Config.redacted("ZAPIER_SIGNING_KEY"),
  keyId: Config.string("ZAPIER_KEY_ID"),
  issuer: Config.string("ZAPIER_JWT_ISSUER"),
  algorithm: optional(Config.literal("ES256", "ES384", "ES512", "RS256", "RS384", "RS512")("ZAPIER_JWT_ALGORITHM")),
  audience: optional(Config.string("ZAPIER_JWT_AUDIENCE")),
  userClaim: optional(Config.string("ZAPIER_USER_CLAIM")),
  tenantClaim: optional(Config.string("ZAPIER_TENANT_CLAIM")),
  jwtLifetime: optional(Config.duration("ZAPIER_JWT_LIFETIME")),
  apiUrl: optional(Config.string("ZAPIER_API_URL")),
  tokenUrl: optional(Config.string("ZAPIER_TOKEN_URL")),
  connectUrl: optional(Config.string("ZAPIER_CONNECT_URL")),
  scope: optional(Config.string("ZAPIER_SCOPE")),
  connectScope: optional(Config.string("ZAPIER_CONNECT_SCOPE")),
  grantType: optional(Config.string("ZAPIER_GRANT_TYPE")),
  jwtTokenType: optional(Config.string("ZAPIER_JWT_TOKEN_TYPE")),
  accessTokenType: optional(Config.string("ZAPIER_ACCESS_TOKEN_TYPE")),
  connectTokenType: optional(Config.string("ZAPIER_CONNECT_TOKEN_TYPE")),
  requestTimeout: optional(Config.duration("ZAPIER_REQUEST_TIMEOUT")),
  runBodyShape: optional(Config.literal("flat", "data")("ZAPIER_RUN_BODY_SHAPE")),
  maxAttempts: optional(Config.integer("ZAPIER_MAX_ATTEMPTS")),
  retryBaseDelay: optional(Config.duration("ZAPIER_RETRY_BASE_DELAY")),
  retryMaxDelay: optional(Config.duration("ZAPIER_RETRY_MAX_DELAY")),
  maxRetryAfter: optional(Config.duration("ZAPIER_MAX_RETRY_AFTER")),
  rateLimitCooldown: optional(Config.duration("ZAPIER_RATE_LIMIT_COOLDOWN")),
  retryBudget: optional(Config.integer("ZAPIER_RETRY_BUDGET")),
  maxResponseBytes: optional(Config.integer("ZAPIER_MAX_RESPONSE_BYTES")),
  pageSize: optional(Config.integer("ZAPIER_PAGE_SIZE")),
  allowInsecureHttp: optional(Config.boolean("ZAPIER_ALLOW_INSECURE_HTTP")),
  runCallbackUrl: optional(Config.string("ZAPIER_RUN_CALLBACK_URL")),
  runCallbackJwksUrl: optional(Config.string("ZAPIER_RUN_CALLBACK_JWKS_URL")),
  runCallbackClockSkew: optional(Config.duration("ZAPIER_RUN_CALLBACK_CLOCK_SKEW")),
  runCallbackMaxBytes: optional(Config.integer("ZAPIER_RUN_CALLBACK_MAX_BYTES")),
  rateLimit: rateLimitConfig
})

/**
 * The live layers from `ZAPIER_*` environment variables (or whatever `ConfigProvider` is installed).
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<Services | CallbackServices, ConfigError.ConfigError, HttpClient.HttpClient> =
  layerConfig(config)
