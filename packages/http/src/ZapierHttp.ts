/**
 * The live Zapier White Label layers: `TokenExchange`, `Connections`, `ActionCatalog`, `ActionRuns`, `Apps`, and for
 * embedded triggers `TriggerInboxes`, `Triggers` and the connection-webhook subscriptions, over
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
import * as TriggerInboxes from "@effect-zapier/core/TriggerInboxes"
import * as Triggers from "@effect-zapier/core/Triggers"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as ConnectionWebhooks from "./ConnectionWebhooks.js"
import * as HttpActionCatalog from "./internal/actionCatalog.js"
import * as HttpActionRuns from "./internal/actionRuns.js"
import * as Api from "./internal/api.js"
import * as HttpApps from "./internal/apps.js"
import * as HttpConnections from "./internal/connections.js"
import type { Options, RateLimitOptions } from "./internal/options.js"
import { makeBudget } from "./internal/retry.js"
import * as Settings from "./internal/settings.js"
import * as HttpTokenExchange from "./internal/tokenExchange.js"
import * as HttpTriggerInboxes from "./internal/triggerInboxes.js"
import * as RateLimiter from "./RateLimiter.js"
import * as RunCallback from "./RunCallback.js"

export type {
  /**
   * The JWT signing algorithms Zapier accepts: `ES256` | `ES384` | `ES512` | `RS256` | `RS384` | `RS512`.
   * @since 0.1.0
   */
  Algorithm,
  /**
   * Everything the live layers need. Only the partner credentials (`clientId`, `clientSecret`, `signingKey`,
   * `keyId`, `issuer`) are required; every other option has a default.
   * @since 0.1.0
   * @category options
   */
  Options,
  /**
   * The client-side rate limit of the API requests (`limit`, `window`, `margin`, `maxWait`); every field has a
   * default.
   * @since 0.1.0
   * @category options
   */
  RateLimitOptions,
  /**
   * The create-run body shape: `flat` is `{action, authentication, input}`; `data` is
   * `{data: {action, authentication, inputs}}`.
   * @since 0.1.0
   */
  RunBodyShape,
  /**
   * How a run's state is read: `poll` (`GET /v2/action-runs/{id}/`) or `long-poll` (the Actions API's held read).
   * @since 0.1.0
   */
  RunReads
} from "./internal/options.js"

/**
 * The defaults of the optional settings.
 * @since 0.1.0
 */
export const defaults = Settings.defaults

/**
 * The services the live layers provide.
 * @since 0.1.0
 */
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
 * The embedded-triggers services the live layers also provide: the Trigger Inbox API, an app's triggers (its
 * `READ` actions) and the connection-webhook subscriptions.
 * @since 0.1.0
 */
export type TriggerServices = TriggerInboxes.TriggerInboxes | Triggers.Triggers | ConnectionWebhooks.Subscriptions

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
  Context.Context<Services | CallbackServices | TriggerServices>,
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
    const catalog = HttpActionCatalog.make(api)
    const triggers = yield* Effect.provideService(Triggers.make, ActionCatalog.ActionCatalog, catalog)
    const context = Context.make(TokenExchange.TokenExchange, tokens).pipe(
      Context.add(Connections.Connections, HttpConnections.make(api, tokens)),
      Context.add(ActionCatalog.ActionCatalog, catalog),
      Context.add(ActionRuns.ActionRuns, HttpActionRuns.make(api)),
      Context.add(Apps.Apps, HttpApps.make(api)),
      Context.add(RunEvents.RunEvents, bus),
      Context.add(RunCallback.Receiver, receiver),
      Context.add(TriggerInboxes.TriggerInboxes, HttpTriggerInboxes.make(api, tokens)),
      Context.add(Triggers.Triggers, triggers),
      Context.add(ConnectionWebhooks.Subscriptions, ConnectionWebhooks.makeSubscriptions(api))
    )
    // Present only when configured: EmbeddedActions finds it with serviceOption, and polls without it.
    return settings.runCallbackUrl === undefined
      ? context
      : (Context.add(
          context,
          RunCallbacks.RunCallbacks,
          RunCallbacks.make({ url: settings.runCallbackUrl }, bus)
        ) as Context.Context<Services | CallbackServices | TriggerServices>)
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
 * import { ZapierHttp } from "@effect-zapier/http"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer, Redacted } from "effect"
 *
 * const pem = process.env.PARTNER_JWT_KEY ?? "" // the partner's private key (PKCS#8 PEM)
 * const ZapierLive = ZapierHttp.layer({
 *   clientId: "partner-client",
 *   clientSecret: Redacted.make(process.env.SECRET ?? ""),
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
): Layer.Layer<Services | CallbackServices | TriggerServices, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scopedContext(make(options))

/**
 * The live layers from `Config` values (each option may be a plain value or a `Config`).
 *
 * @example
 * ```ts
 * import { ZapierHttp } from "@effect-zapier/http"
 * import { Config } from "effect"
 *
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
): Layer.Layer<Services | CallbackServices | TriggerServices, ConfigError.ConfigError, HttpClient.HttpClient> =>
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
  runReads: optional(Config.literal("poll", "long-poll")("ZAPIER_RUN_READS")),
  longPollWait: optional(Config.duration("ZAPIER_LONG_POLL_WAIT")),
  maxAttempts: optional(Config.integer("ZAPIER_MAX_ATTEMPTS")),
  retryBaseDelay: optional(Config.duration("ZAPIER_RETRY_BASE_DELAY")),
  retryMaxDelay: optional(Config.duration("ZAPIER_RETRY_MAX_DELAY")),
  maxRetryAfter: optional(Config.duration("ZAPIER_MAX_RETRY_AFTER")),
  rateLimitCooldown: optional(Config.duration("ZAPIER_RATE_LIMIT_COOLDOWN")),
  retryBudget: optional(Config.integer("ZAPIER_RETRY_BUDGET")),
  maxResponseBytes: optional(Config.integer("ZAPIER_MAX_RESPONSE_BYTES")),
  pageSize: optional(Config.integer("ZAPIER_PAGE_SIZE")),
  triggerInboxPath: optional(Config.string("ZAPIER_TRIGGER_INBOX_PATH")),
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
export const layerFromEnv: Layer.Layer<
  Services | CallbackServices | TriggerServices,
  ConfigError.ConfigError,
  HttpClient.HttpClient
> = layerConfig(config)
